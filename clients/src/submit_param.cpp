#include "hearth/clients/submit_param.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace hearth::clients {
namespace {

std::string_view trim(std::string_view text) {
  const char* spaces = " \t\r\f\v";
  auto begin = text.find_first_not_of(spaces);
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(spaces);
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  while (true) {
    auto comma = text.find(',');
    auto item = trim(text.substr(0, comma));
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

Error line_error(int line, const std::string& what) {
  return make_error("bad_request", "line " + std::to_string(line) + ": " + what);
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& writer, const char* key, const std::optional<std::string>& value) {
  if (!value) return;
  writer.Key(key);
  writer.String(value->data(), static_cast<unsigned>(value->size()));
}

void write_int(Writer& writer, const char* key, const std::optional<int64_t>& value) {
  if (!value) return;
  writer.Key(key);
  writer.Int64(*value);
}

void write_list(Writer& writer, const char* key, const std::vector<std::string>& items) {
  if (items.empty()) return;
  writer.Key(key);
  writer.StartArray();
  for (const auto& item : items) writer.String(item.data(), static_cast<unsigned>(item.size()));
  writer.EndArray();
}

void write_conf(Writer& writer, const std::map<std::string, std::string>& conf) {
  if (conf.empty()) return;
  writer.Key("conf");
  writer.StartObject();
  for (const auto& [key, value] : conf) {
    writer.Key(key.data(), static_cast<unsigned>(key.size()));
    writer.String(value.data(), static_cast<unsigned>(value.size()));
  }
  writer.EndObject();
}

// The fields sessions and batches share (Livy's names).
void write_common(Writer& writer, const SubmitParam& p) {
  write_string(writer, "proxyUser", p.proxy_user);
  write_list(writer, "jars", p.jars);
  write_list(writer, "pyFiles", p.py_files);
  write_list(writer, "files", p.files);
  write_list(writer, "archives", p.archives);
  write_string(writer, "driverMemory", p.driver_memory);
  write_int(writer, "driverCores", p.driver_cores);
  write_string(writer, "executorMemory", p.executor_memory);
  write_int(writer, "executorCores", p.executor_cores);
  write_int(writer, "numExecutors", p.num_executors);
  write_string(writer, "queue", p.queue);
  write_string(writer, "name", p.name);
  write_conf(writer, p.conf);
}

}  // namespace

Result<SubmitParam> SubmitParam::parse_properties(std::string_view text) {
  SubmitParam p;
  int line_number = 0;
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = trim(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;

    auto separator = line.find_first_of("=:");
    if (separator == std::string_view::npos) {
      return line_error(line_number, "expected key=value, got '" + std::string(line) + "'");
    }
    std::string key(trim(line.substr(0, separator)));
    std::string value(trim(line.substr(separator + 1)));
    if (key.empty()) return line_error(line_number, "empty key");

    auto number = [&](std::optional<int64_t>& field) -> Result<void> {
      int64_t parsed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (ec != std::errc{} || end != value.data() + value.size() || value.empty()) {
        return line_error(line_number, "bad number for " + key + ": '" + value + "'");
      }
      field = parsed;
      return Ok{};
    };

    Result<void> ok = Ok{};
    if (key == "file") {
      p.file = value;
    } else if (key == "proxyUser") {
      p.proxy_user = value;
    } else if (key == "className") {
      p.class_name = value;
    } else if (key == "args") {
      p.args = split_list(value);
    } else if (key == "jars") {
      p.jars = split_list(value);
    } else if (key == "pyFiles") {
      p.py_files = split_list(value);
    } else if (key == "files") {
      p.files = split_list(value);
    } else if (key == "archives") {
      p.archives = split_list(value);
    } else if (key == "driverMemory") {
      p.driver_memory = value;
    } else if (key == "driverCores") {
      ok = number(p.driver_cores);
    } else if (key == "executorMemory") {
      p.executor_memory = value;
    } else if (key == "executorCores") {
      ok = number(p.executor_cores);
    } else if (key == "numExecutors") {
      ok = number(p.num_executors);
    } else if (key == "queue") {
      p.queue = value;
    } else if (key == "name") {
      p.name = value;
    } else if (key == "kind") {
      p.kind = value;
    } else if (key == "shareLevel") {
      p.share_level = value;
    } else if (key.starts_with("conf.") && key.size() > 5) {
      p.conf[key.substr(5)] = value;
    } else if (key.starts_with("spark.")) {
      p.conf[key] = value;
    } else {
      return line_error(line_number, "unknown key '" + key + "'");
    }
    if (!ok) return ok.error();
  }
  return p;
}

Result<SubmitParam> SubmitParam::load_properties(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("bad_request", "cannot read " + path.string());
  std::ostringstream content;
  content << in.rdbuf();
  auto parsed = parse_properties(content.str());
  if (!parsed) return make_error("bad_request", path.string() + ": " + parsed.error().message);
  return parsed;
}

std::string SubmitParam::to_session_json() const {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_string(writer, "kind", kind);
  write_common(writer, *this);
  write_string(writer, "shareLevel", share_level);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string SubmitParam::to_batch_json() const {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_string(writer, "file", file);
  write_string(writer, "className", class_name);
  write_list(writer, "args", args);
  write_common(writer, *this);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace hearth::clients
