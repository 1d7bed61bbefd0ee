package io.hearth.driver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import org.apache.spark.sql.SparkSession;

/**
 * One interactive session: its own SparkSession (spark.newSession()), its interpreters (created
 * on first use) and one thread that runs its statements in order, one at a time.
 *
 * <p>{@link #submit} is called by the channel thread; {@link #close} by the control thread;
 * everything else runs on the session's thread.
 */
final class Session {
  private static final int kMaxQueued = 10_000;
  private static final long kCloseWaitMs = 30_000;
  // Leaves room for the statement_update envelope around the output.
  private static final int kMaxOutputBytes = Codec.kMaxFrameBytes - 64 * 1024;
  private static final Message.Execute kStop = new Message.Execute(-1, -1, "", "");

  private final long id;
  private final CompletableFuture<SparkSession> rootSpark;
  private final Channel channel;
  private final PythonGateway gateway;
  private final LinkedBlockingQueue<Message.Execute> queue = new LinkedBlockingQueue<>(kMaxQueued + 1);
  private final Set<Long> statementIds = ConcurrentHashMap.newKeySet();
  private final Map<String, Interpreter> interpreters = new ConcurrentHashMap<>();
  private final Thread thread;
  private volatile boolean closed;
  private volatile String runningJobGroup;
  private volatile boolean busy;
  private SparkSession spark; // guarded by this

  Session(long id, String kind, CompletableFuture<SparkSession> rootSpark, Channel channel,
      PythonGateway gateway) {
    this.id = id;
    this.rootSpark = rootSpark;
    this.channel = channel;
    this.gateway = gateway;
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

  /** Queues a statement; a statement id seen before is ignored (a re-send after reconnect). */
  void submit(Message.Execute execute) {
    if (!statementIds.add(execute.statementId())) {
      System.err.println("hearth: session " + id + ": statement " + execute.statementId()
          + " already known, ignored");
      return;
    }
    if (queue.size() >= kMaxQueued || !queue.offer(execute)) {
      statementIds.remove(execute.statementId());
      channel.send(new Message.Error("bad_request", "session " + id + " has " + kMaxQueued
          + " statements queued; statement " + execute.statementId() + " refused"));
    }
  }

  /**
   * Drops queued statements, cancels the running one's Spark jobs, ends the interpreters and
   * waits (bounded) for the session thread. Blocks; not called on the channel thread.
   */
  void close() {
    closed = true;
    queue.clear();
    queue.offer(kStop);
    String group = runningJobGroup;
    if (group != null && rootSpark.isDone()) {
      rootSpark.join().sparkContext().cancelJobGroup(group);
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
    System.err.println("hearth: session " + id + " closed");
  }

  private void run() {
    while (!closed) {
      Message.Execute execute;
      try {
        execute = queue.take();
      } catch (InterruptedException e) {
        return;
      }
      if (execute == kStop || closed) {
        return;
      }
      if (!busy) {
        busy = true;
        channel.send(new Message.SessionState(id, "busy", null));
      }
      runStatement(execute);
      if (!closed && queue.isEmpty()) {
        busy = false;
        channel.send(new Message.SessionState(id, "idle", null));
      }
    }
  }

  private void runStatement(Message.Execute execute) {
    long statementId = execute.statementId();
    long started = System.currentTimeMillis();
    String jobGroup = "hearth-" + id + "-" + statementId;
    channel.send(new Message.StatementUpdate(id, statementId, "running", 0.0, started, 0, null));
    runningJobGroup = jobGroup;
    ObjectNode output;
    try {
      output = execute(execute.kind(), statementId, jobGroup, execute.code());
    } catch (Throwable t) {
      System.err.println("hearth: session " + id + ": statement " + statementId + " failed inside the agent");
      t.printStackTrace();
      output = Outputs.error(statementId, "Internal Error: " + t.getClass().getName(),
          String.valueOf(t.getMessage()), List.of());
    } finally {
      runningJobGroup = null;
    }
    long completed = System.currentTimeMillis();
    if (closed) {
      channel.send(new Message.StatementUpdate(id, statementId, "cancelled", 1.0, started, completed, null));
      return;
    }
    channel.send(new Message.StatementUpdate(id, statementId, "available", 1.0, started, completed,
        boundedOutput(statementId, output)));
  }

  private ObjectNode execute(String kind, long statementId, String jobGroup, String code) {
    Interpreter interpreter = switch (kind) {
      case "pyspark" -> interpreters.computeIfAbsent(kind, k -> new PythonWorker(this, gateway));
      case "sql" -> interpreters.computeIfAbsent(kind, k -> new SqlInterpreter(sparkSession(), pool()));
      default -> null;
    };
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
    return interpreter.execute(statementId, jobGroup, code);
  }

  private ObjectNode boundedOutput(long statementId, ObjectNode output) {
    try {
      int size = Codec.mapper().writeValueAsBytes(output).length;
      if (size <= kMaxOutputBytes) {
        return output;
      }
      return Outputs.error(statementId, "Error", "statement output of " + size
          + " bytes is larger than the limit of " + kMaxOutputBytes + " bytes", List.of());
    } catch (JsonProcessingException e) {
      return Outputs.error(statementId, "Error", "statement output cannot be encoded: " + e, List.of());
    }
  }
}
