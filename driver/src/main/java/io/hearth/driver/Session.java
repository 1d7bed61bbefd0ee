package io.hearth.driver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URL;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.JobExecutionStatus;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.JavaSparkStatusTracker;
import org.apache.spark.sql.SparkSession;

/**
 * One interactive session: its own SparkSession (spark.newSession()), its interpreters (created
 * on first use), one thread that runs its statements in order, one at a time, and its jobs
 * ({@link Jobs}), which run beside the statements on the driver's job threads.
 *
 * <p>Threads: {@link #submit}, {@link #cancel}, {@link #startJob} and {@link #cancelJob} are
 * called by the channel thread, {@link #reportProgress}, {@link #reportJobProgress} and the
 * cancel repeats by the driver's timer thread, {@link #complete} by a completion thread,
 * {@link #addArtifact} by an artifact thread or a job thread (a job's jar), {@link #close} by the
 * control thread; statements run on the session's
 * thread. The queue and the running statement are guarded by {@code lock}; every
 * statement_update is sent while holding it, so the channel receives a statement's updates in
 * order and never a progress update after its final one. The jobs have their own lock (in
 * {@link Jobs}); it and {@code lock} are never held together. The ledgers' lock ({@link Ledger})
 * is taken inside either.
 *
 * <p>Statements are idempotent by id: {@code statements} remembers every id the session accepted
 * and keeps the last final updates, so a re-sent execute (after the server restarted) is answered
 * from there and never runs the code again.
 */
final class Session {
  private static final int kMaxQueued = 10_000;
  private static final long kCloseWaitMs = 30_000;
  // Livy's livy.rsc.job-cancel.trigger-interval and livy.rsc.job-cancel.timeout.
  private static final long kCancelRepeatMs = 100;
  private static final long kCancelGiveUpMs = 30_000;
  private static final long kCompleteTimeoutMs = 10_000;
  // Leaves room for the statement_update envelope around the output.
  private static final int kMaxOutputBytes = Codec.kMaxFrameBytes - 64 * 1024;

  /** The statement on the session thread, from its "running" to its final update. */
  private static final class Running {
    final Message.Execute execute;
    final String jobGroup;
    final long started;
    // All guarded by the session's lock.
    Interpreter interpreter; // null until the statement's interpreter exists
    boolean cancelRequested;
    long cancelRequestedAt;
    ScheduledFuture<?> cancelRepeat;
    double progressSent;

    Running(Message.Execute execute, String jobGroup, long started) {
      this.execute = execute;
      this.jobGroup = jobGroup;
      this.started = started;
    }
  }

  private final long id;
  private final CompletableFuture<SparkSession> rootSpark;
  private final Channel channel;
  private final PythonGateway gateway;
  private final ScheduledExecutorService timer;
  private final Ledger<Message.StatementUpdate> statements;
  private final Map<String, Interpreter> interpreters = new ConcurrentHashMap<>();
  private final Thread thread;
  private final Object lock = new Object();
  private final ArrayDeque<Message.Execute> queue = new ArrayDeque<>(); // guarded by lock
  private Running running; // guarded by lock
  private volatile boolean closed;
  private volatile boolean busy;
  private SparkSession spark; // guarded by this
  // add_artifact's results, in the order added; interpreters apply them when they start (and
  // the Scala REPL before each statement, the Python worker at once).
  private final Object artifactLock = new Object(); // one add_artifact of the session at a time
  private final List<URL> jars = new CopyOnWriteArrayList<>();
  private final List<Artifacts.PythonPath> pythonPaths = new CopyOnWriteArrayList<>();
  private final Jobs jobs;

  /**
   * jobPool: the driver's job threads, shared by its sessions (bounded, bounded queue); results:
   * the driver's bound on the final updates its sessions keep for re-sent requests.
   */
  Session(long id, String kind, CompletableFuture<SparkSession> rootSpark, Channel channel,
      PythonGateway gateway, ScheduledExecutorService timer, ExecutorService jobPool,
      Ledger.Budget results) {
    this.id = id;
    this.rootSpark = rootSpark;
    this.channel = channel;
    this.gateway = gateway;
    this.timer = timer;
    this.statements = new Ledger<>(results);
    this.jobs = new Jobs(this, channel, jobPool, timer, new Ledger<>(results));
    this.thread = new Thread(this::run, "hearth-session-" + id);
    thread.setDaemon(true);
    thread.start();
    System.err.println("hearth: session " + id + " opened (kind " + kind + ")");
  }

