#include "hearth/protocol/codec.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace hearth::protocol {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Iterative parsing keeps the call stack flat however deeply a hostile frame nests; full
// precision makes a double written by JsonWriter parse back to the same double.
constexpr unsigned kParseFlags = rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseFullPrecisionFlag;

constexpr std::string_view kBadFrame = "bad_frame";

Error bad_frame(std::string message) {
  return make_error(std::string(kBadFrame), std::move(message));
}

// ---- UTF-8 ---------------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence starting at text[i] (Unicode table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;  // U+D800..U+DFFF are surrogates, not characters
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  if (byte(i + 1) < second_min || byte(i + 1) > second_max) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string fixed;
  fixed.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      fixed += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      fixed.append(text.substr(i, length));
      i += length;
    }
  }
  return fixed;
}

// ---- JSON helpers ------------------------------------------------------------------------------

std::string_view as_view(const rapidjson::Value& string) {
  return {string.GetString(), string.GetStringLength()};
}

// A key or value from a frame, made safe and short enough to quote in a log line.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxQuoted = 64;
  std::string out = "'";
  std::size_t end = text.size();
  if (end > kMaxQuoted) {
    end = kMaxQuoted;
    // Cut before a character, not inside one.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  }
  std::size_t i = 0;
  for (; i < end; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < text.size()) out += "...";
  out += "'";
  return replace_invalid_utf8(out);  // keys are valid UTF-8, but the frame's type may not be
}

std::string_view describe(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      if (value.IsInt64()) return "an integer";
      if (value.IsUint64()) return "an integer beyond the 64-bit signed range";
      return "a number with a fraction or an exponent";
  }
  return "an unknown value";
}

// Writes `text` as a JSON string (or object key). Invalid UTF-8 is replaced by U+FFFD, so the
// frame stays decodable; returns false if that happened.
bool write_string(JsonWriter& writer, std::string_view text, bool as_key = false) {
  std::string fixed;
  const bool valid = is_valid_utf8(text);
  if (!valid) {
    fixed = replace_invalid_utf8(text);
    text = fixed;
  }
  const auto length = static_cast<rapidjson::SizeType>(text.size());
  if (as_key) {
    writer.Key(text.data(), length, true);
  } else {
    writer.String(text.data(), length, true);
  }
  return valid;
}

// Writes `root` compactly without recursion (Value::Accept recurses once per nesting level, and
// a 16 MiB frame can nest millions of levels deep). Returns false if a string or key held
// invalid UTF-8 (possible after parsing: RapidJSON decodes a lone "\udc00" escape to the bytes of
// a surrogate); such strings are written with U+FFFD.
bool write_value(JsonWriter& writer, const rapidjson::Value& root) {
  struct Open {
    const rapidjson::Value* container;
    rapidjson::SizeType next;
  };
  std::vector<Open> open;
  bool valid = true;
  const auto start = [&](const rapidjson::Value& value) {
    switch (value.GetType()) {
      case rapidjson::kNullType:
        writer.Null();
        break;
      case rapidjson::kFalseType:
      case rapidjson::kTrueType:
        writer.Bool(value.GetBool());
        break;
      case rapidjson::kStringType:
        valid = write_string(writer, as_view(value)) && valid;
        break;
      case rapidjson::kNumberType:
        if (value.IsDouble()) {
          writer.Double(value.GetDouble());  // always finite: the parser refuses NaN and Inf
        } else if (value.IsInt64()) {
          writer.Int64(value.GetInt64());
        } else {
          writer.Uint64(value.GetUint64());
        }
        break;
      case rapidjson::kObjectType:
        writer.StartObject();
        open.push_back({&value, 0});
        break;
      case rapidjson::kArrayType:
        writer.StartArray();
        open.push_back({&value, 0});
        break;
    }
  };
  start(root);
  while (!open.empty()) {
    // Copy, not reference: start() may push and so move the vector's storage.
    const Open top = open.back();
    if (top.container->IsObject()) {
      if (top.next == top.container->MemberCount()) {
        writer.EndObject();
        open.pop_back();
        continue;
      }
      const auto& member = top.container->MemberBegin()[top.next];
      ++open.back().next;
      valid = write_string(writer, as_view(member.name), true) && valid;
      start(member.value);
    } else {
      if (top.next == top.container->Size()) {
        writer.EndArray();
        open.pop_back();
        continue;
      }
      const auto& element = top.container->Begin()[top.next];
      ++open.back().next;
      start(element);
    }
  }
  return valid;
}

