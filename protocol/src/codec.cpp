#include "hearth/protocol/codec.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "strict_json.hpp"

namespace hearth::protocol {

namespace {

// The strict JSON rules (duplicate keys, integers, UTF-8, any-JSON fields) are shared with the
// client channel's codec.
using strict_json::bad_frame;
using strict_json::BodyReader;
using strict_json::JsonWriter;
using strict_json::quoted;
using strict_json::write_string;
using strict_json::write_value;

// ---- decoding ----------------------------------------------------------------------------------

using Body = rapidjson::Value;

Result<Message> decode_hello(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"driver_id", "secret", "versions", "pid", "spark_version"});
  Hello m;
  reader.read_string("driver_id", m.driver_id);
  reader.read_string("secret", m.secret);
  reader.read_integer_array("versions", m.versions);
  reader.read_integer("pid", m.pid);
  reader.read_string("spark_version", m.spark_version);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_welcome(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"version", "heartbeat_ms"});
  Welcome m;
  reader.read_integer("version", m.version);
  reader.read_integer("heartbeat_ms", m.heartbeat_ms);
  return reader.finish<Message>(m);
}

Result<Message> decode_reject(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"reason"});
  Reject m;
  reader.read_string("reason", m.reason);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_heartbeat(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {});
  return reader.finish<Message>(Heartbeat{});
}

Result<Message> decode_driver_state(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"state", "app_id", "spark_ui_url", "message", "sessions"});
  DriverStatus m;
  reader.read_state("state", m.state, {"ready", "stopping", "error"});
  reader.read_optional_string("app_id", m.app_id);
  reader.read_optional_string("spark_ui_url", m.spark_ui_url);
  reader.read_optional_string("message", m.message);
  reader.read_integer_array("sessions", m.sessions);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_open_session(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "kind"});
  OpenSession m;
  reader.read_integer("session_id", m.session_id);
  reader.read_string("kind", m.kind);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_session_state(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "state", "message"});
  SessionStatus m;
  reader.read_integer("session_id", m.session_id);
  reader.read_state("state", m.state, {"starting", "idle", "busy", "error", "dead"});
  reader.read_optional_string("message", m.message);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_execute(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "statement_id", "kind", "code"});
  Execute m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("statement_id", m.statement_id);
  reader.read_string("kind", m.kind);
  reader.read_string("code", m.code);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_statement_update(std::string_view type, const Body& body) {
  BodyReader reader(type, body,
                    {"session_id", "statement_id", "state", "progress", "started", "completed",
                     "output"});
  StatementUpdate m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("statement_id", m.statement_id);
  reader.read_state("state", m.state, {"running", "available", "cancelled"});
  reader.read_fraction("progress", m.progress);
  reader.read_integer("started", m.started);
  reader.read_integer("completed", m.completed);
  reader.read_optional_object_json("output", m.output_json);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_close_session(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id"});
  CloseSession m;
  reader.read_integer("session_id", m.session_id);
  return reader.finish<Message>(m);
}

Result<Message> decode_shutdown(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {});
  return reader.finish<Message>(Shutdown{});
}

Result<Message> decode_error(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"code", "message"});
  ErrorReply m;
  reader.read_string("code", m.code);
  reader.read_string("message", m.message);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_cancel_statement(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "statement_id"});
  CancelStatement m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("statement_id", m.statement_id);
  return reader.finish<Message>(m);
}

Result<Message> decode_complete(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "kind", "code", "cursor"});
  Complete m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_string("kind", m.kind);
  reader.read_string("code", m.code);
  reader.read_integer("cursor", m.cursor);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_completion(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "candidates"});
  Completion m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_string_array("candidates", m.candidates);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_add_artifact(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "kind", "uri"});
  AddArtifact m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_state("kind", m.kind, {"jar", "pyfile", "file", "archive"});
  reader.read_string("uri", m.uri);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_artifact_added(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "error"});
  ArtifactAdded m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_optional_string("error", m.error);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_start_job(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "job_id", "class_name", "args", "conf", "jar"});
  StartJob m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("job_id", m.job_id);
  reader.read_string("class_name", m.class_name);
  reader.read_string_array("args", m.args);
  reader.read_string_map("conf", m.conf);
  reader.read_optional_string("jar", m.jar);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_job_update(std::string_view type, const Body& body) {
  BodyReader reader(type, body,
                    {"session_id", "job_id", "state", "progress", "started", "completed", "result",
                     "error", "traceback"});
  JobUpdate m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("job_id", m.job_id);
  reader.read_state("state", m.state, {"queued", "running", "succeeded", "failed", "cancelled"});
  reader.read_fraction("progress", m.progress);
  reader.read_integer("started", m.started);
  reader.read_integer("completed", m.completed);
  reader.read_optional_json("result", m.result_json);
  reader.read_optional_string("error", m.error);
  reader.read_optional_string_array("traceback", m.traceback);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_cancel_job(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "job_id"});
  CancelJob m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("job_id", m.job_id);
  return reader.finish<Message>(m);
}

