#include "strict_json.hpp"

#include <locale.h>  // newlocale, strtod_l

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace hearth::protocol::strict_json {

namespace {

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

// Numbers are converted here, not by RapidJSON: the full-precision conversion of RapidJSON 1.1.0
// (the version Debian ships) crashes or returns garbage for some inputs a peer can send:
// "522611627.81211903924077934500908e-341" reads out of bounds (Tencent/rapidjson#1251), "0e100"
// is undefined behaviour that yields -2e146 (#1249), "1.8e308" yields NaN. Fixed upstream after
// 1.1.0. With kParseNumbersAsStringsFlag the reader still checks each number against the JSON
// grammar (and refuses the ones it finds too big) but hands over its text instead of converting
// it; this handler converts it and forwards every other event to the document unchanged.
class NumberConvertingHandler {
 public:
  explicit NumberConvertingHandler(rapidjson::Document& document) : document_(document) {}

  // A number whose magnitude does not fit a double was refused.
  bool refused_a_number() const { return refused_a_number_; }

  bool Null() { return document_.Null(); }
  bool Bool(bool value) { return document_.Bool(value); }
  bool Int(int value) { return document_.Int(value); }
  bool Uint(unsigned value) { return document_.Uint(value); }
  bool Int64(int64_t value) { return document_.Int64(value); }
  bool Uint64(uint64_t value) { return document_.Uint64(value); }
  bool Double(double value) { return document_.Double(value); }
  bool String(const char* text, rapidjson::SizeType length, bool copy) {
    return document_.String(text, length, copy);
  }
  bool StartObject() { return document_.StartObject(); }
  bool Key(const char* text, rapidjson::SizeType length, bool copy) {
    return document_.Key(text, length, copy);
  }
  bool EndObject(rapidjson::SizeType members) { return document_.EndObject(members); }
  bool StartArray() { return document_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return document_.EndArray(elements); }

  // `text` is a number the reader checked against the grammar, NUL-terminated (it is copied
  // into the reader's stack: the parse is not in situ). Integers get the same kind as RapidJSON
  // gives them (int64 or uint64 when they fit, else a double).
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    const char* end = text + length;
    if (std::string_view(text, length).find_first_of(".eE") == std::string_view::npos) {
      if (text[0] == '-') {
        int64_t value = 0;
        const auto [next, error] = std::from_chars(text, end, value);
        if (error == std::errc() && next == end) return document_.Int64(value);
      } else {
        uint64_t value = 0;
        const auto [next, error] = std::from_chars(text, end, value);
        if (error == std::errc() && next == end) return document_.Uint64(value);
      }
    }
    // glibc's strtod rounds correctly (so a double written by JsonWriter reads back the same);
    // the "C" locale makes '.' the decimal point whatever the process's locale.
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
    char* parsed_end = nullptr;
    const double value = strtod_l(text, &parsed_end, c_locale);
    if (parsed_end != end || !std::isfinite(value)) {
      refused_a_number_ = true;  // overflow: RapidJSON refuses "1e400" the same way
      return false;
    }
    return document_.Double(value);  // an underflow reads as 0 or a subnormal, like RapidJSON
  }

 private:
  rapidjson::Document& document_;
  bool refused_a_number_ = false;
};

// Parses `text` into `document` (RapidJSON's parser takes its flags as a template argument).
template <unsigned kFlags>
rapidjson::ParseResult parse_one_value(std::string_view text, rapidjson::Document& document) {
  constexpr unsigned kReaderFlags = kFlags | rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult result;
  const auto generator = [&](rapidjson::Document& handler) {
    NumberConvertingHandler numbers(handler);
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> input(bytes);
    rapidjson::Reader reader;
    result = reader.Parse<kReaderFlags>(input, numbers);
    if (result.Code() == rapidjson::kParseErrorTermination && numbers.refused_a_number()) {
      result.Set(rapidjson::kParseErrorNumberTooBig, result.Offset());  // the number's start
    }
    return !result.IsError();
  };
  document.Populate(generator);
  return result;
}

}  // namespace

Error bad_frame(std::string message) {
  return make_error(std::string(kBadFrame), std::move(message));
}

// ---- UTF-8 -------------------------------------------------------------------------------------

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

std::size_t count_characters(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;  // not a continuation byte
  }
  return count;
}

// ---- reading values ----------------------------------------------------------------------------

std::string_view as_view(const rapidjson::Value& string) {
  return {string.GetString(), string.GetStringLength()};
}

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

std::optional<Error> parse_object(std::string_view frame, std::size_t max_bytes,
                                  std::string_view what, rapidjson::Document& document) {
  const std::string noun(what);
  if (frame.size() > max_bytes) {
    return bad_frame(noun + " is " + std::to_string(frame.size()) + " bytes, over the limit of " +
                     std::to_string(max_bytes));
  }
  // RapidJSON takes a NUL byte for the end of the input, so "{}\0garbage" would pass; a NUL is
  // never valid in JSON text (inside strings it must be escaped).
  if (frame.find('\0') != std::string_view::npos) {
    return bad_frame(noun + " is not valid JSON: it contains a NUL byte at offset " +
                     std::to_string(frame.find('\0')));
  }
  const rapidjson::ParseResult parsed = parse_one_value<kParseFlags>(frame, document);
  if (parsed.IsError()) {
    return bad_frame(noun + " is not valid JSON: " + rapidjson::GetParseError_En(parsed.Code()) +
                     " (at offset " + std::to_string(parsed.Offset()) + ")");
  }
  if (!document.IsObject()) {
    return bad_frame(noun + " is " + std::string(describe(document)) + ", not an object");
  }
  return std::nullopt;
}

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