// Checks that `object` has only the keys in `allowed`, each at most once. `where` and `noun` name
// the object in the error ("envelope"/"key", "execute"/"field").
std::optional<Error> check_keys(const rapidjson::Value& object, std::string_view where,
                                std::string_view noun,
                                std::initializer_list<std::string_view> allowed) {
  std::array<unsigned, 16> seen{};  // the largest body (job_update) has 9 fields
  if (allowed.size() > seen.size()) {
    throw std::logic_error("check_keys: more fields than it can count");  // a bug, not a frame
  }
  for (const auto& member : object.GetObject()) {
    const std::string_view key = as_view(member.name);
    std::size_t index = 0;
    for (const std::string_view name : allowed) {
      if (name == key) break;
      ++index;
    }
    if (index == allowed.size()) {
      return bad_frame(std::string(where) + ": unknown " + std::string(noun) + " " + quoted(key));
    }
    if (++seen.at(index) > 1) {
      return bad_frame(std::string(where) + ": " + std::string(noun) + " " + quoted(key) +
                       " appears more than once");
    }
  }
  return std::nullopt;
}

// ---- decoding ----------------------------------------------------------------------------------

// Reads the fields of one message body. Every read is a no-op after the first failure, so a
// decoder reads all its fields in order and checks once at the end; the error names the first
// problem found.
class BodyReader {
 public:
  // Checks at once that the body has no unknown or repeated field.
  BodyReader(std::string_view type, const rapidjson::Value& body,
             std::initializer_list<std::string_view> fields)
      : type_(type), body_(body) {
    error_ = check_keys(body, type, "field", fields);
  }

  void read_string(const char* key, std::string& out) {
    if (const auto* value = find(key, true)) read_string_value(key, *value, out);
  }

  void read_optional_string(const char* key, std::optional<std::string>& out) {
    const auto* value = find(key, false);
    if (value == nullptr || value->IsNull()) {
      out.reset();
      return;
    }
    out.emplace();
    read_string_value(key, *value, *out);
  }

  // A string that must be one of `allowed`.
  void read_state(const char* key, std::string& out,
                  std::initializer_list<std::string_view> allowed) {
    read_string(key, out);
    if (error_) return;
    std::string expected;
    for (const std::string_view state : allowed) {
      if (state == out) return;
      expected += expected.empty() ? "" : ", ";
      expected += state;
    }
    fail(std::string("field '") + key + "' is " + quoted(out) + ", expected one of " + expected);
  }

  void read_integer(const char* key, int64_t& out) {
    if (const auto* value = find(key, true)) read_integer_value(key, *value, out);
  }

  // A fraction: a JSON number in [0, 1].
  void read_fraction(const char* key, double& out) {
    const auto* value = find(key, true);
    if (value == nullptr) return;
    if (!value->IsNumber()) {
      fail_type(key, "a number", *value);
      return;
    }
    out = value->GetDouble();
    if (!(out >= 0.0 && out <= 1.0)) fail(std::string("field '") + key + "' must be in [0, 1]");
  }

  void read_integer_array(const char* key, std::vector<int64_t>& out) {
    const auto* value = find(key, true);
    if (value == nullptr) return;
    if (!value->IsArray()) {
      fail_type(key, "an array of integers", *value);
      return;
    }
    out.clear();
    out.reserve(value->Size());
    for (const auto& element : value->GetArray()) {
      if (!element.IsInt64()) {
        fail(std::string("field '") + key + "' must be an array of integers, but holds " +
             std::string(describe(element)));
        return;
      }
      out.push_back(element.GetInt64());
    }
  }

