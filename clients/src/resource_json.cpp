#include "resource_json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <utility>

namespace hearth::clients::detail {
namespace {

using rapidjson::Value;

Error malformed(std::string_view what) {
  return make_error("server_error", "malformed reply from the server: " + std::string(what));
}

std::string to_json(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<rapidjson::Document> parse_object(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return malformed("not JSON");
  if (!doc.IsObject()) return malformed("not a JSON object");
  return doc;
}

const Value* member(const Value& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// A JSON number as int64 (REST writes integers; a double such as 1.0 is tolerated).
std::optional<int64_t> as_int(const Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->IsInt64()) return value->GetInt64();
  if (value->IsUint64()) return static_cast<int64_t>(value->GetUint64());
  if (value->IsDouble()) return static_cast<int64_t>(value->GetDouble());
  return std::nullopt;
}

int64_t int_or(const Value& object, const char* key, int64_t fallback) {
  return as_int(member(object, key)).value_or(fallback);
}

double double_or(const Value& object, const char* key, double fallback) {
  const Value* value = member(object, key);
  return value != nullptr && value->IsNumber() ? value->GetDouble() : fallback;
}

std::optional<std::string> optional_string(const Value& object, const char* key) {
  const Value* value = member(object, key);
  if (value == nullptr || !value->IsString()) return std::nullopt;
  return std::string(value->GetString(), value->GetStringLength());
}

std::string string_or(const Value& object, const char* key, std::string fallback = {}) {
  return optional_string(object, key).value_or(std::move(fallback));
}

std::vector<std::string> strings_of(const Value* value) {
  std::vector<std::string> out;
  if (value == nullptr || !value->IsArray()) return out;
  for (const auto& item : value->GetArray()) {
    if (item.IsString()) {
      out.emplace_back(item.GetString(), item.GetStringLength());
    } else {
      out.push_back(to_json(item));
    }
  }
  return out;
}

Result<int64_t> required_int(const Value& object, const char* key, const char* resource) {
  auto value = as_int(member(object, key));
  if (!value) return malformed(std::string(resource) + " without an integer '" + key + "'");
  return *value;
}

Result<std::string> required_string(const Value& object, const char* key, const char* resource) {
  auto value = optional_string(object, key);
  if (!value) return malformed(std::string(resource) + " without a string '" + key + "'");
  return *std::move(value);
}

StatementOutput output_from(const Value& object) {
  StatementOutput output;
  output.status = string_or(object, "status");
  output.execution_count = int_or(object, "execution_count", 0);
  if (const Value* data = member(object, "data"); data != nullptr && data->IsObject()) {
    output.data_json = to_json(*data);
    output.text = optional_string(*data, "text/plain");
    if (const Value* table = member(*data, "application/json"); table != nullptr) {
      output.table_json = to_json(*table);
    }
  }
  output.ename = string_or(object, "ename");
  output.evalue = string_or(object, "evalue");
  output.traceback = strings_of(member(object, "traceback"));
  return output;
}

Result<Session> session_from(const Value& object) {
  if (!object.IsObject()) return malformed("session is not an object");
  Session session;
  auto id = required_int(object, "id", "session");
  if (!id) return id.error();
  session.id = *id;
  auto state = required_string(object, "state", "session");
  if (!state) return state.error();
  session.state = *std::move(state);
  session.name = optional_string(object, "name");
  session.kind = string_or(object, "kind");
  session.owner = optional_string(object, "owner");
  session.proxy_user = optional_string(object, "proxyUser");
  session.app_id = optional_string(object, "appId");
  session.log = strings_of(member(object, "log"));
  session.json = to_json(object);
  return session;
}

Result<Statement> statement_from(const Value& object, int64_t session_id) {
  if (!object.IsObject()) return malformed("statement is not an object");
  Statement statement;
  statement.session_id = session_id;
  auto id = required_int(object, "id", "statement");
  if (!id) return id.error();
  statement.id = *id;
  auto state = required_string(object, "state", "statement");
  if (!state) return state.error();
  statement.state = *std::move(state);
  statement.code = string_or(object, "code");
  statement.progress = double_or(object, "progress", 0);
  statement.started = int_or(object, "started", 0);
  statement.completed = int_or(object, "completed", 0);
  if (const Value* output = member(object, "output"); output != nullptr && output->IsObject()) {
    statement.output = output_from(*output);
  }
  return statement;
}

Result<Job> job_from(const Value& object, int64_t session_id) {
  if (!object.IsObject()) return malformed("job is not an object");
  Job job;
  auto id = required_int(object, "id", "job");
  if (!id) return id.error();
  job.id = *id;
  auto state = required_string(object, "state", "job");
  if (!state) return state.error();
  job.state = *std::move(state);
  job.session_id = int_or(object, "sessionId", session_id);
  job.class_name = string_or(object, "className");
  job.progress = double_or(object, "progress", 0);
  job.created = int_or(object, "created", 0);
  job.started = int_or(object, "started", 0);
  job.completed = int_or(object, "completed", 0);
  if (const Value* result = member(object, "result"); result != nullptr && !result->IsNull()) {
    job.result_json = to_json(*result);
  }
  job.error = optional_string(object, "error");
  job.traceback = strings_of(member(object, "traceback"));
  return job;
}

Result<Driver> driver_from(const Value& object) {
  if (!object.IsObject()) return malformed("driver is not an object");
  Driver driver;
  auto id = required_string(object, "id", "driver");
  if (!id) return id.error();
  driver.id = *std::move(id);
  auto state = required_string(object, "state", "driver");
  if (!state) return state.error();
  driver.state = *std::move(state);
  driver.user = string_or(object, "user");
  driver.share_level = string_or(object, "shareLevel");
  if (const Value* pooled = member(object, "pooled"); pooled != nullptr && pooled->IsBool()) {
    driver.pooled = pooled->GetBool();
  }
  if (const Value* sessions = member(object, "sessions"); sessions != nullptr && sessions->IsArray()) {
    for (const auto& item : sessions->GetArray()) {
      if (auto value = as_int(&item)) driver.sessions.push_back(*value);
    }
  }
  driver.app_id = optional_string(object, "appId");
  driver.spark_ui_url = optional_string(object, "sparkUiUrl");
  driver.pid = int_or(object, "pid", 0);
  driver.json = to_json(object);
  return driver;
}

// Reads {"<key>": [item...]} with `read` for each item.
template <typename T, typename Read>
Result<std::vector<T>> list_from(std::string_view json, const char* key, Read read) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  const Value* items = member(*doc, key);
  if (items == nullptr || !items->IsArray()) {
    return malformed(std::string("no array '") + key + "'");
  }
  std::vector<T> out;
  for (const auto& item : items->GetArray()) {
    auto value = read(item);
    if (!value) return value.error();
    out.push_back(std::move(value).value());
  }
  return out;
}

template <typename Writer>
void write_strings(Writer& writer, const std::vector<std::string>& items) {
  writer.StartArray();
  for (const auto& item : items) writer.String(item.data(), static_cast<unsigned>(item.size()));
  writer.EndArray();
}

}  // namespace

Result<Session> session_from_json(std::string_view json) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  return session_from(*doc);
}

