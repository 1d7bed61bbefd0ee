#pragma once

// A small JSON tree for printing what the server sent: unlike a RapidJSON Document it keeps each
// number exactly as written (a decimal 1.50 stays "1.50", a long beyond 2^53 loses nothing) and
// keeps object members in their order. Only for display and for reading a few fields.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::cli {

struct JsonNode {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  // kBool: "true"/"false"; kNumber: the number's text as written; kString: the decoded string.
  std::string text;
  std::vector<JsonNode> items;                              // kArray
  std::vector<std::pair<std::string, JsonNode>> members;  // kObject, in document order

  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_null() const { return kind == Kind::kNull; }
  // The first member named `name` of an object; nullptr when absent or not an object.
  const JsonNode* find(std::string_view name) const;
};

// Error "bad_request" (with RapidJSON's reason and offset) for text that is not one JSON value.
Result<JsonNode> parse_json(std::string_view text);

// Compact JSON text of the node (numbers as written, non-ASCII characters as UTF-8).
std::string to_json(const JsonNode& node);

// How a value shows in a table cell or a line of text: a string as it is, null as "null",
// numbers and booleans as written, arrays and objects as compact JSON.
std::string display_text(const JsonNode& node);

}  // namespace hearth::cli
