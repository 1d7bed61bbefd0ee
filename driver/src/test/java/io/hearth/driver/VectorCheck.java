package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Checks {@link Codec} against the golden vectors of protocol/vectors: every valid frame decodes
 * and encodes back to the same JSON value, every frame in invalid/ is refused. Also checks a few
 * refusals that need no file (oversized frame, out-of-range progress, durations), the version
 * rules (every valid vector re-sent with other versions) and the job messages' fields.
 *
 * <p>Usage: VectorCheck PROTOCOL_VECTORS_DIR. Exits 1 when a check fails.
 */
public final class VectorCheck {
  private static final List<String> failures = new ArrayList<>();
  private static int checks;

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: VectorCheck PROTOCOL_VECTORS_DIR");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    List<Path> valid = jsonFiles(dir);
    List<Path> invalid = jsonFiles(dir.resolve("invalid"));
    if (valid.isEmpty() || invalid.isEmpty()) {
      fail(dir + ": no vectors found");
    }
    for (Path file : valid) {
      checkValid(file);
    }
    for (Path file : invalid) {
      checkRefused(file.getFileName().toString(), Files.readAllBytes(file));
    }
    for (Path file : valid) {
      checkVersions(file);
    }
    checkJobMessages(dir);
    checkDriverState(dir);
    checkExtraCases();
    System.out.println("driver.vectors: " + valid.size() + " valid and " + invalid.size()
        + " invalid vectors, " + checks + " checks, " + failures.size() + " failed");
    failures.forEach(f -> System.out.println("FAIL " + f));
    System.exit(failures.isEmpty() ? 0 : 1);
  }

  private static List<Path> jsonFiles(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> f.toString().endsWith(".json")).sorted().toList();
    }
  }

  private static void checkValid(Path file) throws IOException {
    checks++;
    String name = file.getFileName().toString();
    byte[] bytes = Files.readAllBytes(file);
    Message message;
    try {
      message = Codec.decode(bytes);
    } catch (Codec.DecodeException e) {
      fail(name + ": refused: " + e.getMessage());
      return;
    }
    String expectedType = name.replaceAll("\\.json$", "");
    String type = Codec.toTree(message).get("type").textValue();
    if (!expectedType.equals(type) && !expectedType.startsWith(type + "_")) {
      fail(name + ": decoded as " + type);
    }
    JsonNode original = Codec.mapper().readTree(bytes);
    JsonNode reencoded = Codec.mapper().readTree(Codec.encode(message));
    if (!sameValue(withoutNulls(original), withoutNulls(reencoded))) {
      fail(name + ": re-encoded as " + reencoded + ", expected " + original);
    }
    // The re-encoded frame must itself decode to the same message.
    try {
      if (!Codec.decode(Codec.encode(message)).equals(message)) {
        fail(name + ": decode(encode(m)) != m");
      }
    } catch (Codec.DecodeException e) {
      fail(name + ": own encoding refused: " + e.getMessage());
    }
  }

  /**
   * hello and reject are read with v 1 or 3, everything else only with 3; no frame with 0, 2 (the
   * previous version) or 4.
   */
  private static void checkVersions(Path file) throws IOException {
    String name = file.getFileName().toString();
    String text = Files.readString(file);
    String type = Codec.mapper().readTree(text).get("type").textValue();
    boolean handshake = type.equals("hello") || type.equals("reject");
    String rest = text.substring(text.indexOf(','));
    for (int v = 0; v <= 4; v++) {
      byte[] frame = ("{\"v\":" + v + rest).getBytes(java.nio.charset.StandardCharsets.UTF_8);
      String what = name + " with v " + v;
      if (v == Codec.kVersion || (handshake && v == Codec.kHandshakeVersion)) {
        checks++;
        try {
          Message m = Codec.decode(frame);
          int sent = Codec.toTree(m).get("v").intValue();
          if (sent != (handshake ? Codec.kHandshakeVersion : Codec.kVersion)) {
            fail(what + ": encoded with v " + sent);
          }
        } catch (Codec.DecodeException e) {
          fail(what + ": refused: " + e.getMessage());
        }
      } else {
        checkRefused(what, frame);
      }
    }
  }

  private static void checkJobMessages(Path dir) throws IOException {
    checks++;
    try {
      Message start = Codec.decode(Files.readAllBytes(dir.resolve("start_job.json")));
      Message expected = new Message.StartJob(0, 3, "com.example.WordCount",
          List.of("hdfs:///data/in", "--top", "10"),
          Map.of("wordcount.lowercase", "true", "wordcount.stopwords", "a,an,the"),
          "file:///var/hearth/artifacts/0/wordcount-1.2.jar");
      if (!start.equals(expected)) {
        fail("start_job.json decoded as " + start);
      }
      Message noJar = Codec.decode(Files.readAllBytes(dir.resolve("start_job_no_jar.json")));
      if (!noJar.equals(new Message.StartJob(2, 0, "com.example.Pi", List.of(), Map.of(), null))) {
        fail("start_job_no_jar.json decoded as " + noJar);
      }
      Message.JobUpdate failed = (Message.JobUpdate) Codec.decode(
          Files.readAllBytes(dir.resolve("job_update_failed.json")));
      if (!failed.state().equals("failed") || failed.result() != null || failed.traceback().size() != 3
          || !failed.error().startsWith("java.lang.IllegalArgumentException: ")) {
        fail("job_update_failed.json decoded as " + failed);
      }
      Message.JobUpdate none = (Message.JobUpdate) Codec.decode(
          Files.readAllBytes(dir.resolve("job_update_succeeded_no_result.json")));
      if (none.result() != null || none.error() != null || !none.traceback().isEmpty()) {
        fail("job_update_succeeded_no_result.json: null fields must read as absent: " + none);
      }
      Message.JobUpdate scalar = (Message.JobUpdate) Codec.decode(
          Files.readAllBytes(dir.resolve("job_update_succeeded_scalar.json")));
      if (scalar.result() == null || scalar.result().doubleValue() != 3.14159) {
        fail("job_update_succeeded_scalar.json: result " + scalar.result());
      }
    } catch (Codec.DecodeException | ClassCastException e) {
      fail("job vectors: " + e);
    }
    // An empty traceback and a null result are left out; a JSON null result too.
    checks++;
    JsonNode body = Codec.toTree(new Message.JobUpdate(0, 1, "succeeded", 1.0, 1, 2,
        Codec.mapper().nullNode(), null, List.of())).get("body");
    if (body.has("result") || body.has("traceback") || body.has("error")) {
      fail("job_update: empty optional fields encoded: " + body);
    }
  }

  /** driver_state lists the sessions held when it is written (Channel fills them in). */
  private static void checkDriverState(Path dir) throws IOException {
    checks++;
    try {
      Message ready = Codec.decode(Files.readAllBytes(dir.resolve("driver_state_ready_sessions.json")));
      Message expected = new Message.DriverState("ready", "local-1763770000000",
          "http://127.0.0.1:4040", null, List.of(0L, 3L, 12L, 9007199254740993L));
      if (!ready.equals(expected)) {
        fail("driver_state_ready_sessions.json decoded as " + ready);
      }
    } catch (Codec.DecodeException e) {
      fail("driver_state vectors: " + e);
    }
    checks++;
    Message.DriverState queued = new Message.DriverState("ready", "a", null, null, List.of());
    JsonNode body = Codec.toTree(queued.withSessions(List.of(4L, 2L))).get("body");
    if (!body.get("sessions").toString().equals("[4,2]") || !queued.sessions().isEmpty()) {
      fail("driver_state.withSessions: " + body);
    }
    checks++;
    if (!Codec.toTree(queued).get("body").get("sessions").isArray()) {
      fail("driver_state: an empty sessions list must be encoded: " + Codec.toTree(queued));
    }
  }

  private static void checkRefused(String name, byte[] bytes) {
    checks++;
    try {
      Message m = Codec.decode(bytes);
      fail(name + ": accepted as " + m);
    } catch (Codec.DecodeException e) {
      // expected
    } catch (RuntimeException e) {
      fail(name + ": decoder threw " + e + " instead of refusing");
    }
  }

  private static void checkExtraCases() {
    byte[] big = new byte[Codec.kMaxFrameBytes + 1];
    byte[] head = "{\"v\":3,\"type\":\"heartbeat\",\"body\":{},\"pad\":\"".getBytes();
    java.util.Arrays.fill(big, (byte) 'x');
    System.arraycopy(head, 0, big, 0, head.length);
    big[big.length - 2] = '"';
    big[big.length - 1] = '}';
    checkRefused("(frame over 16 MiB)", big);
    checkRefused("(progress 1.5)", ("{\"v\":3,\"type\":\"statement_update\",\"body\":{\"session_id\":0,"
        + "\"statement_id\":0,\"state\":\"running\",\"progress\":1.5,\"started\":0,\"completed\":0}}").getBytes());
    checkRefused("(integer as 1.0)",
        "{\"v\":3,\"type\":\"close_session\",\"body\":{\"session_id\":1.0}}".getBytes());
    checkRefused("(duplicate key)",
        "{\"v\":3,\"type\":\"close_session\",\"body\":{\"session_id\":1,\"session_id\":2}}".getBytes());
    checkRefused("(required field null)",
        "{\"v\":1,\"type\":\"reject\",\"body\":{\"reason\":null}}".getBytes());
    checkRefused("(trailing data)", "{\"v\":3,\"type\":\"shutdown\",\"body\":{}} {}".getBytes());
    checks++;
    if (!Codec.toTree(new Message.Hello("d", "s3cr3t", List.of(1L), 1, "4")).toString().contains("s3cr3t")
        || new Message.Hello("d", "s3cr3t", List.of(1L), 1, "4").toString().contains("s3cr3t")) {
      fail("hello: secret must be encoded but never appear in toString()");
    }
    // A job's traceback is bounded (the final job_update must fit in a frame).
    checks++;
    Throwable deep = new IllegalStateException("deep");
    StackTraceElement[] frames = new StackTraceElement[5000];
    java.util.Arrays.fill(frames, new StackTraceElement("a.B", "c", "B.java", 1));
    deep.setStackTrace(frames);
    List<String> traceback = Jobs.traceback(deep);
    if (traceback.size() != 501 || !traceback.get(0).equals("java.lang.IllegalStateException: deep")
        || !traceback.get(500).endsWith(" more lines")) {
      fail("job traceback not bounded: " + traceback.size() + " lines");
    }
    Map<String, Long> durations = Map.of("500ms", 500L, "90s", 90_000L, "10m", 600_000L, "2h", 7_200_000L);
    durations.forEach((text, ms) -> {
      checks++;
      if (HearthDriver.parseDuration(text) != ms) {
        fail("duration " + text + " parsed as " + HearthDriver.parseDuration(text));
      }
    });
    for (String bad : List.of("", "m", "10x", "-5s", "1.5s")) {
      checks++;
      try {
        HearthDriver.parseDuration(bad);
        fail("duration '" + bad + "' accepted");
      } catch (IllegalArgumentException e) {
        // expected
      }
    }
  }

  /** Optional fields may be absent or null (PROTOCOL.md), so null members do not count. */
  private static JsonNode withoutNulls(JsonNode node) {
    if (node.isObject()) {
      ObjectNode copy = ((ObjectNode) node).objectNode();
      for (Map.Entry<String, JsonNode> e : node.properties()) {
        if (!e.getValue().isNull()) {
          copy.set(e.getKey(), withoutNulls(e.getValue()));
        }
      }
      return copy;
    }
    return node;
  }

  /** JSON value equality where numbers compare by value (1.0 equals 1). */
  private static boolean sameValue(JsonNode a, JsonNode b) {
    return a.equals((x, y) -> {
      if (x.isNumber() && y.isNumber()) {
        return x.decimalValue().compareTo(y.decimalValue()) == 0 ? 0 : 1;
      }
      return x.equals(y) ? 0 : 1;
    }, b);
  }

  private static void fail(String message) {
    failures.add(message);
  }
}