  long id() {
    return id;
  }

  /** True from the busy to the idle session_state. */
  boolean busy() {
    return busy;
  }

  /** The session's FAIR scheduler pool (created by Spark on first use). */
  String pool() {
    return "hearth-" + id;
  }

  /** The session's own SparkSession; waits for the driver's SparkSession on first use. */
  synchronized SparkSession sparkSession() {
    if (spark == null) {
      spark = rootSpark.join().newSession();
    }
    return spark;
  }

  /** The driver's SparkSession if it is up, else null. Never blocks. */
  SparkSession rootSparkIfReady() {
    return rootSpark.isDone() && !rootSpark.isCompletedExceptionally() ? rootSpark.join() : null;
  }

  /** start_job: see {@link Jobs#start}. Never blocks. */
  void startJob(Message.StartJob start) {
    jobs.start(start);
  }

  /** cancel_job: see {@link Jobs#cancel}. Never blocks. */
  void cancelJob(long jobId) {
    jobs.cancel(jobId);
  }

  /** Called by the driver's timer every 250 ms: see {@link Jobs#reportProgress}. */
  void reportJobProgress() {
    jobs.reportProgress();
  }

  /**
   * Queues a statement. A statement id the session accepted before (a re-send after a reconnect)
   * never runs again: queued, it is ignored; running, it is answered with a running update;
   * finished, with its final update as first sent, or, if that is no longer kept, with an
   * available update whose output is a ResultLost error. Never blocks.
   */
  void submit(Message.Execute execute) {
    long statementId = execute.statementId();
    synchronized (lock) {
      switch (statements.state(statementId)) {
        case NEW -> {
          if (queue.size() >= kMaxQueued) {
            channel.send(new Message.Error("bad_request", "session " + id + " has " + kMaxQueued
                + " statements queued; statement " + statementId + " refused"));
            return;
          }
          statements.accept(statementId);
          queue.addLast(execute);
          lock.notifyAll();
        }
        case OPEN -> {
          Running r = running;
          if (r != null && r.execute.statementId() == statementId) {
            System.err.println("hearth: session " + id + ": statement " + statementId
                + " re-sent while running, answered running");
            channel.send(new Message.StatementUpdate(id, statementId, "running", r.progressSent,
                r.started, 0, null));
          } else {
            System.err.println("hearth: session " + id + ": statement " + statementId
                + " re-sent while queued, ignored");
          }
        }
        case FINISHED -> {
          Message.StatementUpdate last = statements.finalUpdate(statementId);
          System.err.println("hearth: session " + id + ": statement " + statementId
              + " re-sent after it finished, answered with its "
              + (last != null ? "final update" : "lost result"));
          channel.send(last != null ? last : lostResult(statementId));
        }
      }
    }
  }

  /** The answer to a re-sent execute whose final update is no longer kept. */
  private Message.StatementUpdate lostResult(long statementId) {
    return new Message.StatementUpdate(id, statementId, "available", 1.0, 0,
        System.currentTimeMillis(), Outputs.error(statementId, "ResultLost", "statement "
            + statementId + " of session " + id + " finished while the server was away, and the"
            + " driver no longer keeps its result (it keeps the last " + Ledger.kRetainedPerSession
            + " per session and " + (Ledger.kRetainedBytesPerDriver >> 20) + " MiB per driver)",
            List.of()));
  }

  /** Sends a statement's final update and keeps it for a re-sent execute. Called under lock. */
  private void finish(Message.StatementUpdate update, long outputBytes) {
    channel.send(update);
    statements.finish(update.statementId(), update, Ledger.kUpdateOverheadBytes + outputBytes);
  }