struct BodyDecoder {
  std::string_view type;
  Result<Message> (*decode)(std::string_view type, const Body& body);
};

constexpr std::array<BodyDecoder, std::variant_size_v<Message>> kBodyDecoders{{
    {"hello", decode_hello},
    {"welcome", decode_welcome},
    {"reject", decode_reject},
    {"heartbeat", decode_heartbeat},
    {"driver_state", decode_driver_state},
    {"open_session", decode_open_session},
    {"session_state", decode_session_state},
    {"execute", decode_execute},
    {"statement_update", decode_statement_update},
    {"close_session", decode_close_session},
    {"shutdown", decode_shutdown},
    {"error", decode_error},
    {"cancel_statement", decode_cancel_statement},
    {"complete", decode_complete},
    {"completion", decode_completion},
    {"add_artifact", decode_add_artifact},
    {"artifact_added", decode_artifact_added},
    {"start_job", decode_start_job},
    {"job_update", decode_job_update},
    {"cancel_job", decode_cancel_job},
}};

// Whether a frame of this type may carry "v" = kHandshakeVersion (besides kVersion).
bool is_handshake_type(std::string_view type) { return type == "hello" || type == "reject"; }

Result<Message> decode_document(std::string_view frame) {
  rapidjson::Document document;
  if (auto error = strict_json::parse_object(frame, kMaxFrameBytes, "frame", document)) {
    return std::move(*error);
  }

  // The version first: a frame of a later version may have a different envelope, and
  // "unsupported version" is the useful thing to log about it.
  const auto version_read = strict_json::read_version(document);
  if (!version_read) return version_read.error();
  const int64_t version = *version_read;
  if (version != kVersion && version != kHandshakeVersion) {
    return bad_frame("unsupported protocol version " + std::to_string(version) +
                     " (this peer speaks " + std::to_string(kVersion) + ")");
  }
  const auto envelope = strict_json::read_type_and_body(document);
  if (!envelope) return envelope.error();
  const std::string_view type_name = envelope->type;
  for (const auto& decoder : kBodyDecoders) {
    if (decoder.type != type_name) continue;
    if (version != kVersion && !is_handshake_type(type_name)) {
      return bad_frame("unsupported protocol version " + std::to_string(version) + " for " +
                       quoted(type_name) + " (this peer speaks " + std::to_string(kVersion) +
                       "; only hello and reject are sent with version " +
                       std::to_string(kHandshakeVersion) + ")");
    }
    return decoder.decode(decoder.type, *envelope->body);
  }
  return bad_frame("unknown message type " + quoted(type_name));
}

// ---- encoding ----------------------------------------------------------------------------------

// Writes the body of each message type; optional fields that are nullopt are left out.
class BodyWriter {
 public:
  explicit BodyWriter(JsonWriter& writer) : writer_(writer) {}

