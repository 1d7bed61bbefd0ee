#pragma once

// The messages of the client channel (protocol/PROTOCOL.md, "The client channel"), as plain
// structs. The codec (client_codec.hpp) maps them to and from ZeroMQ frames.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hearth::protocol::client {

// The only client-channel version; every frame carries it in "v".
inline constexpr int64_t kVersion = 1;
// The largest header frame either side accepts.
inline constexpr std::size_t kMaxHeaderBytes = 16u << 20;
// The largest data frame (upload part, part of a split message); also the size above which the
// server splits a message into parts.
inline constexpr std::size_t kMaxPartBytes = 256u << 10;

// Fields holding "any JSON" (call.body, reply.body, event.body) keep the value as compact JSON
// text. decode() fills them with compact JSON, so a decoded message compares equal to the decode
// of its own encoding; encode() requires them to hold exactly one JSON value (else it throws
// std::invalid_argument: a bug in the caller).

// "hello" (C→S).
struct Hello {
  std::string client;
  std::optional<std::string> user;
  std::vector<int64_t> versions;
  bool operator==(const Hello&) const = default;
};

// "welcome" (S→C).
struct Welcome {
  int64_t version = kVersion;
  std::string server_id;
  int64_t heartbeat_ms = 0;
  int64_t max_part_bytes = static_cast<int64_t>(kMaxPartBytes);
  bool operator==(const Welcome&) const = default;
};

// "ping" (C→S): empty body.
struct Ping {
  bool operator==(const Ping&) const = default;
};

// "pong" (S→C).
struct Pong {
  std::string server_id;
  bool operator==(const Pong&) const = default;
};

// "call" (C→S): a REST operation. method is GET, POST or DELETE (the decoder enforces it);
// path starts with '/'. body_json: nullopt when absent or null.
struct Call {
  int64_t id = 0;
  std::string method;
  std::string path;
  std::optional<std::string> body_json;
  std::optional<std::string> upload;
  bool operator==(const Call&) const = default;
};

// "reply" (S→C). body_json is always present ("null" where REST sends no body).
struct Reply {
  int64_t id = 0;
  int64_t status = 200;
  std::string body_json = "null";
  bool operator==(const Reply&) const = default;
};

// "upload" (C→S), with a data frame (`data`, at most kMaxPartBytes).
struct Upload {
  int64_t id = 0;
  std::string upload;  // 1..128 characters
  std::string name;
  int64_t offset = 0;  // >= 0
  bool last = false;
  std::string data;    // the data frame
  bool operator==(const Upload&) const = default;
};

// "subscribe" (C→S). since only with session (the decoder enforces it); both >= 0.
struct Subscribe {
  int64_t id = 0;
  std::optional<int64_t> session;
  std::optional<int64_t> since;
  bool operator==(const Subscribe&) const = default;
};

// "unsubscribe" (C→S).
struct Unsubscribe {
  int64_t id = 0;
  std::optional<int64_t> session;
  bool operator==(const Unsubscribe&) const = default;
};

// "event" (S→C). kind is session, statement, job, log or gap (the decoder enforces it).
struct Event {
  int64_t session = 0;
  int64_t seq = 0;
  std::string kind;
  std::string body_json = "null";
  bool operator==(const Event&) const = default;
};

// "part" (S→C), with a data frame (`data`, at most kMaxPartBytes): a slice of a split message.
struct Part {
  int64_t ref = 0;
  int64_t index = 0;
  bool last = false;
  std::string data;
  bool operator==(const Part&) const = default;
};

// "error" (S→C). code: bad_frame, hello_required, unsupported_version, overrun (passed on as
// a string; receivers treat unknown codes as fatal for the request).
struct ErrorMessage {
  std::optional<int64_t> id;
  std::string code;
  std::string message;
  bool operator==(const ErrorMessage&) const = default;
};

using Message = std::variant<Hello, Welcome, Ping, Pong, Call, Reply, Upload, Subscribe,
                             Unsubscribe, Event, Part, ErrorMessage>;

// The wire "type" string ("hello", "call", "error", ...); static storage.
std::string_view type_name(const Message& message);

}  // namespace hearth::protocol::client
