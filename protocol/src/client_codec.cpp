#include "hearth/protocol/client_codec.hpp"

#include <array>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "strict_json.hpp"

namespace hearth::protocol::client {

namespace {

using strict_json::bad_frame;
using strict_json::BodyReader;
using strict_json::JsonWriter;
using strict_json::quoted;
using strict_json::write_string;
using strict_json::write_value;

constexpr std::size_t kMaxUploadNameCharacters = 128;

// ---- decoding ----------------------------------------------------------------------------------

using Body = rapidjson::Value;

// A body decoder gets the data frame too; only upload and part look at it (decode_document has
// checked that it is there exactly for them).
using DecodeBody = Result<Message> (*)(std::string_view type, const Body& body,
                                       std::string_view data);

void require_non_negative(BodyReader& reader, const char* key, std::optional<int64_t> value) {
  if (reader.ok() && value && *value < 0) {
    reader.fail(std::string("field '") + key + "' must be >= 0, not " + std::to_string(*value));
  }
}

Result<Message> decode_hello(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"client", "user", "versions"});
  Hello m;
  reader.read_string("client", m.client);
  reader.read_optional_string("user", m.user);
  reader.read_integer_array("versions", m.versions);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_welcome(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"version", "server_id", "heartbeat_ms", "max_part_bytes"});
  Welcome m;
  reader.read_integer("version", m.version);
  reader.read_string("server_id", m.server_id);
  reader.read_integer("heartbeat_ms", m.heartbeat_ms);
  reader.read_integer("max_part_bytes", m.max_part_bytes);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_ping(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {});
  return reader.finish<Message>(Ping{});
}

Result<Message> decode_pong(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"server_id"});
  Pong m;
  reader.read_string("server_id", m.server_id);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_call(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"id", "method", "path", "body", "upload"});
  Call m;
  reader.read_integer("id", m.id);
  reader.read_state("method", m.method, {"GET", "POST", "DELETE"});
  reader.read_string("path", m.path);
  if (reader.ok() && !m.path.starts_with('/')) {
    reader.fail("field 'path' must start with '/', not " + quoted(m.path));
  }
  reader.read_optional_json("body", m.body_json);
  reader.read_optional_string("upload", m.upload);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_reply(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"id", "status", "body"});
  Reply m;
  reader.read_integer("id", m.id);
  reader.read_integer("status", m.status);
  reader.read_json("body", m.body_json);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_upload(std::string_view type, const Body& body, std::string_view data) {
  BodyReader reader(type, body, {"id", "upload", "name", "offset", "last"});
  Upload m;
  reader.read_integer("id", m.id);
  reader.read_string("upload", m.upload);
  if (reader.ok()) {
    const std::size_t characters = strict_json::count_characters(m.upload);
    if (characters == 0 || characters > kMaxUploadNameCharacters) {
      reader.fail("field 'upload' must be 1 to " + std::to_string(kMaxUploadNameCharacters) +
                  " characters long, not " + std::to_string(characters));
    }
  }
  reader.read_string("name", m.name);
  reader.read_integer("offset", m.offset);
  require_non_negative(reader, "offset", m.offset);
  reader.read_boolean("last", m.last);
  m.data.assign(data);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_subscribe(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"id", "session", "since"});
  Subscribe m;
  reader.read_integer("id", m.id);
  reader.read_optional_integer("session", m.session);
  require_non_negative(reader, "session", m.session);
  reader.read_optional_integer("since", m.since);
  require_non_negative(reader, "since", m.since);
  if (reader.ok() && m.since && !m.session) {
    reader.fail("field 'since' is only allowed together with 'session'");
  }
  return reader.finish<Message>(m);
}

Result<Message> decode_unsubscribe(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"id", "session"});
  Unsubscribe m;
  reader.read_integer("id", m.id);
  reader.read_optional_integer("session", m.session);
  return reader.finish<Message>(m);
}

Result<Message> decode_event(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"session", "seq", "kind", "body"});
  Event m;
  reader.read_integer("session", m.session);
  reader.read_integer("seq", m.seq);
  reader.read_state("kind", m.kind, {"session", "statement", "job", "log", "gap"});
  reader.read_json("body", m.body_json);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_part(std::string_view type, const Body& body, std::string_view data) {
  BodyReader reader(type, body, {"ref", "index", "last"});
  Part m;
  reader.read_integer("ref", m.ref);
  reader.read_integer("index", m.index);
  reader.read_boolean("last", m.last);
  m.data.assign(data);
  return reader.finish<Message>(std::move(m));
}

Result<Message> decode_error(std::string_view type, const Body& body, std::string_view) {
  BodyReader reader(type, body, {"id", "code", "message"});
  ErrorMessage m;
  reader.read_optional_integer("id", m.id);
  reader.read_string("code", m.code);
  reader.read_string("message", m.message);
  return reader.finish<Message>(std::move(m));
}