Result<Statement> statement_from_json(std::string_view json, int64_t session_id) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  return statement_from(*doc, session_id);
}

Result<Job> job_from_json(std::string_view json, int64_t session_id) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  return job_from(*doc, session_id);
}

Result<Driver> driver_from_json(std::string_view json) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  return driver_from(*doc);
}

Result<std::vector<Session>> sessions_from_json(std::string_view json) {
  return list_from<Session>(json, "sessions", [](const Value& v) { return session_from(v); });
}

Result<std::vector<Statement>> statements_from_json(std::string_view json, int64_t session_id) {
  return list_from<Statement>(json, "statements",
                              [&](const Value& v) { return statement_from(v, session_id); });
}

Result<std::vector<Job>> jobs_from_json(std::string_view json, int64_t session_id) {
  return list_from<Job>(json, "jobs", [&](const Value& v) { return job_from(v, session_id); });
}

Result<std::vector<Driver>> drivers_from_json(std::string_view json) {
  return list_from<Driver>(json, "drivers", [](const Value& v) { return driver_from(v); });
}

namespace {
Result<std::vector<std::string>> string_list(std::string_view json, const char* key) {
  auto doc = parse_object(json);
  if (!doc) return doc.error();
  const Value* items = member(*doc, key);
  if (items == nullptr || !items->IsArray()) {
    return malformed(std::string("no array '") + key + "'");
  }
  return strings_of(items);
}
}  // namespace

Result<std::vector<std::string>> log_from_json(std::string_view json) {
  return string_list(json, "log");
}

Result<std::vector<std::string>> candidates_from_json(std::string_view json) {
  return string_list(json, "candidates");
}

int64_t int_field_of(std::string_view json, const char* key, int64_t fallback) {
  auto doc = parse_object(json);
  if (!doc) return fallback;
  return int_or(*doc, key, fallback);
}

std::string error_message_of(std::string_view body_json) {
  rapidjson::Document doc;
  doc.Parse(body_json.data(), body_json.size());
  if (!doc.HasParseError()) {
    if (doc.IsObject()) {
      if (auto msg = optional_string(doc, "msg")) return *msg;
    } else if (doc.IsString()) {
      return std::string(doc.GetString(), doc.GetStringLength());
    }
  }
  return std::string(body_json);
}

std::string json_string(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<unsigned>(text.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string statement_request_json(std::string_view code, const std::optional<std::string>& kind) {
  std::string out = "{\"code\":" + json_string(code);
  if (kind) out += ",\"kind\":" + json_string(*kind);
  return out + "}";
}

std::string completion_request_json(std::string_view code, std::string_view kind, int64_t cursor) {
  return "{\"code\":" + json_string(code) + ",\"kind\":" + json_string(kind) +
         ",\"cursor\":" + std::to_string(cursor) + "}";
}

std::string job_request_json(const JobSpec& spec) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("className");
  writer.String(spec.class_name.data(), static_cast<unsigned>(spec.class_name.size()));
  if (spec.jar) {
    writer.Key("jar");
    writer.String(spec.jar->data(), static_cast<unsigned>(spec.jar->size()));
  }
  writer.Key("args");
  write_strings(writer, spec.args);
  writer.Key("conf");
  writer.StartObject();
  for (const auto& [key, value] : spec.conf) {
    writer.Key(key.data(), static_cast<unsigned>(key.size()));
    writer.String(value.data(), static_cast<unsigned>(value.size()));
  }
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string uri_request_json(std::string_view uri) { return "{\"uri\":" + json_string(uri) + "}"; }

}  // namespace hearth::clients::detail
