package io.hearth.driver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.hearth.job.HearthJob;
import io.hearth.job.JobContext;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The jobs of one session (start_job, cancel_job; protocol/PROTOCOL.md): compiled classes run in
 * the session's SparkSession, beside its statements and its other jobs, on the driver's shared
 * pool of job threads.
 *
 * <p>A job goes queued (sent at once) → running (when a pool thread takes it; again whenever its
 * progress changes) → one final update: succeeded, failed or cancelled. Its class comes from the
 * session's own {@link JobClassLoader} (the jars added to the session, over the agent's loader).
 *
 * <p>Threads: {@link #start} and {@link #cancel} are called by the channel thread,
 * {@link #reportProgress} and the cancel repeats by the driver's timer thread, {@link #cancelAll}
 * and {@link #awaitEnd} by the control thread (closing the session), and jobs run on pool
 * threads. The jobs' states are guarded by {@code lock}; every job_update is sent while holding
 * it, so the channel receives a job's updates in order and nothing after its final one. The lock
 * is never held while user code, class loading or a Spark call runs. Lock order: Session's
 * {@code artifactLock} and this lock are never held together; the ledger's lock is taken inside
 * this one.
 *
 * <p>Jobs are idempotent by id: the ledger remembers every job id the session accepted and keeps
 * the last final updates, so a re-sent start_job (after the server restarted) never runs twice.
 */
final class Jobs {
  // Livy's livy.rsc.job-cancel.trigger-interval and livy.rsc.job-cancel.timeout, as statements.
  private static final long kCancelRepeatMs = 100;
  private static final long kCancelGiveUpMs = 30_000;
  // The final job_update must fit in one frame, error and traceback included.
  private static final int kMaxResultBytes = Codec.kMaxFrameBytes - 256 * 1024;
  private static final int kMaxErrorChars = 16 * 1024;
  private static final int kMaxTracebackLines = 500;
  private static final int kMaxTracebackLineChars = 1024;

  /**
   * A session's job class loader: parent-first over the agent's loader (which has Spark, the
   * agent and io.hearth.job, so a job jar that bundles the job interface still sees the agent's
   * copy), then the session's jars in the order they were added. Grows as jars are added.
   */
  static final class JobClassLoader extends URLClassLoader {
    static {
      ClassLoader.registerAsParallelCapable(); // jobs of a session load classes at the same time
    }

    JobClassLoader(long sessionId, ClassLoader parent) {
      super("hearth-session-" + sessionId + "-jobs", new URL[0], parent);
    }

    void addJar(URL jar) {
      addURL(jar);
    }
  }

  /** One job, from start_job to its final update. */
  private final class Job implements JobContext {
    final Message.StartJob start;
    final String jobGroup;
    // Read by the job's code through isCancelled(), without the lock.
    volatile boolean cancelled;
    // All guarded by lock.
    Thread thread; // the pool thread while the job runs, null while queued and once it ended
    long started;
    double progressSent;
    long cancelRequestedAt;
    ScheduledFuture<?> cancelRepeat;
    boolean finished; // its final update was sent
    // Set on the job's thread before the code runs, read by it and by the context's methods.
    volatile SparkSession spark;

    Job(Message.StartJob start) {
      this.start = start;
      this.jobGroup = "hearth-" + session.id() + "-job-" + start.jobId();
    }

    @Override
    public SparkSession spark() {
      return spark;
    }

    @Override
    public JavaSparkContext sc() {
      return JavaSparkContext.fromSparkContext(spark.sparkContext());
    }

    @Override
    public Map<String, String> conf() {
      return start.conf();
    }

    @Override
    public List<String> args() {
      return start.args();
    }

    @Override
    public long jobId() {
      return start.jobId();
    }

    @Override
    public long sessionId() {
      return session.id();
    }

    @Override
    public boolean isCancelled() {
      return cancelled;
    }
  }

  /**
   * How a job's code ended: a result (JSON, null for none, with its size encoded) or an error
   * with its traceback.
   */
  private record Outcome(JsonNode result, long resultBytes, String error, List<String> traceback) {
    static Outcome success(JsonNode result, long resultBytes) {
      return new Outcome(result, resultBytes, null, List.of());
    }

    static Outcome failure(String error, List<String> traceback) {
      return new Outcome(null, 0, error, traceback);
    }
  }

  private final Session session;
  private final Channel channel;
  private final ExecutorService pool;
  private final ScheduledExecutorService timer;
  // Every job id the session was ever given and the last final updates: a re-sent start_job
  // never runs twice.
  private final Ledger<Message.JobUpdate> ledger;
  private final Object lock = new Object();
  private final Map<Long, Job> jobs = new HashMap<>(); // queued and running jobs; guarded by lock
  private boolean closed; // guarded by lock
  private JobClassLoader loader; // guarded by this; created on the first job
  private int loaderJars; // how many of session.jars() the loader has; guarded by this

  /**
   * @param pool the driver's job threads (bounded, with a bounded queue); shared by sessions
   * @param timer the driver's timer, for cancel repeats
   * @param ledger the session's ledger of jobs
   */
  Jobs(Session session, Channel channel, ExecutorService pool, ScheduledExecutorService timer,
      Ledger<Message.JobUpdate> ledger) {
    this.session = session;
    this.channel = channel;
    this.pool = pool;
    this.timer = timer;
    this.ledger = ledger;
  }

  /**
   * start_job: answers queued and hands the job to the pool. When the pool has no room, or the
   * session is closing, the job is answered failed at once. A job id the session accepted before
   * (a re-send after a reconnect) never runs again: queued, it is ignored; running, it is answered
   * with a running update; finished, with its final update as first sent, or, if that is no
   * longer kept, with a failed update saying its result was lost. Never blocks.
   */
  void start(Message.StartJob m) {
    Job job = new Job(m);
    synchronized (lock) {
      if (!ledger.accept(m.jobId())) {
        answerDuplicate(m.jobId());
        return;
      }
      if (closed) {
        finish(job, "failed", null, 0,
            "java.lang.IllegalStateException: session " + session.id() + " is closing", List.of());
        return;
      }
      jobs.put(m.jobId(), job);
      // Before the pool can take the job, so that "running" never precedes "queued".
      send(job, "queued", 0.0, 0, null, null, List.of());
    }
    System.err.println("hearth: session " + session.id() + ": job " + m.jobId() + " ("
        + m.className() + ") queued");
    try {
      pool.execute(() -> run(job));
    } catch (RejectedExecutionException e) {
      synchronized (lock) {
        if (!job.finished) {
          finish(job, "failed", null, 0, "java.util.concurrent.RejectedExecutionException: the driver"
              + " is running and queueing as many jobs as it can; job " + m.jobId()
              + " refused, try again later", List.of());
        }
      }
    }
  }

  /**
   * cancel_job: a queued job is answered cancelled at once and never runs; a running one has
   * its Spark job group cancelled (now and every 100 ms while it has a running Spark job, for
   * up to 30 s) and its thread interrupted, and ends cancelled whatever its code then does. A
   * finished or unknown job is ignored. Never blocks.
   */
  void cancel(long jobId) {
    Job job;
    synchronized (lock) {
      job = jobs.get(jobId);
      if (job == null || !requestCancel(job)) {
        return;
      }
      System.err.println("hearth: session " + session.id() + ": cancelling job " + jobId);
    }
    cancelJobGroupAndFutureJobs(job);
  }

  /**
   * Marks the job cancelled; a queued job gets its final update here. For a running job,
   * interrupts its thread and starts the cancel repeats; the caller then cancels its job group
   * (outside the lock). Returns whether the caller should. Called under lock.
   */
  private boolean requestCancel(Job job) {
    if (job.finished || job.cancelled) {
      return false;
    }
    job.cancelled = true;
    if (job.thread == null) { // still queued: the pool thread that takes it will skip it
      finish(job, "cancelled", null, 0, null, List.of());
      return false;
    }
    job.cancelRequestedAt = System.currentTimeMillis();
    // Under the lock: the job's thread clears a late interrupt right after it takes itself off
    // `thread`, so an interrupt cannot leak into the next job the pool thread runs.
    job.thread.interrupt();
    try {
      job.cancelRepeat = timer.scheduleWithFixedDelay(() -> repeatCancel(job), kCancelRepeatMs,
          kCancelRepeatMs, TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException e) {
      // the driver is shutting down; the group was cancelled once
    }
    return true;
  }

  private void repeatCancel(Job job) {
    synchronized (lock) {
      if (job.thread == null) {
        job.cancelRepeat.cancel(false);
        return;
      }
      if (System.currentTimeMillis() - job.cancelRequestedAt > kCancelGiveUpMs) {
        System.err.println("hearth: session " + session.id() + ": job " + job.start.jobId()
            + " still running 30 s after its cancel; no longer cancelling its Spark jobs");
        job.cancelRepeat.cancel(false);
        return;
      }
    }
    SparkContext sc = sparkContext();
    // Only while the group has a running job, so the driver log is not flooded with warnings.
    if (sc != null && Session.hasRunningJob(sc, job.jobGroup)) {
      try {
        sc.cancelJobGroup(job.jobGroup);
      } catch (Throwable t) {
        System.err.println("hearth: session " + session.id() + ": cancelling " + job.jobGroup
            + " failed: " + t);
      }
    }
  }

  private void cancelJobGroupAndFutureJobs(Job job) {
    SparkContext sc = sparkContext();
    if (sc == null) {
      return;
    }
    try {
      // Jobs of the group submitted later fail at once too (the group is this job's alone).
      sc.cancelJobGroupAndFutureJobs(job.jobGroup, "Hearth job cancelled");
    } catch (Throwable t) {
      System.err.println("hearth: session " + session.id() + ": cancelling " + job.jobGroup
          + " failed: " + t);
    }
  }

  /** The driver's SparkContext once it exists, else null. */
  private SparkContext sparkContext() {
    SparkSession root = session.rootSparkIfReady();
    return root == null ? null : root.sparkContext();
  }

  /**
   * Called by the driver's timer every 250 ms: sends a running update for each running job
   * whose progress changed (completed / all tasks of its job group, as statements).
   */
  void reportProgress() {
    List<Job> running = new ArrayList<>();
    synchronized (lock) {
      for (Job job : jobs.values()) {
        if (job.thread != null && !job.cancelled) {
          running.add(job);
        }
      }
    }
    SparkContext sc = sparkContext();
    if (running.isEmpty() || sc == null) {
      return;
    }
    for (Job job : running) {
      double progress = Session.progressOf(sc, job.jobGroup);
      synchronized (lock) {
        // A cancelling job gets no more running updates (the server shows it cancelling).
        if (job.thread != null && !job.finished && !job.cancelled && progress != job.progressSent) {
          job.progressSent = progress;
          send(job, "running", progress, 0, null, null, List.of());
        }
      }
    }
  }

  /**
   * Closing the session, step 1: no job starts any more; every job is cancelled (queued ones
   * answered at once). Never blocks.
   */
  void cancelAll() {
    List<Job> cancelled = new ArrayList<>();
    synchronized (lock) {
      closed = true;
      for (Job job : List.copyOf(jobs.values())) {
        if (requestCancel(job)) {
          cancelled.add(job);
        }
      }
    }
    cancelled.forEach(this::cancelJobGroupAndFutureJobs);
  }

  /**
   * Closing the session, step 2: waits until every job ended or the deadline (epoch ms) passed.
   * A job still running then is answered cancelled now (its later end is not reported), so that
   * every job has its final update before the session's "dead". Closes the job class loader
   * when no job runs any more. Blocks the control thread.
   */
  void awaitEnd(long deadline) {
    boolean allEnded;
    synchronized (lock) {
      long left;
      while (!jobs.isEmpty() && (left = deadline - System.currentTimeMillis()) > 0) {
        try {
          lock.wait(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      allEnded = jobs.isEmpty();
      for (Job job : List.copyOf(jobs.values())) {
        System.err.println("hearth: session " + session.id() + ": job " + job.start.jobId()
            + " still running after close; reported cancelled");
        finish(job, "cancelled", null, 0, null, List.of());
      }
    }
    ledger.close();
    if (allEnded) {
      closeLoader(); // a job still running may still load classes: its loader is left to the GC
    }
  }

  private synchronized void closeLoader() {
    if (loader != null) {
      try {
        loader.close();
      } catch (java.io.IOException e) {
        System.err.println("hearth: session " + session.id() + ": closing the job class loader: " + e);
      }
    }
  }

  /** A pool thread runs the job, unless it was cancelled while queued. */
  private void run(Job job) {
    long jobId = job.start.jobId();
    synchronized (lock) {
      if (job.finished) {
        return;
      }
      job.thread = Thread.currentThread();
      job.started = System.currentTimeMillis();
      send(job, "running", 0.0, 0, null, null, List.of());
    }
    System.err.println("hearth: session " + session.id() + ": job " + jobId + " running");
    Outcome outcome;
    try {
      outcome = execute(job);
    } catch (Throwable t) { // a bug in the agent, or an Error such as OutOfMemoryError
      System.err.println("hearth: session " + session.id() + ": job " + jobId + " failed inside the agent");
      t.printStackTrace();
      outcome = failure(t);
    }
    synchronized (lock) {
      job.thread = null;
      // A cancel's interrupt that arrived after the code ended must not hit the pool thread's
      // next job; cancel interrupts only under this lock while `thread` is set.
      Thread.interrupted();
      if (job.cancelRepeat != null) {
        job.cancelRepeat.cancel(false);
      }
      if (!job.finished) {
        if (job.cancelled) {
          // Once a cancel was asked for, the job ends cancelled, even if its code then finished.
          finish(job, "cancelled", null, 0, null, List.of());
        } else if (outcome.error() == null) {
          finish(job, "succeeded", outcome.result(), outcome.resultBytes(), null, List.of());
        } else {
          finish(job, "failed", null, 0, outcome.error(), outcome.traceback());
        }
      }
    }
  }

  /**
   * Runs the job's code on this (pool) thread with the session's class loader, SparkSession, job
   * group and pool, and restores the thread afterwards. Errors of the job are an Outcome.
   */
  private Outcome execute(Job job) {
    Message.StartJob m = job.start;
    SparkSession spark = session.sparkSession();
    job.spark = spark;
    if (m.jar() != null) {
      try {
        session.addArtifact("jar", m.jar()); // exactly as add_artifact kind jar
      } catch (Throwable t) {
        return failure(t);
      }
    }
    JobClassLoader jobLoader = loader();
    SparkContext sc = spark.sparkContext();
    Thread thread = Thread.currentThread();
    ClassLoader savedLoader = thread.getContextClassLoader();
    // Local properties belong to this thread, so they tag only this job's Spark jobs. Pool
    // threads are shared by all sessions: everything set here is undone in finally.
    thread.setContextClassLoader(jobLoader);
    sc.setJobGroup(job.jobGroup, "Hearth job " + m.jobId() + " (" + m.className() + ") of session "
        + session.id(), true);
    sc.setLocalProperty("spark.scheduler.pool", session.pool());
    SparkSession.setActiveSession(spark);
    try {
      Class<?> cls;
      try {
        cls = Class.forName(m.className(), true, jobLoader);
      } catch (ClassNotFoundException e) {
        return Outcome.failure("java.lang.ClassNotFoundException: " + m.className()
            + " (not in the agent nor in the jars added to session " + session.id() + ")", List.of());
      }
      if (HearthJob.class.isAssignableFrom(cls)) {
        return callJob(job, cls);
      }
      Method main = mainMethod(cls);
      if (main == null) {
        return Outcome.failure("java.lang.IllegalArgumentException: class " + m.className()
            + " neither implements io.hearth.job.HearthJob nor has a public static main(String[])",
            List.of());
      }
      main.invoke(null, (Object) m.args().toArray(new String[0]));
      return Outcome.success(null, 0);
    } catch (Throwable t) {
      return failure(t);
    } finally {
      SparkSession.clearActiveSession();
      sc.clearJobGroup();
      sc.setLocalProperty("spark.scheduler.pool", null);
      thread.setContextClassLoader(savedLoader);
    }
  }

  private Outcome callJob(Job job, Class<?> cls) throws Throwable {
    String name = cls.getName();
    if (!Modifier.isPublic(cls.getModifiers()) || Modifier.isAbstract(cls.getModifiers())) {
      return Outcome.failure("java.lang.IllegalArgumentException: job class " + name
          + " must be public and not abstract", List.of());
    }
    Constructor<?> constructor;
    try {
      constructor = cls.getConstructor();
    } catch (NoSuchMethodException e) {
      return Outcome.failure("java.lang.IllegalArgumentException: job class " + name
          + " implements io.hearth.job.HearthJob but has no public no-argument constructor",
          List.of());
    }
    HearthJob<?> instance = (HearthJob<?>) constructor.newInstance();
    Object result = instance.call(job);
    if (result == null) {
      return Outcome.success(null, 0);
    }
    JsonNode tree;
    int size;
    try {
      tree = Codec.mapper().valueToTree(result);
      size = Codec.mapper().writeValueAsBytes(tree).length;
    } catch (RuntimeException | JsonProcessingException e) {
      // valueToTree wraps Jackson's exception in an IllegalArgumentException; a NaN read back as
      // a BigDecimal (Codec's mapper) is a NumberFormatException.
      Throwable why = e.getCause() instanceof JsonProcessingException j ? j : e;
      String detail = why instanceof JsonProcessingException j ? j.getOriginalMessage() : why.getMessage();
      return Outcome.failure(why.getClass().getName() + ": the result of job " + job.start.jobId()
          + " (a " + result.getClass().getName() + ") cannot be serialised as JSON: " + detail,
          List.of());
    }
    if (size > kMaxResultBytes) {
      return Outcome.failure("java.lang.IllegalArgumentException: the result of job "
          + job.start.jobId() + " is " + size + " bytes of JSON, more than the limit of "
          + kMaxResultBytes, List.of());
    }
    return Outcome.success(tree.isNull() ? null : tree, size);
  }

  /**
   * The class's public static void main(String[]), or null. Made accessible, so that (as for
   * the java launcher) the class itself need not be public.
   */
  private static Method mainMethod(Class<?> cls) {
    try {
      Method main = cls.getMethod("main", String[].class);
      if (!Modifier.isStatic(main.getModifiers()) || main.getReturnType() != void.class) {
        return null;
      }
      main.setAccessible(true);
      return main;
    } catch (NoSuchMethodException e) {
      return null;
    }
  }

  /**
   * The session's job class loader with every jar added to the session so far (Session.jars()
   * only grows, in order). Created on first use.
   */
  private synchronized JobClassLoader loader() {
    if (loader == null) {
      loader = new JobClassLoader(session.id(), Jobs.class.getClassLoader());
    }
    List<URL> jars = session.jars();
    for (; loaderJars < jars.size(); loaderJars++) {
      loader.addJar(jars.get(loaderJars));
    }
    return loader;
  }

  /** The job's error and traceback for what its code threw (unwrapped from reflection). */
  private static Outcome failure(Throwable t) {
    Throwable root = t;
    while ((root instanceof InvocationTargetException || root instanceof ExceptionInInitializerError)
        && root.getCause() != null) {
      root = root.getCause();
    }
    String message = root.getMessage();
    String error = root.getClass().getName() + (message == null ? "" : ": " + message);
    if (error.length() > kMaxErrorChars) {
      error = error.substring(0, kMaxErrorChars) + "… (" + (error.length() - kMaxErrorChars)
          + " more characters)";
    }
    return Outcome.failure(error, traceback(root));
  }

  /** The stack trace as printed by printStackTrace (causes included), line by line, bounded. */
  static List<String> traceback(Throwable t) {
    StringWriter text = new StringWriter();
    t.printStackTrace(new PrintWriter(text));
    String[] lines = text.toString().split("\\R");
    List<String> out = new ArrayList<>();
    for (String line : lines) {
      if (out.size() == kMaxTracebackLines) {
        out.add("… " + (lines.length - kMaxTracebackLines) + " more lines");
        break;
      }
      out.add(line.length() > kMaxTracebackLineChars ? line.substring(0, kMaxTracebackLineChars) + "…" : line);
    }
    return out;
  }

  /**
   * Sends the job's final update, keeps it in the ledger (resultBytes: the result's size encoded)
   * and forgets the job. Called under lock.
   */
  private void finish(Job job, String state, JsonNode result, long resultBytes, String error,
      List<String> traceback) {
    job.finished = true;
    jobs.remove(job.start.jobId());
    System.err.println("hearth: session " + session.id() + ": job " + job.start.jobId() + " "
        + state + (error == null ? "" : ": " + error));
    double progress = state.equals("succeeded") ? 1.0 : job.progressSent;
    Message.JobUpdate update = new Message.JobUpdate(session.id(), job.start.jobId(), state,
        progress, job.started, System.currentTimeMillis(), result, error, traceback);
    channel.send(update);
    long bytes = Ledger.kUpdateOverheadBytes + resultBytes + (error == null ? 0 : error.length())
        + traceback.stream().mapToLong(String::length).sum();
    ledger.finish(job.start.jobId(), update, bytes);
    lock.notifyAll(); // awaitEnd
  }

  /** Answers a start_job for a job id accepted before (see {@link #start}). Called under lock. */
  private void answerDuplicate(long jobId) {
    String what;
    if (ledger.state(jobId) == Ledger.State.OPEN) {
      Job job = jobs.get(jobId);
      if (job != null && job.thread != null) {
        what = "while running, answered running";
        send(job, "running", job.progressSent, 0, null, null, List.of());
      } else {
        what = "while queued, ignored";
      }
    } else {
      Message.JobUpdate last = ledger.finalUpdate(jobId);
      what = "after it ended, answered with its " + (last != null ? "final update" : "lost result");
      channel.send(last != null ? last : new Message.JobUpdate(session.id(), jobId, "failed", 0.0,
          0, System.currentTimeMillis(), null, "ResultLost: job " + jobId + " of session "
          + session.id() + " ended while the server was away, and the driver no longer keeps its"
          + " result (it keeps the last " + Ledger.kRetainedPerSession + " per session and "
          + (Ledger.kRetainedBytesPerDriver >> 20) + " MiB per driver)", List.of()));
    }
    System.err.println("hearth: session " + session.id() + ": job " + jobId + " re-sent " + what);
  }

  /** Sends a job_update; `started` is the job's. Called under lock. */
  private void send(Job job, String state, double progress, long completed, JsonNode result,
      String error, List<String> traceback) {
    channel.send(new Message.JobUpdate(session.id(), job.start.jobId(), state, progress,
        job.started, completed, result, error, traceback));
  }
}