struct BodyDecoder {
  std::string_view type;
  bool has_data_frame;
  DecodeBody decode;
};

constexpr std::array<BodyDecoder, std::variant_size_v<Message>> kBodyDecoders{{
    {"hello", false, decode_hello},
    {"welcome", false, decode_welcome},
    {"ping", false, decode_ping},
    {"pong", false, decode_pong},
    {"call", false, decode_call},
    {"reply", false, decode_reply},
    {"upload", true, decode_upload},
    {"subscribe", false, decode_subscribe},
    {"unsubscribe", false, decode_unsubscribe},
    {"event", false, decode_event},
    {"part", true, decode_part},
    {"error", false, decode_error},
}};

// body.id when it is an integer, whatever else is wrong with the header.
std::optional<int64_t> find_id_hint(const rapidjson::Document& document) {
  const auto body = document.FindMember("body");
  if (body == document.MemberEnd() || !body->value.IsObject()) return std::nullopt;
  const auto id = body->value.FindMember("id");
  if (id == body->value.MemberEnd() || !id->value.IsInt64()) return std::nullopt;
  return id->value.GetInt64();
}

Result<Message> decode_document(const rapidjson::Document& document,
                                std::optional<std::string_view> data) {
  // The version first: a message of a later version may have a different envelope, and
  // "unsupported version" is the useful thing to log about it.
  const auto version = strict_json::read_version(document);
  if (!version) return version.error();
  if (*version != kVersion) {
    return bad_frame("unsupported protocol version " + std::to_string(*version) +
                     " (the client channel speaks " + std::to_string(kVersion) + ")");
  }
  const auto envelope = strict_json::read_type_and_body(document);
  if (!envelope) return envelope.error();
  for (const auto& decoder : kBodyDecoders) {
    if (decoder.type != envelope->type) continue;
    const std::string type(decoder.type);
    if (decoder.has_data_frame && !data) return bad_frame(type + ": missing data frame");
    if (!decoder.has_data_frame && data) {
      return bad_frame(type + ": unexpected data frame (only upload and part carry one)");
    }
    if (data && data->size() > kMaxPartBytes) {
      return bad_frame(type + ": data frame is " + std::to_string(data->size()) +
                       " bytes, over the limit of " + std::to_string(kMaxPartBytes));
    }
    return decoder.decode(decoder.type, *envelope->body, data.value_or(std::string_view()));
  }
  return bad_frame("unknown message type " + quoted(envelope->type));
}

std::variant<Message, DecodeError> decode_frames(std::string_view header,
                                                 std::optional<std::string_view> data) {
  rapidjson::Document document;
  if (auto error = strict_json::parse_object(header, kMaxHeaderBytes, "header frame", document)) {
    return DecodeError{std::move(*error), std::nullopt};
  }
  auto decoded = decode_document(document, data);
  if (!decoded) return DecodeError{decoded.error(), find_id_hint(document)};
  return std::move(decoded).value();
}

// ---- encoding ----------------------------------------------------------------------------------

// Writes the body of each message type; optional fields that are nullopt are left out.
class BodyWriter {
 public:
  explicit BodyWriter(JsonWriter& writer) : writer_(writer) {}

  void operator()(const Hello& m) {
    string("client", m.client);
    optional_string("user", m.user);
    key("versions");
    writer_.StartArray();
    for (const int64_t version : m.versions) writer_.Int64(version);
    writer_.EndArray();
  }
  void operator()(const Welcome& m) {
    integer("version", m.version);
    string("server_id", m.server_id);
    integer("heartbeat_ms", m.heartbeat_ms);
    integer("max_part_bytes", m.max_part_bytes);
  }
  void operator()(const Ping&) {}
  void operator()(const Pong& m) { string("server_id", m.server_id); }
  void operator()(const Call& m) {
    integer("id", m.id);
    string("method", m.method);
    string("path", m.path);
    if (m.body_json) json_text("call", "body", *m.body_json);
    optional_string("upload", m.upload);
  }
  void operator()(const Reply& m) {
    integer("id", m.id);
    integer("status", m.status);
    json_text("reply", "body", m.body_json);
  }
  void operator()(const Upload& m) {
    integer("id", m.id);
    string("upload", m.upload);
    string("name", m.name);
    integer("offset", m.offset);
    boolean("last", m.last);
  }
  void operator()(const Subscribe& m) {
    integer("id", m.id);
    optional_integer("session", m.session);
    optional_integer("since", m.since);
  }
  void operator()(const Unsubscribe& m) {
    integer("id", m.id);
    optional_integer("session", m.session);
  }
  void operator()(const Event& m) {
    integer("session", m.session);
    integer("seq", m.seq);
    string("kind", m.kind);
    json_text("event", "body", m.body_json);
  }
  void operator()(const Part& m) {
    integer("ref", m.ref);
    integer("index", m.index);
    boolean("last", m.last);
  }
  void operator()(const ErrorMessage& m) {
    optional_integer("id", m.id);
    string("code", m.code);
    string("message", m.message);
  }