  /**
   * cancel_statement: a queued statement is dropped and answered "cancelled" at once; the
   * running one has its code interrupted and its job group cancelled now and every 100 ms
   * (a job started after the first cancel is caught too) until it ends or 30 s passed; it is
   * answered by the session thread when it ends. Anything else is ignored. Never blocks.
   */
  void cancel(long statementId) {
    Running r;
    synchronized (lock) {
      if (queue.removeIf(e -> e.statementId() == statementId)) {
        System.err.println("hearth: session " + id + ": statement " + statementId + " cancelled while queued");
        finish(new Message.StatementUpdate(id, statementId, "cancelled", 1.0, 0,
            System.currentTimeMillis(), null), 0);
        return;
      }
      r = running;
      if (r == null || r.execute.statementId() != statementId || r.cancelRequested) {
        return;
      }
      System.err.println("hearth: session " + id + ": cancelling running statement " + statementId);
      r.cancelRequested = true;
      r.cancelRequestedAt = System.currentTimeMillis();
      // Under the lock: the session thread clears a late thread interrupt right after it takes
      // the statement off `running`, so an interrupt cannot leak into the next statement.
      if (r.interpreter != null) {
        r.interpreter.interrupt(statementId, thread);
      }
      // Before the first repeat can run, so that the repeat always finds its future.
      try {
        r.cancelRepeat = timer.scheduleWithFixedDelay(() -> repeatCancel(r), kCancelRepeatMs,
            kCancelRepeatMs, TimeUnit.MILLISECONDS);
      } catch (RejectedExecutionException e) {
        // the driver is shutting down; close() cancels the job group
      }
    }
    // Jobs of the group submitted later fail at once too (the group is this statement's alone).
    try {
      if (rootSpark.isDone() && !rootSpark.isCompletedExceptionally()) {
        rootSpark.join().sparkContext().cancelJobGroupAndFutureJobs(r.jobGroup, "statement cancelled");
      }
    } catch (Throwable t) {
      System.err.println("hearth: session " + id + ": cancelling job group " + r.jobGroup + " failed: " + t);
    }
  }

  private void repeatCancel(Running r) {
    synchronized (lock) {
      if (running != r) {
        r.cancelRepeat.cancel(false);
        return;
      }
      if (System.currentTimeMillis() - r.cancelRequestedAt > kCancelGiveUpMs) {
        System.err.println("hearth: session " + id + ": statement " + r.execute.statementId()
            + " still running 30 s after its cancel; no longer cancelling its jobs");
        r.cancelRepeat.cancel(false);
        return;
      }
    }
    // Livy repeats the cancel every 100 ms; only while the group has a running job, so that the
    // driver log is not flooded with "cannot find active jobs" warnings.
    if (hasRunningJob(r.jobGroup)) {
      cancelJobGroup(r.jobGroup);
    }
  }

  private boolean hasRunningJob(String group) {
    if (!rootSpark.isDone() || rootSpark.isCompletedExceptionally()) {
      return false;
    }
    return hasRunningJob(rootSpark.join().sparkContext(), group);
  }

  /** Whether the Spark job group has a running Spark job (statements' and jobs' groups). */
  static boolean hasRunningJob(SparkContext sc, String group) {
    JavaSparkStatusTracker tracker = JavaSparkContext.fromSparkContext(sc).statusTracker();
    for (int jobId : tracker.getJobIdsForGroup(group)) {
      SparkJobInfo job = tracker.getJobInfo(jobId);
      if (job != null && job.status() == JobExecutionStatus.RUNNING) {
        return true;
      }
    }
    return false;
  }

  private void cancelJobGroup(String group) {
    try {
      if (rootSpark.isDone() && !rootSpark.isCompletedExceptionally()) {
        rootSpark.join().sparkContext().cancelJobGroup(group); // asynchronous: posts an event
      }
    } catch (Throwable t) {
      System.err.println("hearth: session " + id + ": cancelling job group " + group + " failed: " + t);
    }
  }

  /**
   * Called by the driver's timer every 250 ms: sends a "running" update when the running
   * statement's progress changed. Progress as Livy: completed tasks / tasks over all stages of
   * all jobs of the statement's job group, 0 while there are none.
   */
  void reportProgress() {
    Running r;
    synchronized (lock) {
      r = running;
    }
    if (r == null || !rootSpark.isDone() || rootSpark.isCompletedExceptionally()) {
      return;
    }
    double progress = progressOf(rootSpark.join().sparkContext(), r.jobGroup);
    synchronized (lock) {
      // A cancelling statement gets no more "running" updates (the server shows "cancelling").
      if (running == r && !r.cancelRequested && progress != r.progressSent) {
        r.progressSent = progress;
        channel.send(new Message.StatementUpdate(id, r.execute.statementId(), "running", progress,
            r.started, 0, null));
      }
    }
  }

