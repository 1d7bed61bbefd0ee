package io.hearth.driver;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import py4j.ClientServer;

/**
 * The driver's one py4j server that the Python workers of all sessions connect to, and the
 * worker script extracted from the jar. Started on the first pyspark statement.
 *
 * <p>A py4j ClientServer (pinned-thread mode) rather than a GatewayServer: pyspark's
 * launch_gateway() speaks ClientServer by default (PYSPARK_PIN_THREAD=true), and pinned threads
 * keep sc.setJobGroup on the JVM thread that runs the statement's jobs.
 */
final class PythonGateway {
  private final CompletableFuture<SparkSession> spark;
  private final Map<Long, Session> sessions;
  private ClientServer server; // guarded by this
  private String token;
  private int port;
  private Path script;

  PythonGateway(CompletableFuture<SparkSession> spark, Map<Long, Session> sessions) {
    this.spark = spark;
    this.sessions = sessions;
  }

  /** What a worker needs to connect; starts the server on first call. */
  record Endpoint(int port, String token, Path script) {}

  synchronized Endpoint endpoint() throws IOException {
    if (server == null) {
      script = extractScript();
      byte[] secret = new byte[32];
      new SecureRandom().nextBytes(secret);
      token = HexFormat.of().formatHex(secret);
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.join().sparkContext());
      ClientServer s = new ClientServer.ClientServerBuilder(new EntryPoint(jsc, sessions))
          .javaAddress(InetAddress.getLoopbackAddress())
          .javaPort(0)
          .authToken(token)
          .autoStartJavaServer(false)
          .build();
      s.startServer(true);
      port = s.getJavaServer().getListeningPort();
      server = s;
      System.err.println("hearth: py4j server listening on 127.0.0.1:" + port);
    }
    return new Endpoint(port, token, script);
  }

  synchronized void stop() {
    if (server != null) {
      server.shutdown();
      server = null;
    }
  }

  private static Path extractScript() throws IOException {
    // createTempDirectory makes the directory private (0700) on POSIX systems.
    Path dir = Files.createTempDirectory("hearth-driver-");
    dir.toFile().deleteOnExit(); // registered first, so deleted after the script in it
    Path script = dir.resolve("hearth_worker.py");
    try (InputStream in = PythonGateway.class.getResourceAsStream("hearth_worker.py")) {
      if (in == null) {
        throw new IOException("hearth_worker.py is missing from the agent jar");
      }
      Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
    }
    script.toFile().deleteOnExit();
    return script;
  }

  /** The object Python sees as gateway.entry_point. Public for py4j's reflection. */
  public static final class EntryPoint {
    private final JavaSparkContext jsc;
    private final Map<Long, Session> sessions;

    EntryPoint(JavaSparkContext jsc, Map<Long, Session> sessions) {
      this.jsc = jsc;
      this.sessions = sessions;
    }

    public JavaSparkContext javaSparkContext() {
      return jsc;
    }

    /** The SparkSession of an open session; fails for an unknown one. */
    public SparkSession sparkSession(long sessionId) {
      Session s = sessions.get(sessionId);
      if (s == null) {
        throw new IllegalArgumentException("no session " + sessionId);
      }
      return s.sparkSession();
    }
  }
}