 private:
  // A field holding JSON text. Re-parsed rather than copied raw, so a caller's mistake cannot
  // produce a broken frame, and written compactly. Invalid UTF-8 inside its strings (a log line
  // a driver printed, passed through) is written as U+FFFD like in any other string, rather than
  // failing the whole message.
  void json_text(std::string_view type, std::string_view name, const std::string& text) {
    rapidjson::Document value;
    if (!strict_json::parse_json_text(text, value, strict_json::InvalidUtf8::kAccept)) {
      throw std::invalid_argument(std::string(type) + ": the " + std::string(name) +
                                  " field's JSON text does not hold one JSON value");
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
  void optional_integer(std::string_view name, std::optional<int64_t> value) {
    if (value) integer(name, *value);
  }
  void boolean(std::string_view name, bool value) {
    key(name);
    writer_.Bool(value);
  }

  JsonWriter& writer_;
};

}  // namespace

Frames encode(const Message& message) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("v");
  writer.Int64(kVersion);
  writer.Key("type");
  const std::string_view type = type_name(message);
  writer.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
  writer.Key("body");
  writer.StartObject();
  std::visit(BodyWriter(writer), message);
  writer.EndObject();
  writer.EndObject();
  Frames frames{std::string(buffer.GetString(), buffer.GetSize()), std::nullopt};
  if (const auto* upload = std::get_if<Upload>(&message)) frames.data = upload->data;
  if (const auto* part = std::get_if<Part>(&message)) frames.data = part->data;
  return frames;
}

std::variant<Message, DecodeError> decode(std::string_view header,
                                          std::optional<std::string_view> data) {
  try {
    return decode_frames(header, data);
  } catch (const std::bad_alloc&) {
    // The frame sizes are bounded, so this means the process is short of memory, not that the
    // message is hostile; still, decode() promises not to throw.
    return DecodeError{bad_frame("out of memory while decoding a header frame of " +
                                 std::to_string(header.size()) + " bytes"),
                       std::nullopt};
  }
}

std::vector<Part> split(std::string_view header, int64_t ref) {
  std::vector<Part> parts;
  if (header.size() <= kMaxPartBytes) return parts;
  parts.reserve((header.size() + kMaxPartBytes - 1) / kMaxPartBytes);
  for (std::size_t offset = 0; offset < header.size(); offset += kMaxPartBytes) {
    Part part;
    part.ref = ref;
    part.index = static_cast<int64_t>(parts.size());
    part.data.assign(header.substr(offset, kMaxPartBytes));
    part.last = offset + kMaxPartBytes >= header.size();
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<std::optional<std::string>> PartAssembler::feed(const Part& part) {
  std::optional<Error> foreign;
  if (ref_ && part.ref != *ref_) {
    foreign = bad_frame("part: a part of ref " + std::to_string(part.ref) +
                        " arrived before the run of ref " + std::to_string(*ref_) +
                        " finished; that run is dropped");
    reset();
    // The server drops messages to a client that stopped reading (PROTOCOL.md, "Flow control"),
    // so a run can end early; a foreign part that starts a run then starts one, so that losing
    // the rest of one message does not cost the next one too.
    if (part.index != 0 || part.last) return std::move(*foreign);
  }
  if (!ref_ && part.index != 0) {
    return bad_frame("part: part " + std::to_string(part.index) + " of ref " +
                     std::to_string(part.ref) + " arrived without the start of its run");
  }
  if (ref_ && part.index != next_index_) {
    const int64_t ref = *ref_;
    const int64_t expected = next_index_;
    reset();
    return bad_frame("part: part " + std::to_string(part.index) + " of ref " +
                     std::to_string(ref) + " arrived out of order (expected " +
                     std::to_string(expected) + "); the run is dropped");
  }
  // buffer_ never exceeds max_bytes_, so the subtraction cannot wrap.
  if (part.data.size() > max_bytes_ - buffer_.size()) {
    const int64_t ref = part.ref;
    const std::size_t size = buffer_.size() + part.data.size();
    reset();
    return bad_frame("part: the run of ref " + std::to_string(ref) + " reached " +
                     std::to_string(size) + " bytes, over the limit of " +
                     std::to_string(max_bytes_) + "; the run is dropped");
  }
  ref_ = part.ref;
  ++next_index_;
  buffer_ += part.data;
  if (foreign) return std::move(*foreign);
  if (!part.last) return std::optional<std::string>();
  std::optional<std::string> header(std::move(buffer_));
  reset();
  return header;
}

void PartAssembler::reset() {
  ref_.reset();
  next_index_ = 0;
  std::string().swap(buffer_);  // release the memory of a large run, not just its contents
}

}  // namespace hearth::protocol::client