  void operator()(const Hello& m) {
    string("driver_id", m.driver_id);
    string("secret", m.secret);
    integer_array("versions", m.versions);
    integer("pid", m.pid);
    string("spark_version", m.spark_version);
  }
  void operator()(const Welcome& m) {
    integer("version", m.version);
    integer("heartbeat_ms", m.heartbeat_ms);
  }
  void operator()(const Reject& m) { string("reason", m.reason); }
  void operator()(const Heartbeat&) {}
  void operator()(const DriverStatus& m) {
    string("state", m.state);
    optional_string("app_id", m.app_id);
    optional_string("spark_ui_url", m.spark_ui_url);
    optional_string("message", m.message);
    integer_array("sessions", m.sessions);
  }
  void operator()(const OpenSession& m) {
    integer("session_id", m.session_id);
    string("kind", m.kind);
  }
  void operator()(const SessionStatus& m) {
    integer("session_id", m.session_id);
    string("state", m.state);
    optional_string("message", m.message);
  }
  void operator()(const Execute& m) {
    integer("session_id", m.session_id);
    integer("statement_id", m.statement_id);
    string("kind", m.kind);
    string("code", m.code);
  }
  void operator()(const StatementUpdate& m) {
    integer("session_id", m.session_id);
    integer("statement_id", m.statement_id);
    string("state", m.state);
    progress("statement_update", m.progress);
    integer("started", m.started);
    integer("completed", m.completed);
    if (m.output_json) json_text("statement_update", "output", *m.output_json, true);
  }
  void operator()(const CloseSession& m) { integer("session_id", m.session_id); }
  void operator()(const Shutdown&) {}
  void operator()(const ErrorReply& m) {
    string("code", m.code);
    string("message", m.message);
  }
  void operator()(const CancelStatement& m) {
    integer("session_id", m.session_id);
    integer("statement_id", m.statement_id);
  }
  void operator()(const Complete& m) {
    integer("session_id", m.session_id);
    integer("request_id", m.request_id);
    string("kind", m.kind);
    string("code", m.code);
    integer("cursor", m.cursor);
  }
  void operator()(const AddArtifact& m) {
    integer("session_id", m.session_id);
    integer("request_id", m.request_id);
    string("kind", m.kind);
    string("uri", m.uri);
  }
  void operator()(const ArtifactAdded& m) {
    integer("session_id", m.session_id);
    integer("request_id", m.request_id);
    optional_string("error", m.error);
  }
  void operator()(const StartJob& m) {
    integer("session_id", m.session_id);
    integer("job_id", m.job_id);
    string("class_name", m.class_name);
    string_array("args", m.args);
    key("conf");
    writer_.StartObject();
    for (const auto& [name, value] : m.conf) {
      write_string(writer_, name, true);
      write_string(writer_, value);
    }
    writer_.EndObject();
    optional_string("jar", m.jar);
  }
  void operator()(const JobUpdate& m) {
    integer("session_id", m.session_id);
    integer("job_id", m.job_id);
    string("state", m.state);
    progress("job_update", m.progress);
    integer("started", m.started);
    integer("completed", m.completed);
    if (m.result_json) json_text("job_update", "result", *m.result_json, false);
    optional_string("error", m.error);
    if (!m.traceback.empty()) string_array("traceback", m.traceback);
  }
  void operator()(const CancelJob& m) {
    integer("session_id", m.session_id);
    integer("job_id", m.job_id);
  }
  void operator()(const Completion& m) {
    integer("session_id", m.session_id);
    integer("request_id", m.request_id);
    string_array("candidates", m.candidates);
  }

 private:
  void integer_array(std::string_view name, const std::vector<int64_t>& values) {
    key(name);
    writer_.StartArray();
    for (const int64_t value : values) writer_.Int64(value);
    writer_.EndArray();
  }
  void string_array(std::string_view name, const std::vector<std::string>& values) {
    key(name);
    writer_.StartArray();
    for (const auto& value : values) write_string(writer_, value);
    writer_.EndArray();
  }
  void progress(std::string_view type, double value) {
    if (!std::isfinite(value)) {
      throw std::invalid_argument(std::string(type) + ": progress must be a finite number");
    }
    key("progress");
    writer_.Double(value);
  }
  // A field holding JSON text (StatementUpdate::output_json, JobUpdate::result_json). Re-parsed
  // rather than copied raw, so a caller's mistake cannot produce a broken frame.
  void json_text(std::string_view type, std::string_view name, const std::string& text,
                 bool object_only) {
    rapidjson::Document value;
    if (!strict_json::parse_json_text(text, value, strict_json::InvalidUtf8::kRefuse) ||
        (object_only && !value.IsObject())) {
      throw std::invalid_argument(std::string(type) + ": the " + std::string(name) +
                                  " field's JSON text does not hold " +
                                  (object_only ? "a JSON object" : "one JSON value"));
    }
    key(name);
    write_value(writer_, value);
  }
  void key(std::string_view name) {
    writer_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  }
  void string(std::string_view name, std::string_view value) {
    key(name);
    write_string(writer_, value);
  }
  void optional_string(std::string_view name, const std::optional<std::string>& value) {
    if (value) string(name, *value);
  }
  void integer(std::string_view name, int64_t value) {
    key(name);
    writer_.Int64(value);
  }

  JsonWriter& writer_;
};

}  // namespace

std::string encode(const Message& message) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("v");
  writer.Int64(wire_version(message));
  writer.Key("type");
  const std::string_view type = type_name(message);
  writer.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
  writer.Key("body");
  writer.StartObject();
  std::visit(BodyWriter(writer), message);
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<Message> decode(std::string_view frame) {
  try {
    return decode_document(frame);
  } catch (const std::bad_alloc&) {
    // The frame size is bounded, so this means the process is short of memory, not that the
    // frame is hostile; still, decode() promises not to throw.
    return bad_frame("out of memory while decoding a frame of " + std::to_string(frame.size()) +
                     " bytes");
  }
}

}  // namespace hearth::protocol
