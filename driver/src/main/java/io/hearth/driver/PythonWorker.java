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
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The pyspark kind: one Python process (hearth_worker.py) per session, attached to the driver
 * JVM through {@link PythonGateway}. Requests and replies are one JSON object per line on the
 * worker's stdin and stdout; its stderr goes to the driver log. A worker that dies fails its
 * statement and is replaced on the next one.
 */
final class PythonWorker implements Interpreter {
  private static final int kTailLines = 40;
  // Every live worker of the JVM, so that a shutdown hook leaves no orphan Python behind.
  private static final Set<Process> kLive = ConcurrentHashMap.newKeySet();

  private final Session session;
  private final PythonGateway gateway;
  private final ArrayDeque<String> stderrTail = new ArrayDeque<>(); // guarded by itself
  private volatile Process process;
  private volatile boolean closed;
  private BufferedWriter toWorker;
  private BufferedReader fromWorker;
  private Thread stderrPump;

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
    Process current = process;
    if (current == null || !current.isAlive()) {
      try {
        start();
      } catch (IOException e) {
        stopProcess();
        return Outputs.error(statementId, "InterpreterError",
            "Fail to start interpreter:\n" + e.getMessage(), List.of());
      }
    }
    try {
      ObjectNode request = Codec.mapper().createObjectNode();
      request.put("statement_id", statementId).put("code", code).put("job_group", jobGroup)
          .put("pool", session.pool());
      toWorker.write(Codec.mapper().writeValueAsString(request));
      toWorker.write('\n');
      toWorker.flush();
      JsonNode reply = readReply();
      if (reply == null) {
        return Outputs.error(statementId, "Error", "Interpreter died:\n" + died(), List.of());
      }
      return (ObjectNode) reply;
    } catch (IOException e) {
      return Outputs.error(statementId, "Error", "Interpreter died:\n" + died(), List.of());
    }
  }

  @Override
  public void close() {
    closed = true;
    stopProcess();
  }

  private void start() throws IOException {
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
    process = p;
    if (closed) { // close() ran while we were starting
      stopProcess();
      throw new IOException("session closed");
    }
    toWorker = new BufferedWriter(new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8));
    fromWorker = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
    stderrPump = new Thread(() -> pumpStderr(err), "hearth-python-stderr-" + session.id());
    stderrPump.setDaemon(true);
    stderrPump.start();
    JsonNode ready = readReply();
    if (ready == null || !ready.path("ready").asBoolean(false)) {
      throw new IOException("the Python worker did not start:\n" + died());
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
  private JsonNode readReply() throws IOException {
    String line;
    while ((line = fromWorker.readLine()) != null) {
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

  /** Reaps the dead worker and returns the last lines it wrote to stderr. */
  private String died() {
    Process p = process;
    Thread pump = stderrPump;
    try {
      if (p != null) {
        p.waitFor(2, TimeUnit.SECONDS);
      }
      if (pump != null) {
        pump.join(2000); // the pump ends at the end of stderr; wait for the last lines
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    stopProcess();
    synchronized (stderrTail) {
      return String.join("\n", stderrTail);
    }
  }

  private void stopProcess() {
    Process p = process;
    if (p != null) {
      kill(p);
      kLive.remove(p);
      process = null;
    }
  }
}
