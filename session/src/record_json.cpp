#include "record_json.hpp"

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "hearth/session/driver_secret.hpp"

namespace hearth::session::record_json {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Full precision so doubles (progress) read back bit-identical; iterative so a deeply nested
// statement output cannot overflow the stack while parsing.
constexpr unsigned kParseFlags =
    rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag;

// ---- encoding ----------------------------------------------------------------------------

void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_key(JsonWriter& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_field(JsonWriter& w, std::string_view key, std::string_view value) {
  write_key(w, key);
  write_string(w, value);
}

void write_field(JsonWriter& w, std::string_view key, const std::string& value) {
  write_field(w, key, std::string_view(value));
}

void write_field(JsonWriter& w, std::string_view key, int64_t value) {
  write_key(w, key);
  w.Int64(value);
}

void write_field(JsonWriter& w, std::string_view key, const std::optional<std::string>& value) {
  write_key(w, key);
  if (value) {
    write_string(w, *value);
  } else {
    w.Null();
  }
}

void write_field(JsonWriter& w, std::string_view key, const std::optional<int64_t>& value) {
  write_key(w, key);
  if (value) {
    w.Int64(*value);
  } else {
    w.Null();
  }
}

void write_field(JsonWriter& w, std::string_view key, const std::vector<std::string>& values) {
  write_key(w, key);
  w.StartArray();
  for (const auto& v : values) write_string(w, v);
  w.EndArray();
}

void write_field(JsonWriter& w, std::string_view key,
                 const std::map<std::string, std::string>& values) {
  write_key(w, key);
  w.StartObject();
  for (const auto& [k, v] : values) {
    write_key(w, k);
    write_string(w, v);
  }
  w.EndObject();
}

void write_request(JsonWriter& w, const SessionRequest& r) {
  w.StartObject();
  write_field(w, "kind", r.kind);
  write_field(w, "proxy_user", r.proxy_user);
  write_field(w, "name", r.name);
  write_field(w, "driver_memory", r.driver_memory);
  write_field(w, "executor_memory", r.executor_memory);
  write_field(w, "queue", r.queue);
  write_field(w, "ttl", r.ttl);
  write_field(w, "idle_timeout", r.idle_timeout);
  write_field(w, "driver_cores", r.driver_cores);
  write_field(w, "executor_cores", r.executor_cores);
  write_field(w, "num_executors", r.num_executors);
  write_field(w, "jars", r.jars);
  write_field(w, "py_files", r.py_files);
  write_field(w, "files", r.files);
  write_field(w, "archives", r.archives);
  write_field(w, "conf", r.conf);
  write_field(w, "heartbeat_timeout_s", r.heartbeat_timeout_s);
  write_field(w, "share_level", r.share_level);
  w.EndObject();
}

void write_profile(JsonWriter& w, const DriverProfile& p) {
  w.StartObject();
  write_field(w, "driver_memory", p.driver_memory);
  write_field(w, "executor_memory", p.executor_memory);
  write_field(w, "queue", p.queue);
  write_field(w, "driver_cores", p.driver_cores);
  write_field(w, "executor_cores", p.executor_cores);
  write_field(w, "num_executors", p.num_executors);
  write_field(w, "conf", p.conf);
  w.EndObject();
}

// ---- decoding ----------------------------------------------------------------------------

// Reads fields of one JSON object; remembers the first problem so callers can read every field
// and check once at the end.
class FieldReader {
 public:
  FieldReader(const rapidjson::Value& object, std::string path, std::string* error)
      : object_(object), path_(std::move(path)), error_(error) {}

  std::string string(const char* key) {
    const rapidjson::Value* v = required(key);
    if (v == nullptr) return {};
    if (!v->IsString()) return fail(key, "must be a string"), std::string();
    return std::string(v->GetString(), v->GetStringLength());
  }

  int64_t int64(const char* key) {
    const rapidjson::Value* v = required(key);
    if (v == nullptr) return 0;
    if (!v->IsInt64()) return fail(key, "must be an integer"), 0;
    return v->GetInt64();
  }

  double number(const char* key) {
    const rapidjson::Value* v = required(key);
    if (v == nullptr) return 0.0;
    if (!v->IsNumber()) return fail(key, "must be a number"), 0.0;
    return v->GetDouble();
  }

  std::optional<std::string> optional_string(const char* key) {
    const rapidjson::Value* v = optional(key);
    if (v == nullptr) return std::nullopt;
    if (!v->IsString()) return fail(key, "must be a string or null"), std::nullopt;
    return std::string(v->GetString(), v->GetStringLength());
  }

  std::optional<int64_t> optional_int64(const char* key) {
    const rapidjson::Value* v = optional(key);
    if (v == nullptr) return std::nullopt;
    if (!v->IsInt64()) return fail(key, "must be an integer or null"), std::nullopt;
    return v->GetInt64();
  }

  std::vector<std::string> string_list(const char* key) {
    std::vector<std::string> out;
    const rapidjson::Value* v = required(key);
    if (v == nullptr) return out;
    if (!v->IsArray()) return fail(key, "must be an array of strings"), out;
    for (const auto& item : v->GetArray()) {
      if (!item.IsString()) return fail(key, "must be an array of strings"), out;
      out.emplace_back(item.GetString(), item.GetStringLength());
    }
    return out;
  }

  std::map<std::string, std::string> string_map(const char* key) {
    std::map<std::string, std::string> out;
    const rapidjson::Value* v = required(key);
    if (v == nullptr) return out;
    if (!v->IsObject()) return fail(key, "must be an object of strings"), out;
    for (const auto& member : v->GetObject()) {
      if (!member.value.IsString()) return fail(key, "must be an object of strings"), out;
      out.emplace(std::string(member.name.GetString(), member.name.GetStringLength()),
                  std::string(member.value.GetString(), member.value.GetStringLength()));
    }
    return out;
  }

  // The value under key, or nullptr (and an error) if absent.
  const rapidjson::Value* required(const char* key) {
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd()) return fail(key, "is missing"), nullptr;
    return &it->value;
  }

  // The value under key, or nullptr if absent or null.
  const rapidjson::Value* optional(const char* key) const {
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
  }

  void fail(const char* key, const char* problem) {
    if (error_->empty()) *error_ = "field " + path_ + key + " " + problem;
  }

 private:
  const rapidjson::Value& object_;
  std::string path_;
  std::string* error_;
};

// A required field holding an embedded JSON value, as compact text; nullopt when it is null.
std::optional<std::string> embedded_json(FieldReader& f, const char* key) {
  const rapidjson::Value* value = f.required(key);
  if (value == nullptr || value->IsNull()) return std::nullopt;
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  value->Accept(w);
  return std::string(buffer.GetString(), buffer.GetSize());
}

Error corrupt(std::string message) { return make_error("corrupt_record", std::move(message)); }

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A driver record's secret_sha256. The release before the schema key stored the secret itself
// under "secret"; such a record reads as its digest (the clear value is not kept), and the
// schema check's adoption of that Redis rewrites it without the secret.
std::string read_secret_sha256(const rapidjson::Value& doc, FieldReader& f) {
  if (!doc.HasMember("secret_sha256")) {
    if (auto legacy = f.optional_string("secret")) return secret_digest(*legacy);
  }
  std::string digest = f.string("secret_sha256");
  if (!digest.empty() && !is_sha256_hex(digest)) {
    f.fail("secret_sha256", "must be 64 lowercase hex digits");
  }
  return digest;
}

// Parses `json` into `doc` and checks it is an object of the expected version.
Result<void> parse_record(std::string_view json, rapidjson::Document& doc) {
  doc.Parse<kParseFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    return corrupt(std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) +
                   ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return corrupt("record is not a JSON object");
  auto version = doc.FindMember("version");
  if (version == doc.MemberEnd() || !version->value.IsInt()) {
    return corrupt("record has no integer version");
  }
  if (version->value.GetInt() != kRecordVersion) {
    return corrupt("unsupported record version " + std::to_string(version->value.GetInt()));
  }
  return Ok{};
}

}  // namespace