  void read_string_array(const char* key, std::vector<std::string>& out) {
    const auto* value = find(key, true);
    if (value == nullptr) return;
    if (!value->IsArray()) {
      fail_type(key, "an array of strings", *value);
      return;
    }
    out.clear();
    out.reserve(value->Size());
    for (const auto& element : value->GetArray()) {
      if (!element.IsString()) {
        fail(std::string("field '") + key + "' must be an array of strings, but holds " +
             std::string(describe(element)));
        return;
      }
      out.emplace_back();
      read_string_value(key, element, out.back());
      if (error_) return;
    }
  }

  // An optional array of strings; absent or null reads as an empty vector.
  void read_optional_string_array(const char* key, std::vector<std::string>& out) {
    const auto* value = find(key, false);
    if (value == nullptr || value->IsNull()) {
      out.clear();
      return;
    }
    read_string_array(key, out);
  }

  // An object whose values are all strings, each key at most once.
  void read_string_map(const char* key, std::map<std::string, std::string>& out) {
    const auto* value = find(key, true);
    if (value == nullptr) return;
    if (!value->IsObject()) {
      fail_type(key, "an object of strings", *value);
      return;
    }
    out.clear();
    for (const auto& member : value->GetObject()) {
      const std::string_view name = as_view(member.name);
      if (!is_valid_utf8(name)) {
        fail(std::string("field '") + key + "' has a key that is not valid UTF-8");
        return;
      }
      if (!member.value.IsString()) {
        fail(std::string("field '") + key + "' must be an object of strings, but " +
             quoted(name) + " is " + std::string(describe(member.value)));
        return;
      }
      std::string text;
      read_string_value(key, member.value, text);
      if (error_) return;
      if (!out.emplace(name, std::move(text)).second) {
        fail(std::string("field '") + key + "' has the key " + quoted(name) + " more than once");
        return;
      }
    }
  }

  // An optional object, kept as compact JSON text.
  void read_optional_object_json(const char* key, std::optional<std::string>& out) {
    const auto* value = find(key, false);
    if (value != nullptr && !value->IsNull() && !value->IsObject()) {
      fail_type(key, "an object or null", *value);
      return;
    }
    read_optional_json(key, out);
  }

  // An optional JSON value of any type, kept as compact JSON text; null reads as nullopt.
  void read_optional_json(const char* key, std::optional<std::string>& out) {
    const auto* value = find(key, false);
    if (value == nullptr || value->IsNull()) {
      out.reset();
      return;
    }
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    if (!write_value(writer, *value)) {
      fail(std::string("field '") + key + "' holds a string that is not valid UTF-8");
      return;
    }
    out.emplace(buffer.GetString(), buffer.GetSize());
  }

  // The decoded message, or the first error.
  template <typename T>
  Result<Message> finish(T message) {
    if (error_) return std::move(*error_);
    return Message(std::move(message));
  }

 private:
  const rapidjson::Value* find(const char* key, bool required) {
    if (error_) return nullptr;
    const auto member = body_.FindMember(key);
    if (member == body_.MemberEnd()) {
      if (required) fail(std::string("missing field '") + key + "'");
      return nullptr;
    }
    return &member->value;
  }

  void read_string_value(const char* key, const rapidjson::Value& value, std::string& out) {
    if (!value.IsString()) {
      fail_type(key, "a string", value);
      return;
    }
    const std::string_view text = as_view(value);
    if (!is_valid_utf8(text)) {
      fail(std::string("field '") + key + "' is not valid UTF-8");
      return;
    }
    out.assign(text);
  }

