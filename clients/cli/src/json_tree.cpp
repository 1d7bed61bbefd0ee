#include "json_tree.hpp"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

namespace hearth::cli {
namespace {

// Builds the tree from RapidJSON's SAX events. `open_` holds the containers being filled, from
// the root down; a pointer into a parent's vector stays valid while that container is open,
// because nothing is added to the parent until the child closes.
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  JsonNode root;

  bool Null() { return scalar(JsonNode::Kind::kNull, {}); }
  bool Bool(bool b) { return scalar(JsonNode::Kind::kBool, b ? "true" : "false"); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    return scalar(JsonNode::Kind::kNumber, std::string(str, length));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    return scalar(JsonNode::Kind::kString, std::string(str, length));
  }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    key_.assign(str, length);
    return true;
  }
  bool StartObject() { return open(JsonNode::Kind::kObject); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(JsonNode::Kind::kArray); }
  bool EndArray(rapidjson::SizeType) { return close(); }

 private:
  JsonNode* add(JsonNode node) {
    if (open_.empty()) {
      root = std::move(node);
      return &root;
    }
    JsonNode* parent = open_.back();
    if (parent->kind == JsonNode::Kind::kObject) {
      parent->members.emplace_back(std::move(key_), std::move(node));
      key_.clear();
      return &parent->members.back().second;
    }
    parent->items.push_back(std::move(node));
    return &parent->items.back();
  }
  bool scalar(JsonNode::Kind kind, std::string text) {
    JsonNode node;
    node.kind = kind;
    node.text = std::move(text);
    add(std::move(node));
    return true;
  }
  bool open(JsonNode::Kind kind) {
    JsonNode node;
    node.kind = kind;
    open_.push_back(add(std::move(node)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  std::vector<JsonNode*> open_;
  std::string key_;
};

void write(const JsonNode& node, rapidjson::Writer<rapidjson::StringBuffer>& writer) {
  switch (node.kind) {
    case JsonNode::Kind::kNull:
      writer.Null();
      break;
    case JsonNode::Kind::kBool:
      writer.Bool(node.text == "true");
      break;
    case JsonNode::Kind::kNumber:
      // Not Writer::RawNumber: RapidJSON 1.1 writes that one as a string.
      writer.RawValue(node.text.data(), node.text.size(), rapidjson::kNumberType);
      break;
    case JsonNode::Kind::kString:
      writer.String(node.text.data(), static_cast<rapidjson::SizeType>(node.text.size()));
      break;
    case JsonNode::Kind::kArray:
      writer.StartArray();
      for (const auto& item : node.items) write(item, writer);
      writer.EndArray();
      break;
    case JsonNode::Kind::kObject:
      writer.StartObject();
      for (const auto& [name, value] : node.members) {
        writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
        write(value, writer);
      }
      writer.EndObject();
      break;
  }
}

}  // namespace

const JsonNode* JsonNode::find(std::string_view name) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto& [key, value] : members) {
    if (key == name) return &value;
  }
  return nullptr;
}

Result<JsonNode> parse_json(std::string_view text) {
  rapidjson::MemoryStream memory(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> input(memory);
  TreeBuilder builder;
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNanAndInfFlag;
  auto parsed = reader.Parse<kFlags>(input, builder);
  if (parsed.IsError()) {
    return make_error("bad_request", std::string("invalid JSON: ") +
                                         rapidjson::GetParseError_En(parsed.Code()) +
                                         " at offset " + std::to_string(parsed.Offset()));
  }
  return std::move(builder.root);
}

std::string to_json(const JsonNode& node) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  write(node, writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string display_text(const JsonNode& node) {
  switch (node.kind) {
    case JsonNode::Kind::kNull:
      return "null";
    case JsonNode::Kind::kBool:
    case JsonNode::Kind::kNumber:
    case JsonNode::Kind::kString:
      return node.text;
    case JsonNode::Kind::kArray:
    case JsonNode::Kind::kObject:
      return to_json(node);
  }
  return {};
}

}  // namespace hearth::cli
