package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * The pyspark kind: one Python process (hearth_worker.py) per session, attached to the driver
 * JVM through {@link PythonGateway}. Requests and replies are one JSON object per line on the
 * worker's stdin and stdout (the ops are described in hearth_worker.py); its stderr goes to the
 * driver log.
 *
 * <p>A worker that dies (os._exit(), a signal, a crash) fails its statement with a WorkerDied
 * error output (how it ended, its last stderr lines), its statement's Spark jobs are cancelled,
 * and the session's next statement starts a new worker with a fresh namespace; the session's
 * SparkSession (temporary views, settings) lives in the JVM and is kept. Death is noticed by the
 * end of the worker's stdout or, should a process it forked hold that open, by its exit.
 *
 * <p>Threads: execute runs on the session thread; interrupt on whichever thread cancels;
 * complete on a completion thread. Writes to the worker's stdin are serialised by the worker's
 * lock; one reader thread per process reads stdout and routes each reply to the statement or the
 * completion waiting for it, so a completion is answered while a statement runs.
 */
final class PythonWorker implements Interpreter {
  private static final int kTailLines = 40;
  // How often a waiting statement checks that its worker still lives, and how long after the
  // worker's exit a reply it wrote may take to be read.
  private static final long kAliveCheckMs = 500;
  private static final long kExitGraceMs = 2000;
  // Every live worker of the JVM, so that a shutdown hook leaves no orphan Python behind.
  private static final Set<Process> kLive = ConcurrentHashMap.newKeySet();
  // Stands for the end of the worker's stdout in a Running's replies.
  private static final JsonNode kEndOfStream = Codec.mapper().createObjectNode();

  private final Session session;
  private final PythonGateway gateway;
  private final ArrayDeque<String> stderrTail = new ArrayDeque<>(); // guarded by itself
  private final AtomicLong nextCompletionId = new AtomicLong();
  // Held while a process starts (the session or a completion thread may start it) so that
  // only one starts; never held while waiting for a statement.
  private final Object startLock = new Object();
  private volatile Running running;
  // The statement last asked to cancel. A cancel that comes while the worker is still starting
  // (no `running` yet) is sent by execute right behind the statement's request; volatile on
  // both sides, so either interrupt() sees the worker or execute() sees the cancel (or both:
  // the worker ignores a second cancel of the same statement).
  private volatile long cancelRequested = -1;
  private volatile boolean closed;

  /** One started process and what belongs to it. */
  private static final class Running {
    final Process process;
    final BufferedWriter toWorker; // guarded by itself
    final BufferedReader fromWorker;
    final Thread stderrPump;
    final LinkedBlockingQueue<JsonNode> executeReplies = new LinkedBlockingQueue<>();
    final Map<Long, CompletableFuture<List<String>>> completions = new ConcurrentHashMap<>();

    Running(Process process, Thread stderrPump) {
      this.process = process;
      this.stderrPump = stderrPump;
      this.toWorker = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
      this.fromWorker = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }

    void write(ObjectNode request) throws IOException {
      String line = Codec.mapper().writeValueAsString(request);
      synchronized (toWorker) {
        toWorker.write(line);
        toWorker.write('\n');
        toWorker.flush();
      }
    }
  }

  PythonWorker(Session session, PythonGateway gateway) {
    this.session = session;
    this.gateway = gateway;
  }

  /** Kills every worker and its children; for the JVM shutdown hook. */
  static void destroyAll() {
    kLive.forEach(PythonWorker::kill);
  }

  private static void kill(Process p) {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
  }