std::string encode_session(const SessionRecord& record) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_field(w, "version", int64_t{kRecordVersion});
  write_field(w, "id", record.id);
  write_key(w, "request");
  write_request(w, record.request);
  write_field(w, "owner", record.owner);
  write_field(w, "state", to_string(record.state));
  write_field(w, "app_id", record.app_id);
  write_field(w, "spark_ui_url", record.spark_ui_url);
  write_field(w, "driver_id", record.driver_id);
  write_field(w, "created_ms", record.created_ms);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<std::string> encode_statement(const StatementRecord& record) {
  if (!std::isfinite(record.progress)) {
    return make_error("invalid_record", "statement progress is not a finite number");
  }
  rapidjson::Document output;
  if (record.output_json) {
    output.Parse<kParseFlags>(record.output_json->data(), record.output_json->size());
    if (output.HasParseError()) {
      return make_error("invalid_record",
                        std::string("statement output is not valid JSON: ") +
                            rapidjson::GetParseError_En(output.GetParseError()));
    }
  }
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_field(w, "version", int64_t{kRecordVersion});
  write_field(w, "session_id", record.session_id);
  write_field(w, "id", record.id);
  write_field(w, "kind", record.kind);
  write_field(w, "code", record.code);
  write_field(w, "state", to_string(record.state));
  write_key(w, "output");
  if (record.output_json) {
    output.Accept(w);
  } else {
    w.Null();
  }
  write_key(w, "progress");
  w.Double(record.progress);
  write_field(w, "started_ms", record.started_ms);
  write_field(w, "completed_ms", record.completed_ms);
  w.EndObject();
  if (!w.IsComplete()) return make_error("invalid_record", "statement could not be encoded");
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string encode_driver(const DriverRecord& record) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_field(w, "version", int64_t{kRecordVersion});
  write_field(w, "id", record.id);
  write_field(w, "secret_sha256", record.secret_sha256);
  write_field(w, "pid", record.pid);
  write_field(w, "created_ms", record.created_ms);
  write_field(w, "user", record.user);
  write_field(w, "share_level", record.share_level);
  write_key(w, "pooled");
  w.Bool(record.pooled);
  write_key(w, "profile");
  write_profile(w, record.profile);
  write_field(w, "state", to_string(record.state));
  write_field(w, "app_id", record.app_id);
  write_field(w, "spark_ui_url", record.spark_ui_url);
  write_field(w, "last_used_ms", record.last_used_ms);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<std::string> encode_job(const JobRecord& record) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_field(w, "version", int64_t{kRecordVersion});
  write_field(w, "session_id", record.session_id);
  write_field(w, "id", record.id);
  write_field(w, "class_name", record.class_name);
  write_field(w, "jar", record.jar);
  write_field(w, "args", record.args);
  write_field(w, "conf", record.conf);
  write_field(w, "state", to_string(record.state));
  write_key(w, "progress");
  if (!std::isfinite(record.progress)) return make_error("invalid_record", "job progress is not finite");
  w.Double(record.progress);
  write_field(w, "created_ms", record.created_ms);
  write_field(w, "started_ms", record.started_ms);
  write_field(w, "completed_ms", record.completed_ms);
  write_key(w, "result");
  if (record.result_json) {
    rapidjson::Document result;
    result.Parse<kParseFlags>(record.result_json->data(), record.result_json->size());
    if (result.HasParseError()) return make_error("invalid_record", "job result is not valid JSON");
    result.Accept(w);
  } else {
    w.Null();
  }
  write_field(w, "error", record.error);
  write_field(w, "traceback", record.traceback);
  w.EndObject();
  if (!w.IsComplete()) return make_error("invalid_record", "job could not be encoded");
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<SessionRecord> decode_session(std::string_view json) {
  rapidjson::Document doc;
  if (auto parsed = parse_record(json, doc); !parsed) return parsed.error();
  std::string error;
  FieldReader f(doc, "", &error);
  SessionRecord record;
  record.id = f.int64("id");
  record.owner = f.optional_string("owner");
  const std::string state = f.string("state");
  record.app_id = f.optional_string("app_id");
  record.spark_ui_url = f.optional_string("spark_ui_url");
  record.driver_id = f.string("driver_id");
  record.created_ms = f.int64("created_ms");
  if (const rapidjson::Value* request = f.required("request"); request != nullptr) {
    if (!request->IsObject()) {
      f.fail("request", "must be an object");
    } else {
      FieldReader r(*request, "request.", &error);
      SessionRequest& q = record.request;
      q.kind = r.string("kind");
      q.proxy_user = r.optional_string("proxy_user");
      q.name = r.optional_string("name");
      q.driver_memory = r.optional_string("driver_memory");
      q.executor_memory = r.optional_string("executor_memory");
      q.queue = r.optional_string("queue");
      q.ttl = r.optional_string("ttl");
      q.idle_timeout = r.optional_string("idle_timeout");
      q.driver_cores = r.optional_int64("driver_cores");
      q.executor_cores = r.optional_int64("executor_cores");
      q.num_executors = r.optional_int64("num_executors");
      q.jars = r.string_list("jars");
      q.py_files = r.string_list("py_files");
      q.files = r.string_list("files");
      q.archives = r.string_list("archives");
      q.conf = r.string_map("conf");
      q.heartbeat_timeout_s = r.int64("heartbeat_timeout_s");
      q.share_level = r.optional_string("share_level");
    }
  }
  if (!error.empty()) return corrupt(std::move(error));
  auto parsed_state = parse_session_state(state);
  if (!parsed_state) return corrupt("unknown session state \"" + state + "\"");
  record.state = *parsed_state;
  return record;
}

Result<StatementRecord> decode_statement(std::string_view json) {
  rapidjson::Document doc;
  if (auto parsed = parse_record(json, doc); !parsed) return parsed.error();
  std::string error;
  FieldReader f(doc, "", &error);
  StatementRecord record;
  record.session_id = f.int64("session_id");
  record.id = f.int64("id");
  record.kind = f.string("kind");
  record.code = f.string("code");
  const std::string state = f.string("state");
  record.progress = f.number("progress");
  record.started_ms = f.int64("started_ms");
  record.completed_ms = f.int64("completed_ms");
  record.output_json = embedded_json(f, "output");
  if (!error.empty()) return corrupt(std::move(error));
  auto parsed_state = parse_statement_state(state);
  if (!parsed_state) return corrupt("unknown statement state \"" + state + "\"");
  record.state = *parsed_state;
  return record;
}

Result<DriverRecord> decode_driver(std::string_view json) {
  rapidjson::Document doc;
  if (auto parsed = parse_record(json, doc); !parsed) return parsed.error();
  std::string error;
  FieldReader f(doc, "", &error);
  DriverRecord record;
  record.id = f.string("id");
  record.secret_sha256 = read_secret_sha256(doc, f);
  record.pid = f.int64("pid");
  record.created_ms = f.int64("created_ms");
  record.user = f.optional_string("user");
  record.share_level = f.string("share_level");
  if (const rapidjson::Value* pooled = f.required("pooled"); pooled != nullptr) {
    if (pooled->IsBool()) {
      record.pooled = pooled->GetBool();
    } else {
      f.fail("pooled", "must be a boolean");
    }
  }
  if (const rapidjson::Value* profile = f.required("profile"); profile != nullptr) {
    if (!profile->IsObject()) {
      f.fail("profile", "must be an object");
    } else {
      FieldReader p(*profile, "profile.", &error);
      DriverProfile& q = record.profile;
      q.driver_memory = p.optional_string("driver_memory");
      q.executor_memory = p.optional_string("executor_memory");
      q.queue = p.optional_string("queue");
      q.driver_cores = p.optional_int64("driver_cores");
      q.executor_cores = p.optional_int64("executor_cores");
      q.num_executors = p.optional_int64("num_executors");
      q.conf = p.string_map("conf");
    }
  }
  const std::string state = f.string("state");
  record.app_id = f.optional_string("app_id");
  record.spark_ui_url = f.optional_string("spark_ui_url");
  record.last_used_ms = f.int64("last_used_ms");
  if (!error.empty()) return corrupt(std::move(error));
  auto parsed_state = parse_driver_state(state);
  if (!parsed_state) return corrupt("unknown driver state \"" + state + "\"");
  record.state = *parsed_state;
  return record;
}

Result<JobRecord> decode_job(std::string_view json) {
  rapidjson::Document doc;
  if (auto parsed = parse_record(json, doc); !parsed) return parsed.error();
  std::string error;
  FieldReader f(doc, "", &error);
  JobRecord record;
  record.session_id = f.int64("session_id");
  record.id = f.int64("id");
  record.class_name = f.string("class_name");
  record.jar = f.optional_string("jar");
  record.args = f.string_list("args");
  record.conf = f.string_map("conf");
  const std::string state = f.string("state");
  record.progress = f.number("progress");
  record.created_ms = f.int64("created_ms");
  record.started_ms = f.int64("started_ms");
  record.completed_ms = f.int64("completed_ms");
  record.result_json = embedded_json(f, "result");
  record.error = f.optional_string("error");
  record.traceback = f.string_list("traceback");
  if (!error.empty()) return corrupt(std::move(error));
  auto parsed_state = parse_job_state(state);
  if (!parsed_state) return corrupt("unknown job state \"" + state + "\"");
  record.state = *parsed_state;
  return record;
}

std::string encode_event(const StoredEvent& event) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_field(w, "version", int64_t{kRecordVersion});
  write_field(w, "seq", event.seq);
  write_field(w, "kind", event.kind);
  write_key(w, "body");
  rapidjson::Document body;
  body.Parse<kParseFlags>(event.body_json.data(), event.body_json.size());
  if (body.HasParseError()) {
    w.Null();
  } else {
    body.Accept(w);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<StoredEvent> decode_event(std::string_view json) {
  rapidjson::Document doc;
  if (auto parsed = parse_record(json, doc); !parsed) return parsed.error();
  std::string error;
  FieldReader f(doc, "", &error);
  StoredEvent event;
  event.seq = f.int64("seq");
  event.kind = f.string("kind");
  event.body_json = embedded_json(f, "body").value_or("null");
  if (!error.empty()) return corrupt(std::move(error));
  return event;
}

}  // namespace hearth::session::record_json