  void read_integer_value(const char* key, const rapidjson::Value& value, int64_t& out) {
    if (!value.IsInt64()) {
      fail_type(key, "an integer", value);
      return;
    }
    out = value.GetInt64();
  }

  void fail_type(const char* key, std::string_view expected, const rapidjson::Value& value) {
    fail(std::string("field '") + key + "' must be " + std::string(expected) + ", not " +
         std::string(describe(value)));
  }

  void fail(std::string detail) {
    if (!error_) error_ = bad_frame(std::string(type_) + ": " + detail);
  }

  std::string_view type_;
  const rapidjson::Value& body_;
  std::optional<Error> error_;
};

using Body = rapidjson::Value;

Result<Message> decode_hello(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"driver_id", "secret", "versions", "pid", "spark_version"});
  Hello m;
  reader.read_string("driver_id", m.driver_id);
  reader.read_string("secret", m.secret);
  reader.read_integer_array("versions", m.versions);
  reader.read_integer("pid", m.pid);
  reader.read_string("spark_version", m.spark_version);
  return reader.finish(std::move(m));
}

Result<Message> decode_welcome(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"version", "heartbeat_ms"});
  Welcome m;
  reader.read_integer("version", m.version);
  reader.read_integer("heartbeat_ms", m.heartbeat_ms);
  return reader.finish(m);
}

Result<Message> decode_reject(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"reason"});
  Reject m;
  reader.read_string("reason", m.reason);
  return reader.finish(std::move(m));
}

Result<Message> decode_heartbeat(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {});
  return reader.finish(Heartbeat{});
}

Result<Message> decode_driver_state(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"state", "app_id", "spark_ui_url", "message"});
  DriverStatus m;
  reader.read_state("state", m.state, {"ready", "stopping", "error"});
  reader.read_optional_string("app_id", m.app_id);
  reader.read_optional_string("spark_ui_url", m.spark_ui_url);
  reader.read_optional_string("message", m.message);
  return reader.finish(std::move(m));
}

Result<Message> decode_open_session(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "kind"});
  OpenSession m;
  reader.read_integer("session_id", m.session_id);
  reader.read_string("kind", m.kind);
  return reader.finish(std::move(m));
}

Result<Message> decode_session_state(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "state", "message"});
  SessionStatus m;
  reader.read_integer("session_id", m.session_id);
  reader.read_state("state", m.state, {"starting", "idle", "busy", "error", "dead"});
  reader.read_optional_string("message", m.message);
  return reader.finish(std::move(m));
}

Result<Message> decode_execute(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "statement_id", "kind", "code"});
  Execute m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("statement_id", m.statement_id);
  reader.read_string("kind", m.kind);
  reader.read_string("code", m.code);
  return reader.finish(std::move(m));
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
  return reader.finish(std::move(m));
}

Result<Message> decode_close_session(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id"});
  CloseSession m;
  reader.read_integer("session_id", m.session_id);
  return reader.finish(m);
}

Result<Message> decode_shutdown(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {});
  return reader.finish(Shutdown{});
}

Result<Message> decode_error(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"code", "message"});
  ErrorReply m;
  reader.read_string("code", m.code);
  reader.read_string("message", m.message);
  return reader.finish(std::move(m));
}

Result<Message> decode_cancel_statement(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "statement_id"});
  CancelStatement m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("statement_id", m.statement_id);
  return reader.finish(m);
}

Result<Message> decode_complete(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "kind", "code", "cursor"});
  Complete m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_string("kind", m.kind);
  reader.read_string("code", m.code);
  reader.read_integer("cursor", m.cursor);
  return reader.finish(std::move(m));
}

Result<Message> decode_completion(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "candidates"});
  Completion m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_string_array("candidates", m.candidates);
  return reader.finish(std::move(m));
}

Result<Message> decode_add_artifact(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "kind", "uri"});
  AddArtifact m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_state("kind", m.kind, {"jar", "pyfile", "file", "archive"});
  reader.read_string("uri", m.uri);
  return reader.finish(std::move(m));
}