  @Override
  public ObjectNode execute(long statementId, String jobGroup, String code) {
    Running r;
    try {
      r = ensureStarted();
    } catch (IOException e) {
      stopProcess();
      return Outputs.error(statementId, "InterpreterError",
          "Fail to start interpreter:\n" + e.getMessage(), List.of());
    }
    org.apache.spark.SparkContext sc = session.sparkSession().sparkContext();
    boolean contextWasStopped = sc.isStopped();
    try {
      ObjectNode request = Codec.mapper().createObjectNode();
      request.put("op", "execute").put("statement_id", statementId).put("code", code)
          .put("job_group", jobGroup).put("pool", session.pool());
      r.write(request);
      if (cancelRequested == statementId) {
        r.write(cancelRequest(statementId));
      }
      JsonNode reply = awaitReply(r);
      if (reply == kEndOfStream || !reply.path("output").isObject()) {
        return workerDied(statementId, jobGroup, r);
      }
      if (!contextWasStopped && sc.isStopped()) {
        // Through py4j (sc._jsc.stop()), which the worker's guards cannot see.
        return ContextWatch.stoppedOutput(statementId);
      }
      return (ObjectNode) reply.get("output");
    } catch (IOException e) {
      return workerDied(statementId, jobGroup, r);
    } catch (InterruptedException e) {
      // Only close() interrupts a Python statement this way; the worker is being killed.
      Thread.currentThread().interrupt();
      return Outputs.error(statementId, "Error", "Interpreter interrupted", List.of());
    }
  }

  /** The worker's reply to the execute just written, or kEndOfStream once the worker is gone. */
  private static JsonNode awaitReply(Running r) throws InterruptedException {
    while (true) {
      JsonNode reply = r.executeReplies.poll(kAliveCheckMs, TimeUnit.MILLISECONDS);
      if (reply != null) {
        return reply;
      }
      if (!r.process.isAlive()) {
        // Its stdout ends with it unless a process it forked holds it open; a reply written
        // right before the exit is still read within the grace period.
        reply = r.executeReplies.poll(kExitGraceMs, TimeUnit.MILLISECONDS);
        return reply != null ? reply : kEndOfStream;
      }
    }
  }

  /**
   * The output of a statement whose worker died under it: WorkerDied, how the worker ended, its
   * last stderr lines as traceback (a crash's Python stack is there: the worker enables
   * faulthandler). Cancels the statement's Spark jobs, which nobody waits for any more.
   */
  private ObjectNode workerDied(long statementId, String jobGroup, Running r) {
    Death death = died(r);
    if (closed) {
      return Outputs.error(statementId, "Error", "session closed", List.of());
    }
    System.err.println("hearth: session " + session.id() + ": the Python worker " + death.how()
        + " during statement " + statementId);
    try {
      session.sparkSession().sparkContext().cancelJobGroup(jobGroup, "the Python worker of session "
          + session.id() + " died");
    } catch (Throwable t) {
      System.err.println("hearth: session " + session.id() + ": cancelling job group " + jobGroup
          + " failed: " + t);
    }
    List<String> traceback = new ArrayList<>();
    if (!death.stderr().isEmpty()) {
      traceback.add("The worker's last lines on stderr:\n");
      death.stderr().forEach(line -> traceback.add(line + "\n"));
    }
    return Outputs.error(statementId, "WorkerDied", "the Python worker of this session " + death.how()
        + "; its Python variables are lost (the session's SparkSession, its temporary views and"
        + " settings are kept). The next statement starts a new worker.", traceback);
  }

  /** How a worker process ended, for a user: "exited with code 1", "was killed by signal 9 (SIGKILL)". */
  static String howItEnded(Process p) {
    if (p.isAlive()) {
      return "stopped answering (its output ended) and was stopped";
    }
    int code = p.exitValue();
    // Java reports a process ended by signal N as 128 + N.
    if (code > 128 && code < 128 + 32) {
      int signal = code - 128;
      String name = switch (signal) {
        case 1 -> " (SIGHUP)";
        case 2 -> " (SIGINT)";
        case 4 -> " (SIGILL)";
        case 6 -> " (SIGABRT)";
        case 7 -> " (SIGBUS)";
        case 8 -> " (SIGFPE)";
        case 9 -> " (SIGKILL)";
        case 11 -> " (SIGSEGV)";
        case 13 -> " (SIGPIPE)";
        case 15 -> " (SIGTERM)";
        default -> "";
      };
      return "was killed by signal " + signal + name;
    }
    return "exited with code " + code;
  }

  /**
   * Asks the worker to interrupt statementId (KeyboardInterrupt inside the user code); the
   * worker ignores it if that statement is no longer running. Never blocks for long.
   */
  @Override
  public void interrupt(long statementId, Thread sessionThread) {
    cancelRequested = statementId;
    Running r = running;
    if (r == null || !r.process.isAlive()) {
      return;
    }
    try {
      r.write(cancelRequest(statementId));
    } catch (IOException e) {
      // the worker died; its statement fails by itself
    }
  }