  static double progressOf(SparkContext sc, String jobGroup) {
    JavaSparkStatusTracker tracker = JavaSparkContext.fromSparkContext(sc).statusTracker();
    long tasks = 0;
    long completed = 0;
    for (int jobId : tracker.getJobIdsForGroup(jobGroup)) {
      SparkJobInfo job = tracker.getJobInfo(jobId);
      if (job == null) {
        continue;
      }
      for (int stageId : job.stageIds()) {
        SparkStageInfo stage = tracker.getStageInfo(stageId);
        if (stage != null) {
          tasks += stage.numTasks();
          completed += stage.numCompletedTasks();
        }
      }
    }
    return tasks == 0 ? 0.0 : Math.min(1.0, Math.max(0.0, (double) completed / tasks));
  }

  /**
   * Completion candidates of kind's interpreter (pyspark and spark; others have none), for a
   * cursor in code points. Blocks a completion thread (not the session's) up to about 10 s, or
   * longer while the interpreter is first created.
   */
  List<String> complete(String kind, String code, long cursor) {
    if (closed) {
      return List.of();
    }
    Interpreter interpreter = switch (kind) {
      case "pyspark", "spark" -> interpreter(kind);
      default -> null;
    };
    if (interpreter == null || closed) {
      return List.of();
    }
    int points = code.codePointCount(0, code.length());
    int offset = code.offsetByCodePoints(0, (int) Math.max(0, Math.min(cursor, points)));
    return interpreter.complete(code, offset, kCompleteTimeoutMs);
  }

  /**
   * add_artifact: adds the artifact to the SparkContext and to this session's interpreters
   * (a jar to the Scala REPL's class path, a pyfile to the Python worker's sys.path), now if
   * they exist, else when they start. Does not wait for the statement queue: the Python worker
   * takes the path at once (beside a running statement), the Scala REPL takes a jar right
   * before its next statement (its compiler must not change while it compiles). Blocks an
   * artifact thread (a remote jar is fetched); throws on failure.
   */
  void addArtifact(String kind, String uri) throws Exception {
    if (closed) {
      throw new IllegalStateException("session " + id + " is closed");
    }
    SparkContext sc = sparkSession().sparkContext();
    synchronized (artifactLock) {
      switch (kind) {
        case "jar" -> {
          URL jar = Artifacts.addJar(sc, id, uri);
          if (jars.stream().noneMatch(j -> j.toString().equals(jar.toString()))) { // not URL.equals: it resolves hosts
            jars.add(jar);
          }
        }
        case "pyfile" -> {
          Artifacts.PythonPath path = Artifacts.addPyFile(sc, uri);
          if (!pythonPaths.contains(path)) {
            pythonPaths.add(path);
          }
          if (interpreters.get("pyspark") instanceof PythonWorker worker) {
            worker.addPythonPath(path);
          }
        }
        case "file" -> Artifacts.addFile(sc, uri);
        case "archive" -> Artifacts.addArchive(sc, uri);
        default -> throw new IllegalArgumentException("unknown artifact kind '" + kind + "'");
      }
    }
    System.err.println("hearth: session " + id + ": added " + kind + " " + uri);
  }

  /** The local jars added to this session, in order (for its Scala REPL's class path). */
  List<URL> jars() {
    return List.copyOf(jars);
  }

  /** The pyfiles' paths of this session, in order (for its Python worker's sys.path). */
  List<Artifacts.PythonPath> pythonPaths() {
    return List.copyOf(pythonPaths);
  }

