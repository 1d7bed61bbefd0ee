package io.hearth.driver;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Encodes and decodes frames of the driver channel (protocol/PROTOCOL.md, version 3).
 *
 * <p>Decoding is strict: anything the specification does not allow is a {@link DecodeException}.
 * States are checked against their sets; kinds and error codes are not (as in the C++ codec):
 * the agent answers an unknown kind itself, so the server hears about it.
 * Thread-safe: the mapper is configured once and only used to read and write trees.
 */
public final class Codec {
  public static final int kMaxFrameBytes = 16 * 1024 * 1024;
  /** The only version the agent speaks: every frame but hello and reject carries it. */
  public static final int kVersion = 3;
  /** The "v" of hello and reject, which a peer of any version can read. */
  public static final int kHandshakeVersion = 1;

  private static final Set<String> kDriverStates = Set.of("ready", "stopping", "error");
  private static final Set<String> kSessionStates = Set.of("starting", "idle", "busy", "error", "dead");
  private static final Set<String> kStatementStates = Set.of("running", "available", "cancelled");
  private static final Set<String> kArtifactKinds = Set.of("jar", "pyfile", "file", "archive");
  private static final Set<String> kJobStates = Set.of("queued", "running", "succeeded", "failed", "cancelled");

  private static final ObjectMapper kMapper = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);
  private static final JsonNodeFactory kNodes = JsonNodeFactory.instance;

  /** A frame that breaks the protocol; the message says what is wrong, for the log. */
  public static final class DecodeException extends Exception {
    public DecodeException(String message) {
      super(message);
    }
  }

  private Codec() {}

  public static ObjectMapper mapper() {
    return kMapper;
  }

  // ---------------------------------------------------------------------------------- decode

  /** Decodes one frame; never returns null. */
  public static Message decode(byte[] frame) throws DecodeException {
    if (frame.length > kMaxFrameBytes) {
      throw new DecodeException("frame of " + frame.length + " bytes exceeds " + kMaxFrameBytes);
    }
    JsonNode root;
    try {
      root = kMapper.readTree(frame);
    } catch (IOException e) {
      throw new DecodeException("not JSON: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw new DecodeException("frame is not a JSON object");
    }
    Fields envelope = new Fields((ObjectNode) root, "frame");
    long v = envelope.integer("v");
    String type = envelope.string("type");
    JsonNode bodyNode = envelope.node("body");
    envelope.finish();
    boolean handshake = type.equals("hello") || type.equals("reject");
    if (v != kVersion && !(handshake && v == kHandshakeVersion)) {
      throw new DecodeException("unsupported protocol version " + v + " for '" + type
          + "' (this agent speaks " + kVersion + "; only hello and reject are sent with version "
          + kHandshakeVersion + ")");
    }
    if (!bodyNode.isObject()) {
      throw new DecodeException("body is not an object");
    }
    Fields b = new Fields((ObjectNode) bodyNode, type);
    Message message = switch (type) {
      case "hello" -> new Message.Hello(b.string("driver_id"), b.string("secret"),
          b.integers("versions"), b.integer("pid"), b.string("spark_version"));
      case "welcome" -> new Message.Welcome(b.integer("version"), b.integer("heartbeat_ms"));
      case "reject" -> new Message.Reject(b.string("reason"));
      case "heartbeat" -> new Message.Heartbeat();
      case "driver_state" -> new Message.DriverState(b.oneOf("state", kDriverStates),
          b.optionalString("app_id"), b.optionalString("spark_ui_url"), b.optionalString("message"),
          b.integers("sessions"));
      case "open_session" -> new Message.OpenSession(b.integer("session_id"),
          b.string("kind"));
      case "session_state" -> new Message.SessionState(b.integer("session_id"),
          b.oneOf("state", kSessionStates), b.optionalString("message"));
      case "execute" -> new Message.Execute(b.integer("session_id"), b.integer("statement_id"),
          b.string("kind"), b.string("code"));
      case "statement_update" -> new Message.StatementUpdate(b.integer("session_id"),
          b.integer("statement_id"), b.oneOf("state", kStatementStates), b.progress("progress"),
          b.integer("started"), b.integer("completed"), b.optionalObject("output"));
      case "close_session" -> new Message.CloseSession(b.integer("session_id"));
      case "shutdown" -> new Message.Shutdown();
      case "error" -> new Message.Error(b.string("code"), b.string("message"));
      case "cancel_statement" -> new Message.CancelStatement(b.integer("session_id"),
          b.integer("statement_id"));
      case "complete" -> new Message.Complete(b.integer("session_id"), b.integer("request_id"),
          b.string("kind"), b.string("code"), b.integer("cursor"));
      case "completion" -> new Message.Completion(b.integer("session_id"), b.integer("request_id"),
          b.strings("candidates"));
      case "add_artifact" -> new Message.AddArtifact(b.integer("session_id"), b.integer("request_id"),
          b.oneOf("kind", kArtifactKinds), b.string("uri"));
      case "artifact_added" -> new Message.ArtifactAdded(b.integer("session_id"),
          b.integer("request_id"), b.optionalString("error"));
      case "start_job" -> new Message.StartJob(b.integer("session_id"), b.integer("job_id"),
          b.string("class_name"), b.strings("args"), b.stringMap("conf"), b.optionalString("jar"));
      case "job_update" -> new Message.JobUpdate(b.integer("session_id"), b.integer("job_id"),
          b.oneOf("state", kJobStates), b.progress("progress"), b.integer("started"),
          b.integer("completed"), b.optionalAny("result"), b.optionalString("error"),
          b.optionalStrings("traceback"));
      case "cancel_job" -> new Message.CancelJob(b.integer("session_id"), b.integer("job_id"));
      default -> throw new DecodeException("unknown message type '" + type + "'");
    };
    b.finish();
    return message;
  }

  /** Reads the fields of one JSON object and remembers which ones were read. */
  private static final class Fields {
    private final ObjectNode object;
    private final String where;
    private final Set<String> seen = new HashSet<>();

    Fields(ObjectNode object, String where) {
      this.object = object;
      this.where = where;
    }

    JsonNode node(String key) throws DecodeException {
      seen.add(key);
      JsonNode n = object.get(key);
      if (n == null || n.isNull()) {
        throw new DecodeException(where + ": missing field '" + key + "'");
      }
      return n;
    }

    JsonNode optionalNode(String key) {
      seen.add(key);
      JsonNode n = object.get(key);
      return n == null || n.isNull() ? null : n;
    }

    long integer(String key) throws DecodeException {
      return asInteger(node(key), key);
    }

    private long asInteger(JsonNode n, String key) throws DecodeException {
      if (!n.isIntegralNumber() || !n.canConvertToLong()) {
        throw new DecodeException(where + ": '" + key + "' is not a 64-bit integer");
      }
      return n.longValue();
    }

    String string(String key) throws DecodeException {
      JsonNode n = node(key);
      if (!n.isTextual()) {
        throw new DecodeException(where + ": '" + key + "' is not a string");
      }
      return checkUnicode(key, n.textValue());
    }

    String optionalString(String key) throws DecodeException {
      JsonNode n = optionalNode(key);
      if (n != null && !n.isTextual()) {
        throw new DecodeException(where + ": '" + key + "' is not a string");
      }
      return n == null ? null : checkUnicode(key, n.textValue());
    }

    /** Refuses lone surrogates (e.g. an escaped \\udc00), which are not Unicode text. */
    String checkUnicode(String key, String s) throws DecodeException {
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
          i++;
        } else if (Character.isSurrogate(c)) {
          throw new DecodeException(where + ": '" + key + "' holds a lone surrogate");
        }
      }
      return s;
    }

    List<String> strings(String key) throws DecodeException {
      JsonNode n = node(key);
      if (!n.isArray()) {
        throw new DecodeException(where + ": '" + key + "' is not an array");
      }
      List<String> out = new ArrayList<>();
      for (JsonNode item : n) {
        if (!item.isTextual()) {
          throw new DecodeException(where + ": '" + key + "' holds a non-string");
        }
        out.add(checkUnicode(key, item.textValue()));
      }
      return List.copyOf(out);
    }

    String oneOf(String key, Set<String> allowed) throws DecodeException {
      String s = string(key);
      if (!allowed.contains(s)) {
        throw new DecodeException(where + ": '" + key + "' has unknown value '" + s + "'");
      }
      return s;
    }

    List<Long> integers(String key) throws DecodeException {
      JsonNode n = node(key);
      if (!n.isArray()) {
        throw new DecodeException(where + ": '" + key + "' is not an array");
      }
      List<Long> out = new ArrayList<>();
      for (JsonNode item : n) {
        out.add(asInteger(item, key));
      }
      return List.copyOf(out);
    }

    double progress(String key) throws DecodeException {
      JsonNode n = node(key);
      if (!n.isNumber() || !(n.doubleValue() >= 0.0 && n.doubleValue() <= 1.0)) {
        throw new DecodeException(where + ": '" + key + "' is not a number in [0, 1]");
      }
      return n.doubleValue();
    }

    /** An optional array of strings; absent or null reads as an empty list. */
    List<String> optionalStrings(String key) throws DecodeException {
      return optionalNode(key) == null ? List.of() : strings(key);
    }

    /** An object of string values, in the frame's order (the parser refuses duplicate keys). */
    Map<String, String> stringMap(String key) throws DecodeException {
      JsonNode n = node(key);
      if (!n.isObject()) {
        throw new DecodeException(where + ": '" + key + "' is not an object");
      }
      Map<String, String> out = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : n.properties()) {
        if (!e.getValue().isTextual()) {
          throw new DecodeException(where + ": '" + key + "' holds a non-string value for '"
              + e.getKey() + "'");
        }
        out.put(checkUnicode(key, e.getKey()), checkUnicode(key, e.getValue().textValue()));
      }
      return Collections.unmodifiableMap(out);
    }

    JsonNode optionalObject(String key) throws DecodeException {
      JsonNode n = optionalNode(key);
      if (n != null && !n.isObject()) {
        throw new DecodeException(where + ": '" + key + "' is not an object");
      }
      return n == null ? null : checkTree(key, n);
    }

    /** Any JSON value; null when absent or null. */
    JsonNode optionalAny(String key) throws DecodeException {
      JsonNode n = optionalNode(key);
      return n == null ? null : checkTree(key, n);
    }

    /** Refuses lone surrogates anywhere in a JSON value (keys and strings). Iterative: a value
     *  may nest deeply. */
    JsonNode checkTree(String key, JsonNode root) throws DecodeException {
      ArrayDeque<JsonNode> pending = new ArrayDeque<>();
      pending.push(root);
      while (!pending.isEmpty()) {
        JsonNode n = pending.pop();
        if (n.isTextual()) {
          checkUnicode(key, n.textValue());
        } else if (n.isObject()) {
          for (Map.Entry<String, JsonNode> e : n.properties()) {
            checkUnicode(key, e.getKey());
            pending.push(e.getValue());
          }
        } else if (n.isArray()) {
          n.forEach(pending::push);
        }
      }
      return root;
    }

    void finish() throws DecodeException {
      for (Iterator<String> it = object.fieldNames(); it.hasNext(); ) {
        String key = it.next();
        if (!seen.contains(key)) {
          throw new DecodeException(where + ": unknown field '" + key + "'");
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------- encode

  /** Encodes one frame as UTF-8 JSON. The caller checks the size against kMaxFrameBytes. */
  public static byte[] encode(Message message) {
    try {
      return kMapper.writeValueAsBytes(toTree(message));
    } catch (IOException e) {
      throw new IllegalStateException("cannot encode " + message.getClass().getSimpleName(), e);
    }
  }

  /** The frame of a message as a JSON tree; optional fields that are null are left out. */
  public static ObjectNode toTree(Message message) {
    ObjectNode body = kNodes.objectNode();
    String type;
    if (message instanceof Message.Hello m) {
      type = "hello";
      body.put("driver_id", m.driverId()).put("secret", m.secret());
      ArrayNode versions = body.putArray("versions");
      m.versions().forEach(versions::add);
      body.put("pid", m.pid()).put("spark_version", m.sparkVersion());
    } else if (message instanceof Message.Welcome m) {
      type = "welcome";
      body.put("version", m.version()).put("heartbeat_ms", m.heartbeatMs());
    } else if (message instanceof Message.Reject m) {
      type = "reject";
      body.put("reason", m.reason());
    } else if (message instanceof Message.Heartbeat) {
      type = "heartbeat";
    } else if (message instanceof Message.DriverState m) {
      type = "driver_state";
      body.put("state", m.state());
      putOptional(body, "app_id", m.appId());
      putOptional(body, "spark_ui_url", m.sparkUiUrl());
      putOptional(body, "message", m.message());
      ArrayNode sessions = body.putArray("sessions");
      m.sessions().forEach(sessions::add);
    } else if (message instanceof Message.OpenSession m) {
      type = "open_session";
      body.put("session_id", m.sessionId()).put("kind", m.kind());
    } else if (message instanceof Message.SessionState m) {
      type = "session_state";
      body.put("session_id", m.sessionId()).put("state", m.state());
      putOptional(body, "message", m.message());
    } else if (message instanceof Message.Execute m) {
      type = "execute";
      body.put("session_id", m.sessionId()).put("statement_id", m.statementId())
          .put("kind", m.kind()).put("code", m.code());
    } else if (message instanceof Message.StatementUpdate m) {
      type = "statement_update";
      body.put("session_id", m.sessionId()).put("statement_id", m.statementId())
          .put("state", m.state()).put("progress", m.progress())
          .put("started", m.started()).put("completed", m.completed());
      if (m.output() != null) {
        body.set("output", m.output());
      }
    } else if (message instanceof Message.CloseSession m) {
      type = "close_session";
      body.put("session_id", m.sessionId());
    } else if (message instanceof Message.Shutdown) {
      type = "shutdown";
    } else if (message instanceof Message.Error m) {
      type = "error";
      body.put("code", m.code()).put("message", m.message());
    } else if (message instanceof Message.CancelStatement m) {
      type = "cancel_statement";
      body.put("session_id", m.sessionId()).put("statement_id", m.statementId());
    } else if (message instanceof Message.Complete m) {
      type = "complete";
      body.put("session_id", m.sessionId()).put("request_id", m.requestId())
          .put("kind", m.kind()).put("code", m.code()).put("cursor", m.cursor());
    } else if (message instanceof Message.Completion m) {
      type = "completion";
      body.put("session_id", m.sessionId()).put("request_id", m.requestId());
      ArrayNode candidates = body.putArray("candidates");
      m.candidates().forEach(candidates::add);
    } else if (message instanceof Message.AddArtifact m) {
      type = "add_artifact";
      body.put("session_id", m.sessionId()).put("request_id", m.requestId())
          .put("kind", m.kind()).put("uri", m.uri());
    } else if (message instanceof Message.ArtifactAdded m) {
      type = "artifact_added";
      body.put("session_id", m.sessionId()).put("request_id", m.requestId());
      putOptional(body, "error", m.error());
    } else if (message instanceof Message.StartJob m) {
      type = "start_job";
      body.put("session_id", m.sessionId()).put("job_id", m.jobId()).put("class_name", m.className());
      ArrayNode args = body.putArray("args");
      m.args().forEach(args::add);
      ObjectNode conf = body.putObject("conf");
      m.conf().forEach(conf::put);
      putOptional(body, "jar", m.jar());
    } else if (message instanceof Message.JobUpdate m) {
      type = "job_update";
      body.put("session_id", m.sessionId()).put("job_id", m.jobId())
          .put("state", m.state()).put("progress", m.progress())
          .put("started", m.started()).put("completed", m.completed());
      if (m.result() != null && !m.result().isNull()) {
        body.set("result", m.result());
      }
      putOptional(body, "error", m.error());
      if (m.traceback() != null && !m.traceback().isEmpty()) {
        ArrayNode traceback = body.putArray("traceback");
        m.traceback().forEach(traceback::add);
      }
    } else if (message instanceof Message.CancelJob m) {
      type = "cancel_job";
      body.put("session_id", m.sessionId()).put("job_id", m.jobId());
    } else {
      throw new IllegalArgumentException("unknown message " + message);
    }
    ObjectNode frame = kNodes.objectNode();
    boolean handshake = message instanceof Message.Hello || message instanceof Message.Reject;
    frame.put("v", handshake ? kHandshakeVersion : kVersion).put("type", type).set("body", body);
    return frame;
  }

  private static void putOptional(ObjectNode body, String key, String value) {
    if (value != null) {
      body.put(key, value);
    }
  }
}