Result<Message> decode_artifact_added(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "request_id", "error"});
  ArtifactAdded m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("request_id", m.request_id);
  reader.read_optional_string("error", m.error);
  return reader.finish(std::move(m));
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
  return reader.finish(std::move(m));
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
  return reader.finish(std::move(m));
}

Result<Message> decode_cancel_job(std::string_view type, const Body& body) {
  BodyReader reader(type, body, {"session_id", "job_id"});
  CancelJob m;
  reader.read_integer("session_id", m.session_id);
  reader.read_integer("job_id", m.job_id);
  return reader.finish(m);
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
  if (frame.size() > kMaxFrameBytes) {
    return bad_frame("frame is " + std::to_string(frame.size()) + " bytes, over the limit of " +
                     std::to_string(kMaxFrameBytes));
  }
  // RapidJSON takes a NUL byte for the end of the input, so "{}\0garbage" would pass; a NUL is
  // never valid in JSON text (inside strings it must be escaped).
  if (frame.find('\0') != std::string_view::npos) {
    return bad_frame("frame is not valid JSON: it contains a NUL byte at offset " +
                     std::to_string(frame.find('\0')));
  }
  rapidjson::Document document;
  document.Parse<kParseFlags>(frame.data(), frame.size());
  if (document.HasParseError()) {
    return bad_frame(std::string("frame is not valid JSON: ") +
                     rapidjson::GetParseError_En(document.GetParseError()) + " (at offset " +
                     std::to_string(document.GetErrorOffset()) + ")");
  }
  if (!document.IsObject()) {
    return bad_frame("frame is " + std::string(describe(document)) + ", not an object");
  }

  // The version first: a frame of a later version may have a different envelope, and
  // "unsupported version" is the useful thing to log about it.
  const auto version_member = document.FindMember("v");
  if (version_member == document.MemberEnd()) return bad_frame("envelope: missing key 'v'");
  if (!version_member->value.IsInt64()) {
    return bad_frame("envelope: key 'v' must be an integer, not " +
                     std::string(describe(version_member->value)));
  }
  const int64_t version = version_member->value.GetInt64();
  if (version != kVersion && version != kHandshakeVersion) {
    return bad_frame("unsupported protocol version " + std::to_string(version) +
                     " (this peer speaks " + std::to_string(kVersion) + ")");
  }
  if (auto error = check_keys(document, "envelope", "key", {"v", "type", "body"})) {
    return std::move(*error);
  }
  const auto type = document.FindMember("type");
  if (type == document.MemberEnd()) return bad_frame("envelope: missing key 'type'");
  if (!type->value.IsString()) {
    return bad_frame("envelope: key 'type' must be a string, not " +
                     std::string(describe(type->value)));
  }
  const auto body = document.FindMember("body");
  if (body == document.MemberEnd()) return bad_frame("envelope: missing key 'body'");
  if (!body->value.IsObject()) {
    return bad_frame("envelope: key 'body' must be an object, not " +
                     std::string(describe(body->value)));
  }
  const std::string_view type_name = as_view(type->value);
  for (const auto& decoder : kBodyDecoders) {
    if (decoder.type != type_name) continue;
    if (version != kVersion && !is_handshake_type(type_name)) {
      return bad_frame("unsupported protocol version " + std::to_string(version) + " for " +
                       quoted(type_name) + " (this peer speaks " + std::to_string(kVersion) +
                       "; only hello and reject are sent with version " +
                       std::to_string(kHandshakeVersion) + ")");
    }
    return decoder.decode(decoder.type, body->value);
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
    key("versions");
    writer_.StartArray();
    for (const int64_t version : m.versions) writer_.Int64(version);
    writer_.EndArray();
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
    value.Parse<kParseFlags>(text.data(), text.size());
    if (value.HasParseError() || (object_only && !value.IsObject()) ||
        text.find('\0') != std::string::npos) {
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