  private static ObjectNode cancelRequest(long statementId) {
    ObjectNode request = Codec.mapper().createObjectNode();
    request.put("op", "cancel").put("statement_id", statementId);
    return request;
  }

  /**
   * rlcompleter candidates from the worker, answered by the worker's completion thread even while
   * a statement runs. Starts the worker if there is none. Empty on any failure or timeout.
   */
  @Override
  public List<String> complete(String code, int cursor, long timeoutMs) {
    try {
      Running r = ensureStarted();
      long id = nextCompletionId.incrementAndGet();
      CompletableFuture<List<String>> answer = new CompletableFuture<>();
      r.completions.put(id, answer);
      try {
        ObjectNode request = Codec.mapper().createObjectNode();
        // The worker counts the cursor in code points, as the protocol does.
        int points = code.codePointCount(0, Math.max(0, Math.min(cursor, code.length())));
        request.put("op", "complete").put("id", id).put("code", code).put("cursor", points);
        r.write(request);
        return answer.get(timeoutMs, TimeUnit.MILLISECONDS);
      } finally {
        r.completions.remove(id);
      }
    } catch (Exception e) {
      System.err.println("hearth: session " + session.id() + ": completion failed: " + e);
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return List.of();
    }
  }

  /**
   * Puts a pyfile's path on the running worker's sys.path (the worker does it on its reader
   * thread, also while a statement runs, before it reads the next request). Without a running
   * worker nothing happens: a worker takes the session's paths when it starts. Never blocks
   * for long.
   */
  void addPythonPath(Artifacts.PythonPath path) throws IOException {
    Running r = running;
    if (r != null && r.process.isAlive()) {
      r.write(addPathRequest(path));
    }
  }

  private static ObjectNode addPathRequest(Artifacts.PythonPath path) {
    ObjectNode request = Codec.mapper().createObjectNode();
    request.put("op", "add_path").put("path", path.path());
    if (path.include() != null) {
      request.put("include", path.include());
    }
    return request;
  }

  @Override
  public void close() {
    closed = true;
    stopProcess();
  }

  private Running ensureStarted() throws IOException {
    synchronized (startLock) {
      Running r = running;
      if (r != null && r.process.isAlive()) {
        return r;
      }
      if (r != null) {
        stopProcess();
      }
      if (closed) {
        throw new IOException("session closed");
      }
      return start();
    }
  }

