package io.hearth.driver;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The Hearth agent: the main class spark-submit runs in the Spark driver.
 *
 * <pre>
 * spark-submit --class io.hearth.driver.HearthDriver hearth-driver.jar \
 *     --server tcp://HOST:PORT --driver-id ID --secret-file PATH [--idle-timeout 10m]
 * </pre>
 *
 * <p>Says hello to the server before creating Spark (so the server soon knows the driver is
 * alive), creates the SparkSession, reports driver_state, then hosts sessions until shutdown,
 * reject or the idle timeout.
 */
public final class HearthDriver implements Channel.Listener {
  /** The agent's arguments. */
  record Options(String server, String driverId, Path secretFile, long idleTimeoutMs) {
    static Options parse(String[] args) {
      String server = null;
      String driverId = null;
      String secretFile = null;
      String idle = "10m";
      for (int i = 0; i < args.length; i++) {
        String key = args[i];
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException("missing value for " + key);
        }
        String value = args[++i];
        switch (key) {
          case "--server" -> server = value;
          case "--driver-id" -> driverId = value;
          case "--secret-file" -> secretFile = value;
          case "--idle-timeout" -> idle = value;
          default -> throw new IllegalArgumentException("unknown argument " + key);
        }
      }
      if (server == null || driverId == null || secretFile == null) {
        throw new IllegalArgumentException(
            "usage: HearthDriver --server tcp://HOST:PORT --driver-id ID --secret-file PATH"
                + " [--idle-timeout 10m]");
      }
      return new Options(server, driverId, Path.of(secretFile), parseDuration(idle));
    }
  }

  /** Parses "500ms", "90s", "10m", "2h" (a bare number is milliseconds) into milliseconds. */
  static long parseDuration(String text) {
    String t = text.trim();
    String[][] units = {{"ms", "1"}, {"s", "1000"}, {"m", "60000"}, {"h", "3600000"}};
    for (String[] unit : units) {
      if (t.endsWith(unit[0])) {
        String number = t.substring(0, t.length() - unit[0].length());
        if (!number.isEmpty() && number.chars().allMatch(Character::isDigit)) {
          return Long.parseLong(number) * Long.parseLong(unit[1]);
        }
      }
    }
    if (!t.isEmpty() && t.chars().allMatch(Character::isDigit)) {
      return Long.parseLong(t);
    }
    throw new IllegalArgumentException("not a duration: '" + text + "' (use e.g. 500ms, 90s, 10m)");
  }

  private static final Set<String> kSessionKinds = Set.of("pyspark", "spark", "sql", "sparkr", "shared");
  private static final long kProgressIntervalMs = 250;
  private static final int kCompletionThreads = 4;
  private static final int kMaxQueuedCompletions = 256;
  private static final int kArtifactThreads = 2;
  private static final int kMaxQueuedArtifacts = 1024;
  // How long a driver whose SparkContext was stopped waits for running statements to report.
  private static final long kStoppedSettleMs = 10_000;
  private static final int kJobThreads = 64;
  private static final int kMaxQueuedJobs = 1024;

  private final Options options;
  private final String secret;
  private final Channel channel;
  private final CompletableFuture<SparkSession> spark = new CompletableFuture<>();
  private final Map<Long, Session> sessions = new ConcurrentHashMap<>();
  // The final updates the sessions keep for re-sent execute and start_job, at most 64 MiB.
  private final Ledger.Budget results = new Ledger.Budget(Ledger.kRetainedBytesPerDriver);
  // Slow work (closing sessions, shutdown) runs here so the channel thread keeps heartbeating.
  private final ExecutorService control = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "hearth-control");
    t.setDaemon(true);
    return t;
  });
  // Progress reports (every 250 ms) and the 100 ms cancel repeats of all sessions; its tasks
  // only read Spark's status tracker, post cancels and queue messages, so one thread suffices.
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "hearth-timer");
    t.setDaemon(true);
    return t;
  });
  // complete requests: off the channel thread and beside the session queues. A completion may
  // wait seconds (a Python worker or a Scala compiler starting), so a few threads and a bounded
  // queue; an overflow is answered with no candidates.
  private final ThreadPoolExecutor completer = new ThreadPoolExecutor(kCompletionThreads,
      kCompletionThreads, 30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(kMaxQueuedCompletions), r -> {
        Thread t = new Thread(r, "hearth-complete");
        t.setDaemon(true);
        return t;
      });
  // add_artifact requests: off the channel thread and beside the session queues (a remote jar
  // is fetched first, which may take a while). One at a time per session (Session's lock), so
  // a session's pyfiles land on its path in the order added.
  private final ThreadPoolExecutor artifacts = new ThreadPoolExecutor(kArtifactThreads,
      kArtifactThreads, 30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(kMaxQueuedArtifacts), r -> {
        Thread t = new Thread(r, "hearth-artifact");
        t.setDaemon(true);
        return t;
      });
  // Jobs (start_job) of all sessions: each runs on one of these threads from start to end, so
  // at most kJobThreads jobs run at once and kMaxQueuedJobs wait (a job past that is answered
  // failed). Threads end after a minute without work. They are created by the channel thread
  // (execute), which has no Spark local properties for them to inherit.
  private final ThreadPoolExecutor jobPool = new ThreadPoolExecutor(kJobThreads, kJobThreads,
      60, TimeUnit.SECONDS, new ArrayBlockingQueue<>(kMaxQueuedJobs), new ThreadFactory() {
        private final AtomicInteger count = new AtomicInteger();

        @Override
        public Thread newThread(Runnable r) {
          Thread t = new Thread(r, "hearth-job-" + count.incrementAndGet());
          t.setDaemon(true);
          return t;
        }
      });
  private final AtomicBoolean shuttingDown = new AtomicBoolean();
  private final PythonGateway gateway;

  private HearthDriver(Options options, String secret) {
    this.options = options;
    this.secret = secret;
    this.gateway = new PythonGateway(spark, sessions);
    jobPool.allowCoreThreadTimeOut(true);
    this.channel = new Channel(options.server(), this::hello, this::heldSessions,
        options.idleTimeoutMs(), this);
  }

  public static void main(String[] args) {
    Options options;
    String secret;
    try {
      options = Options.parse(args);
      secret = Files.readString(options.secretFile(), StandardCharsets.UTF_8).trim();
      Files.delete(options.secretFile());
    } catch (IllegalArgumentException | IOException e) {
      System.err.println("hearth: " + e);
      System.exit(64);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(PythonWorker::destroyAll, "hearth-kill-workers"));
    new HearthDriver(options, secret).run();
  }

  private Message.Hello hello() {
    String version;
    if (spark.isDone() && !spark.isCompletedExceptionally()) {
      version = spark.join().sparkContext().version();
    } else {
      version = org.apache.spark.package$.MODULE$.SPARK_VERSION();
    }
    return new Message.Hello(options.driverId(), secret, List.of((long) Codec.kVersion),
        ProcessHandle.current().pid(), version);
  }

  /** The ids of the sessions this driver holds now, in order (driver_state's sessions). */
  private List<Long> heldSessions() {
    return sessions.keySet().stream().sorted().toList();
  }

  private void run() {
    System.err.println("hearth: driver " + options.driverId() + " connecting to " + options.server());
    channel.start();
    SparkSession session;
    try {
      SparkSession.Builder builder = SparkSession.builder();
      SparkConf userConf = new SparkConf();
      if (!userConf.contains("spark.scheduler.mode")) {
        // FAIR lets each session's pool share the cluster; users may still choose otherwise.
        builder.config("spark.scheduler.mode", "FAIR");
      }
      if (!userConf.contains(ScalaInterpreter.kOutputDirKey)) {
        // The Scala REPLs write their classes here. It must be set before the SparkContext
        // exists: the context then serves the directory to executors (spark.repl.class.uri).
        builder.config(ScalaInterpreter.kOutputDirKey, ScalaInterpreter.createOutputDir().toString());
      }
      session = builder.getOrCreate();
    } catch (Throwable t) {
      System.err.println("hearth: could not create the SparkSession");
      t.printStackTrace();
      spark.completeExceptionally(t);
      channel.send(new Message.DriverState("error", null, null, String.valueOf(t), List.of()));
      stopChannel();
      System.exit(1);
      return;
    }
    spark.complete(session);
    SparkContext sc = session.sparkContext();
    String ui = sc.uiWebUrl().isDefined() ? sc.uiWebUrl().get() : null;
    System.err.println("hearth: Spark " + sc.version() + " up, application " + sc.applicationId());
    channel.send(new Message.DriverState("ready", sc.applicationId(), ui, null, List.of()));
    // JVM code of one session (Scala, a job) may stop the shared SparkContext; the driver is then
    // useless for every session, so it says why and exits rather than serve failing statements.
    ContextWatch.install(sc, () -> {
      if (!shuttingDown.get()) {
        // The statements running now end quickly (their Spark calls fail); let them report, the
        // one that stopped the context included, so users read why rather than "driver exited".
        long deadline = System.currentTimeMillis() + kStoppedSettleMs;
        while (sessions.values().stream().anyMatch(Session::busy)
            && System.currentTimeMillis() < deadline) {
          try {
            Thread.sleep(50); // poll step of a bounded wait; busy() has no way to wait for it
          } catch (InterruptedException e) {
            break;
          }
        }
        channel.send(new Message.DriverState("error", null, null, ContextWatch.kStoppedReason, List.of()));
        stopChannel();
        onFatal(ContextWatch.kStoppedReason, 4);
      }
    });
    timer.scheduleWithFixedDelay(this::reportProgress, kProgressIntervalMs, kProgressIntervalMs,
        TimeUnit.MILLISECONDS);
    // The main thread has nothing left to do; the channel, session and control threads work on.
    synchronized (this) {
      while (true) {
        try {
          wait();
        } catch (InterruptedException e) {
          return;
        }
      }
    }
  }

  @Override
  public void onMessage(Message message) {
    if (shuttingDown.get()) {
      return;
    }
    if (message instanceof Message.OpenSession m) {
      if (!kSessionKinds.contains(m.kind())) {
        channel.send(new Message.SessionState(m.sessionId(), "error",
            "unknown session kind '" + m.kind() + "'"));
        return;
      }
      // Created on the channel thread so that an execute right behind it finds the session.
      // A second open_session for the same id (a re-send, e.g. the server's resynchronisation
      // after a reconnect) gets the session's current state; the session is not touched.
      Session s = sessions.computeIfAbsent(m.sessionId(),
          id -> new Session(id, m.kind(), spark, channel, gateway, timer, jobPool, results));
      channel.send(new Message.SessionState(m.sessionId(), s.busy() ? "busy" : "idle", null));
    } else if (message instanceof Message.Execute m) {
      Session s = sessions.get(m.sessionId());
      if (s == null) {
        unknownSession(m.sessionId());
      } else {
        s.submit(m);
      }
    } else if (message instanceof Message.CloseSession m) {
      Session s = sessions.remove(m.sessionId());
      if (s == null) {
        unknownSession(m.sessionId());
      } else {
        control.execute(() -> {
          s.close();
          channel.send(new Message.SessionState(m.sessionId(), "dead", null));
        });
      }
    } else if (message instanceof Message.CancelStatement m) {
      Session s = sessions.get(m.sessionId());
      if (s != null) { // a cancel for an unknown session, like one for an unknown statement, is ignored
        s.cancel(m.statementId());
      }
    } else if (message instanceof Message.StartJob m) {
      Session s = sessions.get(m.sessionId());
      if (s == null) {
        channel.send(new Message.JobUpdate(m.sessionId(), m.jobId(), "failed", 0.0, 0,
            System.currentTimeMillis(), null, "no session " + m.sessionId() + " on this driver",
            List.of()));
      } else {
        s.startJob(m);
      }
    } else if (message instanceof Message.CancelJob m) {
      Session s = sessions.get(m.sessionId());
      if (s != null) { // a cancel for an unknown session, like one for an unknown job, is ignored
        s.cancelJob(m.jobId());
      }
    } else if (message instanceof Message.Complete m) {
      complete(m);
    } else if (message instanceof Message.AddArtifact m) {
      addArtifact(m);
    } else if (message instanceof Message.Shutdown) {
      shuttingDown.set(true);
      control.execute(this::shutdown);
    } else {
      System.err.println("hearth: ignored unexpected " + message);
    }
  }

  private void reportProgress() {
    for (Session s : sessions.values()) {
      try {
        s.reportProgress();
      } catch (Throwable t) { // an exception would end the timer's schedule
        System.err.println("hearth: session " + s.id() + ": progress failed: " + t);
      }
      try {
        s.reportJobProgress();
      } catch (Throwable t) {
        System.err.println("hearth: session " + s.id() + ": job progress failed: " + t);
      }
    }
  }

  /** Answers a complete on a completion thread; every complete gets one completion. */
  private void complete(Message.Complete m) {
    Session s = sessions.get(m.sessionId());
    if (s == null) {
      channel.send(new Message.Completion(m.sessionId(), m.requestId(), List.of()));
      return;
    }
    try {
      completer.execute(() -> {
        List<String> candidates;
        try {
          candidates = s.complete(m.kind(), m.code(), m.cursor());
        } catch (Throwable t) {
          System.err.println("hearth: session " + m.sessionId() + ": completion failed: " + t);
          candidates = List.of();
        }
        channel.send(new Message.Completion(m.sessionId(), m.requestId(), candidates));
      });
    } catch (RejectedExecutionException e) {
      channel.send(new Message.Completion(m.sessionId(), m.requestId(), List.of()));
    }
  }

  /**
   * Answers an add_artifact on an artifact thread; every add_artifact gets one artifact_added,
   * with the exception's toString as error when it fails.
   */
  private void addArtifact(Message.AddArtifact m) {
    Session s = sessions.get(m.sessionId());
    if (s == null) {
      channel.send(new Message.ArtifactAdded(m.sessionId(), m.requestId(),
          "no session " + m.sessionId() + " on this driver"));
      return;
    }
    try {
      artifacts.execute(() -> {
        String error = null;
        try {
          s.addArtifact(m.kind(), m.uri());
        } catch (Throwable t) {
          System.err.println("hearth: session " + m.sessionId() + ": adding " + m.kind() + " "
              + m.uri() + " failed: " + t);
          error = String.valueOf(t);
        }
        channel.send(new Message.ArtifactAdded(m.sessionId(), m.requestId(), error));
      });
    } catch (RejectedExecutionException e) {
      channel.send(new Message.ArtifactAdded(m.sessionId(), m.requestId(),
          "the driver is busy adding " + kMaxQueuedArtifacts + " artifacts; try again"));
    }
  }

  private void unknownSession(long id) {
    channel.send(new Message.Error("unknown_session", "no session " + id + " on this driver"));
  }

  private void shutdown() {
    System.err.println("hearth: shutting down");
    for (Long id : List.copyOf(sessions.keySet())) {
      Session s = sessions.remove(id);
      if (s != null) {
        s.close();
        channel.send(new Message.SessionState(id, "dead", null));
      }
    }
    channel.send(new Message.DriverState("stopping", null, null, null, List.of()));
    timer.shutdownNow();
    completer.shutdownNow();
    artifacts.shutdownNow();
    jobPool.shutdownNow();
    gateway.stop();
    try {
      spark.join().stop();
    } catch (Throwable t) {
      System.err.println("hearth: stopping Spark failed: " + t);
    }
    stopChannel();
    System.err.println("hearth: bye");
    System.exit(0);
  }

  private void stopChannel() {
    try {
      channel.flushAndStop(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void onFatal(String why, int exitCode) {
    System.err.println("hearth: " + why + "; exiting");
    // Runs on the channel thread; System.exit runs the hooks (python workers, Spark) elsewhere.
    new Thread(() -> System.exit(exitCode), "hearth-exit").start();
  }
}
