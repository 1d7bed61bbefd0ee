#pragma once

// The strict JSON rules both ZeroMQ codecs share (protocol/PROTOCOL.md, "Transport and framing"
// of each channel): parsing a frame without recursion, refusing what the spec refuses (duplicate
// or unknown keys, integers with a fraction or an exponent, invalid Unicode, NUL bytes), reading
// typed body fields with errors that name the field, and writing strings and "any JSON" values so
// that every encoded frame decodes. Private to hearth::protocol: RapidJSON stays out of the
// public headers.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "hearth/protocol/result.hpp"

namespace hearth::protocol::strict_json {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Iterative parsing keeps the call stack flat however deeply a hostile frame nests. Numbers are
// converted exactly (a double written by JsonWriter parses back to the same double), by our own
// code rather than RapidJSON's full-precision mode, which is unsafe in the version Debian ships
// (see parse_one_value in strict_json.cpp).
inline constexpr unsigned kParseFlags =
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;

inline constexpr std::string_view kBadFrame = "bad_frame";

// An Error with code "bad_frame".
Error bad_frame(std::string message);

// ---- UTF-8 -------------------------------------------------------------------------------------

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with each byte that does not start a well-formed sequence replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view text);

// The number of characters (code points) of valid UTF-8 `text`.
std::size_t count_characters(std::string_view text);

// ---- reading values ----------------------------------------------------------------------------

std::string_view as_view(const rapidjson::Value& string);

// A key or value from a frame, made safe and short enough to quote in a log line ('text').
std::string quoted(std::string_view text);

// What a value is, for an error message ("a string", "an integer beyond the 64-bit signed range").
std::string_view describe(const rapidjson::Value& value);

// Parses `frame` into `document`: at most `max_bytes` bytes, no NUL byte, one JSON text of valid
// UTF-8, an object. `what` names the frame in the error ("frame", "header frame").
std::optional<Error> parse_object(std::string_view frame, std::size_t max_bytes,
                                  std::string_view what, rapidjson::Document& document);

// Checks that `object` has only the keys in `allowed` (at most 16), each at most once. `where`
// and `noun` name the object in the error ("envelope"/"key", "execute"/"field").
std::optional<Error> check_keys(const rapidjson::Value& object, std::string_view where,
                                std::string_view noun,
                                std::initializer_list<std::string_view> allowed);

// The envelope {"v":...,"type":...,"body":{...}}, read in two steps so that a codec can check
// the version before anything else (a frame of a later version may have another envelope).
// read_version: "v" present and an integer. read_type_and_body: exactly the keys v, type and
// body, type a string, body an object; `body` points into the document.
Result<int64_t> read_version(const rapidjson::Value& document);
struct Envelope {
  std::string_view type;
  const rapidjson::Value* body = nullptr;
};
Result<Envelope> read_type_and_body(const rapidjson::Value& document);

// Reads the fields of one message body. Every read is a no-op after the first failure, so a
// decoder reads all its fields in order and checks once at the end; the error ("type: detail")
// names the first problem found. Holds references to `type` and `body`: both must outlive it.
class BodyReader {
 public:
  // Checks at once that the body has no unknown or repeated field.
  BodyReader(std::string_view type, const rapidjson::Value& body,
             std::initializer_list<std::string_view> fields);

  void read_string(const char* key, std::string& out);
  void read_optional_string(const char* key, std::optional<std::string>& out);
  // A string that must be one of `allowed`.
  void read_state(const char* key, std::string& out,
                  std::initializer_list<std::string_view> allowed);
  void read_integer(const char* key, int64_t& out);
  void read_optional_integer(const char* key, std::optional<int64_t>& out);
  void read_boolean(const char* key, bool& out);
  // A fraction: a JSON number in [0, 1].
  void read_fraction(const char* key, double& out);
  void read_integer_array(const char* key, std::vector<int64_t>& out);
  void read_string_array(const char* key, std::vector<std::string>& out);
  // An optional array of strings; absent or null reads as an empty vector.
  void read_optional_string_array(const char* key, std::vector<std::string>& out);
  // An object whose values are all strings, each key at most once.
  void read_string_map(const char* key, std::map<std::string, std::string>& out);
  // A required JSON value of any type (null included), kept as compact JSON text.
  void read_json(const char* key, std::string& out);
  // An optional object, kept as compact JSON text; null reads as nullopt.
  void read_optional_object_json(const char* key, std::optional<std::string>& out);
  // An optional JSON value of any type, kept as compact JSON text; null reads as nullopt.
  void read_optional_json(const char* key, std::optional<std::string>& out);

  // Records a problem found by the decoder itself (a value out of range), unless one was found
  // before. `detail` is prefixed with the message type.
  void fail(std::string detail);
  bool ok() const { return !error_.has_value(); }

  // The decoded message as a `MessageVariant`, or the first error.
  template <typename MessageVariant, typename T>
  Result<MessageVariant> finish(T message) {
    if (error_) return std::move(*error_);
    return MessageVariant(std::move(message));
  }

 private:
  const rapidjson::Value* find(const char* key, bool required);
  void read_string_value(const char* key, const rapidjson::Value& value, std::string& out);
  void read_json_value(const char* key, const rapidjson::Value& value, std::string& out);
  void fail_type(const char* key, std::string_view expected, const rapidjson::Value& value);

  std::string_view type_;
  const rapidjson::Value& body_;
  std::optional<Error> error_;
};

// ---- writing -----------------------------------------------------------------------------------

// Writes `text` as a JSON string (or object key). Invalid UTF-8 is replaced by U+FFFD, so the
// frame stays decodable; returns false if that happened.
bool write_string(JsonWriter& writer, std::string_view text, bool as_key = false);

// Writes `root` compactly without recursion (Value::Accept recurses once per nesting level, and
// a 16 MiB frame can nest millions of levels deep). Returns false if a string or key held
// invalid UTF-8 (possible after parsing: RapidJSON decodes a lone "\udc00" escape to the bytes of
// a surrogate); such strings are written with U+FFFD.
bool write_value(JsonWriter& writer, const rapidjson::Value& root);

// How parse_json_text treats invalid UTF-8 inside the strings of the text.
enum class InvalidUtf8 { kRefuse, kAccept };

// Parses JSON text a caller put in a message field (encode's input, not a frame) into `value`.
// Returns false unless `text` holds exactly one JSON value and no NUL byte. With
// InvalidUtf8::kAccept, strings holding invalid UTF-8 are accepted (write_value then writes them
// with U+FFFD).
bool parse_json_text(std::string_view text, rapidjson::Document& value, InvalidUtf8 invalid_utf8);

}  // namespace hearth::protocol::strict_json