  private Running start() throws IOException {
    PythonGateway.Endpoint endpoint = gateway.endpoint();
    String python = pythonExecutable();
    ProcessBuilder pb = new ProcessBuilder(python, endpoint.script().toString());
    Map<String, String> env = pb.environment();
    env.put("PYSPARK_GATEWAY_PORT", Integer.toString(endpoint.port()));
    env.put("PYSPARK_GATEWAY_SECRET", endpoint.token());
    env.put("PYTHONUNBUFFERED", "1");
    env.put("HEARTH_SESSION_ID", Long.toString(session.id()));
    // Executors start Python workers with the executable the Python SparkContext names.
    scala.Option<String> executorPython =
        session.sparkSession().sparkContext().getConf().getOption("spark.pyspark.python");
    if (executorPython.isDefined()) {
      env.put("PYSPARK_PYTHON", executorPython.get());
    }
    String pythonPath = sparkPythonPath();
    if (!pythonPath.isEmpty()) {
      String old = env.get("PYTHONPATH");
      env.put("PYTHONPATH", old == null || old.isEmpty() ? pythonPath : pythonPath + File.pathSeparator + old);
    }
    synchronized (stderrTail) {
      stderrTail.clear();
    }
    System.err.println("hearth: session " + session.id() + ": starting Python worker " + python);
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new IOException("cannot run '" + python + "': " + e.getMessage(), e);
    }
    kLive.add(p);
    BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
    Thread pump = new Thread(() -> pumpStderr(err), "hearth-python-stderr-" + session.id());
    pump.setDaemon(true);
    pump.start();
    Running r = new Running(p, pump);
    running = r;
    if (closed) { // close() ran while we were starting
      stopProcess();
      throw new IOException("session closed");
    }
    JsonNode ready = readReply(r);
    if (ready == null || !"ready".equals(ready.path("op").asText())) {
      throw new IOException("the Python worker did not start:\n" + String.join("\n", died(r).stderr()));
    }
    Thread reader = new Thread(() -> routeReplies(r), "hearth-python-out-" + session.id());
    reader.setDaemon(true);
    reader.start();
    // The session's pyfiles, before any statement is written (after `running` is set, so a
    // pyfile added meanwhile is written by addPythonPath if this list misses it).
    for (Artifacts.PythonPath path : session.pythonPaths()) {
      r.write(addPathRequest(path));
    }
    return r;
  }

  /** The reader thread of one process: routes replies until the worker's stdout ends. */
  private void routeReplies(Running r) {
    try {
      JsonNode reply;
      while ((reply = readReply(r)) != null) {
        String op = reply.path("op").asText();
        if (op.equals("execute")) {
          r.executeReplies.add(reply);
        } else if (op.equals("complete")) {
          CompletableFuture<List<String>> answer = r.completions.get(reply.path("id").asLong());
          if (answer != null) {
            List<String> candidates = new ArrayList<>();
            reply.path("candidates").forEach(c -> candidates.add(c.asText()));
            answer.complete(candidates);
          }
        } else {
          System.err.println("hearth: session " + session.id() + ": unexpected worker reply: " + reply);
        }
      }
    } catch (IOException e) {
      // the worker is gone
    } finally {
      r.executeReplies.add(kEndOfStream);
      r.completions.values().forEach(c -> c.complete(List.of()));
    }
  }

  /** spark.pyspark.python, else $PYSPARK_PYTHON, else python3 (as Livy). */
  private String pythonExecutable() {
    scala.Option<String> conf =
        session.sparkSession().sparkContext().getConf().getOption("spark.pyspark.python");
    if (conf.isDefined()) {
      return conf.get();
    }
    String env = System.getenv("PYSPARK_PYTHON");
    return env != null && !env.isEmpty() ? env : "python3";
  }

  /** $SPARK_HOME/python/lib/*.zip (pyspark and py4j of this Spark), if there are any. */
  private static String sparkPythonPath() {
    String home = System.getenv("SPARK_HOME");
    if (home == null) {
      return "";
    }
    Path lib = Path.of(home, "python", "lib");
    if (!Files.isDirectory(lib)) {
      return "";
    }
    List<String> zips = new ArrayList<>();
    try (Stream<Path> files = Files.list(lib)) {
      files.filter(f -> f.getFileName().toString().endsWith(".zip")).sorted()
          .forEach(f -> zips.add(f.toString()));
    } catch (IOException e) {
      return "";
    }
    return String.join(File.pathSeparator, zips);
  }

  /** The next JSON object the worker writes, or null at end of stream. */
  private JsonNode readReply(Running r) throws IOException {
    String line;
    while ((line = r.fromWorker.readLine()) != null) {
      try {
        JsonNode node = Codec.mapper().readTree(line);
        if (node != null && node.isObject()) {
          return node;
        }
      } catch (IOException e) {
        // fall through: not a protocol line
      }
      System.err.println("hearth: session " + session.id() + ": unexpected worker output: " + line);
    }
    return null;
  }

  private void pumpStderr(BufferedReader err) {
    try {
      String line;
      while ((line = err.readLine()) != null) {
        System.err.println(line);
        synchronized (stderrTail) {
          if (stderrTail.size() == kTailLines) {
            stderrTail.removeFirst();
          }
          stderrTail.addLast(line);
        }
      }
    } catch (IOException e) {
      // the worker is gone
    }
  }

  /** How a worker ended and the last lines it wrote to stderr. */
  private record Death(String how, List<String> stderr) {}

  /** Reaps the dead worker (kills it if it is still there) and says how it ended. */
  private Death died(Running r) {
    try {
      r.process.waitFor(2, TimeUnit.SECONDS);
      r.stderrPump.join(2000); // the pump ends at the end of stderr; wait for the last lines
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    String how = howItEnded(r.process); // before stopProcess, whose kill would hide it
    synchronized (startLock) {
      if (running == r) {
        stopProcess();
      }
    }
    synchronized (stderrTail) {
      return new Death(how, List.copyOf(stderrTail));
    }
  }

  private void stopProcess() {
    Running r = running;
    if (r != null) {
      kill(r.process);
      kLive.remove(r.process);
      running = null;
    }
  }
}