Result<int64_t> read_version(const rapidjson::Value& document) {
  const auto version = document.FindMember("v");
  if (version == document.MemberEnd()) return bad_frame("envelope: missing key 'v'");
  if (!version->value.IsInt64()) {
    return bad_frame("envelope: key 'v' must be an integer, not " +
                     std::string(describe(version->value)));
  }
  return version->value.GetInt64();
}

Result<Envelope> read_type_and_body(const rapidjson::Value& document) {
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
  return Envelope{as_view(type->value), &body->value};
}

// ---- BodyReader --------------------------------------------------------------------------------

BodyReader::BodyReader(std::string_view type, const rapidjson::Value& body,
                       std::initializer_list<std::string_view> fields)
    : type_(type), body_(body) {
  error_ = check_keys(body, type, "field", fields);
}

void BodyReader::read_string(const char* key, std::string& out) {
  if (const auto* value = find(key, true)) read_string_value(key, *value, out);
}

void BodyReader::read_optional_string(const char* key, std::optional<std::string>& out) {
  const auto* value = find(key, false);
  if (value == nullptr || value->IsNull()) {
    out.reset();
    return;
  }
  out.emplace();
  read_string_value(key, *value, *out);
}

void BodyReader::read_state(const char* key, std::string& out,
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

void BodyReader::read_integer(const char* key, int64_t& out) {
  const auto* value = find(key, true);
  if (value == nullptr) return;
  if (!value->IsInt64()) {
    fail_type(key, "an integer", *value);
    return;
  }
  out = value->GetInt64();
}

void BodyReader::read_optional_integer(const char* key, std::optional<int64_t>& out) {
  const auto* value = find(key, false);
  if (value == nullptr || value->IsNull()) {
    out.reset();
    return;
  }
  if (!value->IsInt64()) {
    fail_type(key, "an integer or null", *value);
    return;
  }
  out = value->GetInt64();
}

void BodyReader::read_boolean(const char* key, bool& out) {
  const auto* value = find(key, true);
  if (value == nullptr) return;
  if (!value->IsBool()) {
    fail_type(key, "a boolean", *value);
    return;
  }
  out = value->GetBool();
}

void BodyReader::read_fraction(const char* key, double& out) {
  const auto* value = find(key, true);
  if (value == nullptr) return;
  if (!value->IsNumber()) {
    fail_type(key, "a number", *value);
    return;
  }
  out = value->GetDouble();
  if (!(out >= 0.0 && out <= 1.0)) fail(std::string("field '") + key + "' must be in [0, 1]");
}

void BodyReader::read_integer_array(const char* key, std::vector<int64_t>& out) {
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

void BodyReader::read_string_array(const char* key, std::vector<std::string>& out) {
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

void BodyReader::read_optional_string_array(const char* key, std::vector<std::string>& out) {
  const auto* value = find(key, false);
  if (value == nullptr || value->IsNull()) {
    out.clear();
    return;
  }
  read_string_array(key, out);
}

void BodyReader::read_string_map(const char* key, std::map<std::string, std::string>& out) {
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
      fail(std::string("field '") + key + "' must be an object of strings, but " + quoted(name) +
           " is " + std::string(describe(member.value)));
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

void BodyReader::read_json(const char* key, std::string& out) {
  if (const auto* value = find(key, true)) read_json_value(key, *value, out);
}

void BodyReader::read_optional_object_json(const char* key, std::optional<std::string>& out) {
  const auto* value = find(key, false);
  if (value != nullptr && !value->IsNull() && !value->IsObject()) {
    fail_type(key, "an object or null", *value);
    return;
  }
  read_optional_json(key, out);
}

void BodyReader::read_optional_json(const char* key, std::optional<std::string>& out) {
  const auto* value = find(key, false);
  if (value == nullptr || value->IsNull()) {
    out.reset();
    return;
  }
  out.emplace();
  read_json_value(key, *value, *out);
}

void BodyReader::fail(std::string detail) {
  if (!error_) error_ = bad_frame(std::string(type_) + ": " + detail);
}

const rapidjson::Value* BodyReader::find(const char* key, bool required) {
  if (error_) return nullptr;
  const auto member = body_.FindMember(key);
  if (member == body_.MemberEnd()) {
    if (required) fail(std::string("missing field '") + key + "'");
    return nullptr;
  }
  return &member->value;
}

void BodyReader::read_string_value(const char* key, const rapidjson::Value& value,
                                   std::string& out) {
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

void BodyReader::read_json_value(const char* key, const rapidjson::Value& value,
                                 std::string& out) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  if (!write_value(writer, value)) {
    fail(std::string("field '") + key + "' holds a string that is not valid UTF-8");
    return;
  }
  out.assign(buffer.GetString(), buffer.GetSize());
}

void BodyReader::fail_type(const char* key, std::string_view expected,
                           const rapidjson::Value& value) {
  fail(std::string("field '") + key + "' must be " + std::string(expected) + ", not " +
       std::string(describe(value)));
}

// ---- writing -----------------------------------------------------------------------------------

bool write_string(JsonWriter& writer, std::string_view text, bool as_key) {
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

bool parse_json_text(std::string_view text, rapidjson::Document& value, InvalidUtf8 invalid_utf8) {
  if (text.find('\0') != std::string_view::npos) return false;
  if (invalid_utf8 == InvalidUtf8::kRefuse) {
    return !parse_one_value<kParseFlags>(text, value).IsError();
  }
  constexpr unsigned kLenientFlags =
      kParseFlags & ~static_cast<unsigned>(rapidjson::kParseValidateEncodingFlag);
  return !parse_one_value<kLenientFlags>(text, value).IsError();
}

}  // namespace hearth::protocol::strict_json