  /**
   * Drops queued statements, cancels the running one's Spark jobs and interrupts it, cancels
   * the session's jobs, ends the interpreters and waits (bounded, 30 s in all) for the session
   * thread and the jobs; every job has its final job_update when this returns. Blocks; not
   * called on the channel thread.
   */
  void close() {
    long deadline = System.currentTimeMillis() + kCloseWaitMs;
    jobs.cancelAll();
    String group = null;
    synchronized (lock) {
      closed = true;
      queue.clear();
      lock.notifyAll();
      Running r = running;
      if (r != null) {
        group = r.jobGroup;
        if (r.interpreter != null) {
          r.interpreter.interrupt(r.execute.statementId(), thread);
        }
      }
    }
    if (group != null) {
      cancelJobGroup(group);
    }
    interpreters.values().forEach(Interpreter::close);
    try {
      thread.join(kCloseWaitMs);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (thread.isAlive()) {
      System.err.println("hearth: session " + id + ": statement still running after close");
    }
    jobs.awaitEnd(deadline);
    statements.close();
    System.err.println("hearth: session " + id + " closed");
  }

  private void run() {
    while (true) {
      Running r;
      synchronized (lock) {
        while (queue.isEmpty() && !closed) {
          try {
            lock.wait();
          } catch (InterruptedException e) {
            // Only cancel and close interrupt this thread, and only while a statement runs; a
            // stray interrupt here is dropped.
          }
        }
        if (closed) {
          return;
        }
        Message.Execute execute = queue.pollFirst();
        if (!busy) {
          busy = true;
          channel.send(new Message.SessionState(id, "busy", null));
        }
        r = new Running(execute, "hearth-" + id + "-" + execute.statementId(), System.currentTimeMillis());
        running = r;
        channel.send(new Message.StatementUpdate(id, execute.statementId(), "running", 0.0,
            r.started, 0, null));
      }
      runStatement(r);
    }
  }

  private void runStatement(Running r) {
    long statementId = r.execute.statementId();
    ObjectNode output;
    try {
      output = execute(r);
    } catch (Throwable t) {
      System.err.println("hearth: session " + id + ": statement " + statementId + " failed inside the agent");
      t.printStackTrace();
      output = Outputs.error(statementId, "Internal Error: " + t.getClass().getName(),
          String.valueOf(t.getMessage()), List.of());
    }
    long completed = System.currentTimeMillis();
    // Encoded outside the lock: the output may be large.
    Output bounded = output == null ? new Output(null, 0) : boundedOutput(statementId, output);
    synchronized (lock) {
      running = null;
      // A cancel's interrupt that arrived after the code ended must not hit the next statement;
      // cancel interrupts only under this lock while `running` is set, so none can come later.
      Thread.interrupted();
      if (r.cancelRepeat != null) {
        r.cancelRepeat.cancel(false);
      }
      if (closed) {
        finish(new Message.StatementUpdate(id, statementId, "cancelled", 1.0, r.started, completed, null), 0);
        return;
      }
      // Once a cancel was asked for, the statement ends "cancelled", with its (late) output if it
      // produced one, as Livy does; "available" only when it finished before the cancel arrived.
      String state = r.cancelRequested ? "cancelled" : "available";
      finish(new Message.StatementUpdate(id, statementId, state, 1.0, r.started, completed,
          bounded.json()), bounded.bytes());
      if (queue.isEmpty()) {
        busy = false;
        channel.send(new Message.SessionState(id, "idle", null));
      }
    }
  }

  private Interpreter interpreter(String kind) {
    return switch (kind) {
      case "pyspark" -> interpreters.computeIfAbsent(kind, k -> new PythonWorker(this, gateway));
      case "sql" -> interpreters.computeIfAbsent(kind, k -> new SqlInterpreter(sparkSession(), pool()));
      case "spark" -> interpreters.computeIfAbsent(kind, k -> new ScalaInterpreter(this));
      default -> null;
    };
  }

  /** Runs the statement; null when it was cancelled before its code started. */
  private ObjectNode execute(Running r) {
    long statementId = r.execute.statementId();
    String kind = r.execute.kind();
    Interpreter interpreter = interpreter(kind);
    if (closed) {
      // close() may have run before computeIfAbsent published a new interpreter.
      if (interpreter != null) {
        interpreter.close();
      }
      return Outputs.error(statementId, "Error", "session closed", List.of());
    }
    if (interpreter == null) {
      return Outputs.error(statementId, "Error", "statement kind '" + kind + "' is not supported yet",
          List.of());
    }
    synchronized (lock) {
      if (r.cancelRequested) {
        return null; // cancelled while its interpreter was being created
      }
      r.interpreter = interpreter;
    }
    return interpreter.execute(statementId, r.jobGroup, r.execute.code());
  }

  /** A statement's output (null for none) and its size encoded, in bytes. */
  private record Output(ObjectNode json, long bytes) {}

  private Output boundedOutput(long statementId, ObjectNode output) {
    ObjectNode error;
    try {
      int size = Codec.mapper().writeValueAsBytes(output).length;
      if (size <= kMaxOutputBytes) {
        return new Output(output, size);
      }
      error = Outputs.error(statementId, "Error", "statement output of " + size
          + " bytes is larger than the limit of " + kMaxOutputBytes + " bytes", List.of());
    } catch (JsonProcessingException e) {
      error = Outputs.error(statementId, "Error", "statement output cannot be encoded: " + e, List.of());
    }
    return new Output(error, error.toString().length());
  }
}
