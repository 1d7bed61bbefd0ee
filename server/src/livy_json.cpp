#include "hearth/server/livy_json.hpp"

#include "hearth/session/duration.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <filesystem>
#include <set>

namespace hearth::server {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Error bad_request(std::string message) { return make_error("bad_request", std::move(message)); }

Result<rapidjson::Document> parse_object(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return bad_request(std::string("malformed JSON in request body: ") +
                       rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                       std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return bad_request("request body must be a JSON object");
  return doc;
}

std::string type_error(std::string_view field, std::string_view expected) {
  return "field '" + std::string(field) + "' must be " + std::string(expected);
}

Result<std::optional<std::string>> optional_string(const rapidjson::Value& v, std::string_view field) {
  if (v.IsNull()) return std::optional<std::string>();
  if (!v.IsString()) return bad_request(type_error(field, "a string"));
  return std::optional<std::string>(std::string(v.GetString(), v.GetStringLength()));
}

Result<std::optional<int64_t>> optional_int(const rapidjson::Value& v, std::string_view field) {
  if (v.IsNull()) return std::optional<int64_t>();
  if (!v.IsInt()) return bad_request(type_error(field, "an integer"));
  return std::optional<int64_t>(v.GetInt());
}

Result<std::vector<std::string>> string_list(const rapidjson::Value& v, std::string_view field) {
  std::vector<std::string> out;
  if (v.IsNull()) return out;
  if (!v.IsArray()) return bad_request(type_error(field, "an array of strings"));
  for (const auto& item : v.GetArray()) {
    if (!item.IsString()) return bad_request(type_error(field, "an array of strings"));
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

// Livy coerces scalar conf values to strings (`true`, `5`); objects and arrays are refused.
Result<std::string> conf_value(const rapidjson::Value& v, std::string_view key) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return std::string(v.GetBool() ? "true" : "false");
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsNumber()) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.Double(v.GetDouble());
    return std::string(b.GetString());
  }
  return bad_request("conf value of '" + std::string(key) + "' must be a string, number or boolean");
}

// A "conf" object (null = empty), its scalar values turned into strings.
Result<std::map<std::string, std::string>> conf_map(const rapidjson::Value& v) {
  std::map<std::string, std::string> conf;
  if (v.IsNull()) return conf;
  if (!v.IsObject()) return bad_request(type_error("conf", "an object"));
  for (const auto& entry : v.GetObject()) {
    std::string conf_key(entry.name.GetString(), entry.name.GetStringLength());
    auto value = conf_value(entry.value, conf_key);
    if (!value) return value.error();
    conf[conf_key] = std::move(*value);
  }
  return conf;
}

void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_optional(Writer& w, const std::optional<std::string>& s) {
  if (s) write_string(w, *s);
  else w.Null();
}

void write_list(Writer& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (const auto& item : items) write_string(w, item);
  w.EndArray();
}

// One JSON object: `fill` writes its members.
template <typename Fill>
std::string json_object(Fill fill) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  fill(w);
  w.EndObject();
  return b.GetString();
}

}  // namespace

std::optional<std::string> normalize_session_kind(std::string_view kind) {
  if (kind == "shared") return "shared";
  return normalize_statement_kind(kind);
}

std::optional<std::string> normalize_statement_kind(std::string_view kind) {
  if (kind == "spark" || kind == "scala") return "spark";
  if (kind == "pyspark" || kind == "python") return "pyspark";
  if (kind == "sparkr" || kind == "r") return "sparkr";
  if (kind == "sql") return "sql";
  return std::nullopt;
}

Result<session::SessionRequest> parse_create_session(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.error();
  session::SessionRequest request;
  for (const auto& member : doc->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    auto set_string = [&](std::optional<std::string>& out) -> Result<void> {
      auto s = optional_string(v, key);
      if (!s) return s.error();
      out = std::move(*s);
      return Ok{};
    };
    auto set_int = [&](std::optional<int64_t>& out) -> Result<void> {
      auto i = optional_int(v, key);
      if (!i) return i.error();
      out = *i;
      return Ok{};
    };
    auto set_list = [&](std::vector<std::string>& out) -> Result<void> {
      auto l = string_list(v, key);
      if (!l) return l.error();
      out = std::move(*l);
      return Ok{};
    };
    Result<void> r = Ok{};
    if (key == "kind") {
      std::optional<std::string> kind;
      r = set_string(kind);
      if (r && kind) {
        auto normalized = normalize_session_kind(*kind);
        if (!normalized) {
          return bad_request("Invalid kind: " + *kind +
                             " (expected one of spark, pyspark, sparkr, sql, shared)");
        }
        request.kind = *normalized;
      }
    } else if (key == "shareLevel") {
      r = set_string(request.share_level);
      if (r && request.share_level && *request.share_level != "session" && *request.share_level != "user") {
        return bad_request("shareLevel must be \"session\" or \"user\", not \"" + *request.share_level + "\"");
      }
    } else if (key == "proxyUser") r = set_string(request.proxy_user);
    else if (key == "name") r = set_string(request.name);
    else if (key == "driverMemory") r = set_string(request.driver_memory);
    else if (key == "executorMemory") r = set_string(request.executor_memory);
    else if (key == "queue") r = set_string(request.queue);
    else if (key == "ttl") r = set_string(request.ttl);
    else if (key == "idleTimeout") r = set_string(request.idle_timeout);
    else if (key == "driverCores") r = set_int(request.driver_cores);
    else if (key == "executorCores") r = set_int(request.executor_cores);
    else if (key == "numExecutors") r = set_int(request.num_executors);
    else if (key == "jars") r = set_list(request.jars);
    else if (key == "pyFiles") r = set_list(request.py_files);
    else if (key == "files") r = set_list(request.files);
    else if (key == "archives") r = set_list(request.archives);
    else if (key == "heartbeatTimeoutInSecond") {
      std::optional<int64_t> seconds;
      r = set_int(seconds);
      request.heartbeat_timeout_s = seconds.value_or(0);
    } else if (key == "conf") {
      auto conf = conf_map(v);
      if (!conf) return conf.error();
      request.conf = std::move(*conf);
    } else {
      return bad_request("Unrecognized field \"" + std::string(key) + "\" in the session request");
    }
    if (!r) return r.error();
  }
  // Launch settings that belong to the server, not the session (Livy's spark-blacklist.conf).
  static const std::set<std::string, std::less<>> kBlacklisted = {
      "spark.master", "spark.submit.deployMode", "spark.yarn.jar", "spark.yarn.jars",
      "spark.yarn.archive", "livy.rsc.server.idle-timeout"};
  std::string blacklisted;
  for (const auto& [key, value] : request.conf) {
    if (kBlacklisted.count(key)) blacklisted += (blacklisted.empty() ? "" : ", ") + key;
  }
  if (!blacklisted.empty()) {
    return bad_request("Rejected, Reason: Blacklisted configuration values in session config: " +
                       blacklisted);
  }
  for (const auto* duration : {&request.ttl, &request.idle_timeout}) {
    if (*duration && !session::parse_duration(**duration)) {
      return bad_request("Rejected, Reason: invalid duration '" + **duration +
                         "' (use e.g. 500ms, 90s, 10m, 1h)");
    }
  }
  if (request.name && !request.name->empty() &&
      request.name->find_first_not_of("0123456789") == std::string::npos) {
    return bad_request("Rejected, Reason: Invalid session name: " + *request.name);
  }
  return request;
}

Result<StatementRequest> parse_create_statement(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.error();
  StatementRequest request;
  bool has_code = false;
  for (const auto& member : doc->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (key == "code") {
      if (!v.IsString()) return bad_request(type_error("code", "a string"));
      request.code.assign(v.GetString(), v.GetStringLength());
      has_code = true;
    } else if (key == "kind") {
      auto kind = optional_string(v, key);
      if (!kind) return kind.error();
      if (*kind) {
        auto normalized = normalize_statement_kind(**kind);
        if (!normalized) {
          return bad_request("Invalid kind: " + **kind + " (expected one of spark, pyspark, sparkr, sql)");
        }
        request.kind = *normalized;
      }
    } else {
      return bad_request("Unrecognized field \"" + std::string(key) + "\" in the statement request");
    }
  }
  if (!has_code) return bad_request("field 'code' is required");
  return request;
}

std::string render_session(const session::SessionRecord& s, const std::vector<std::string>& log_tail) {
  const auto& r = s.request;
  return json_object([&](Writer& w) {
    w.Key("id"); w.Int64(s.id);
    w.Key("name"); write_optional(w, r.name);
    w.Key("appId"); write_optional(w, s.app_id);
    w.Key("owner"); write_optional(w, s.owner);
    // Impersonation is not enabled (as in Livy's default), so the proxy user is not in effect.
    w.Key("proxyUser"); w.Null();
    w.Key("state"); write_string(w, session::to_string(s.state));
    w.Key("kind"); write_string(w, r.kind);
    w.Key("appInfo");
    w.StartObject();
    w.Key("driverLogUrl"); w.Null();
    w.Key("sparkUiUrl"); write_optional(w, s.spark_ui_url);
    w.Key("executorLogUrls"); w.Null();
    w.EndObject();
    w.Key("log"); write_list(w, log_tail);
    w.Key("ttl"); write_optional(w, r.ttl);
    w.Key("idleTimeout"); write_optional(w, r.idle_timeout);
    w.Key("driverMemory"); write_optional(w, r.driver_memory);
    w.Key("driverCores"); w.Int64(r.driver_cores.value_or(0));
    w.Key("executorMemory"); write_optional(w, r.executor_memory);
    w.Key("executorCores"); w.Int64(r.executor_cores.value_or(0));
    w.Key("conf");
    w.StartObject();
    for (const auto& [k, v] : r.conf) {
      write_string(w, k);
      write_string(w, v);
    }
    w.EndObject();
    w.Key("archives"); write_list(w, r.archives);
    w.Key("files"); write_list(w, r.files);
    w.Key("heartbeatTimeoutInSecond"); w.Int64(r.heartbeat_timeout_s);
    w.Key("jars"); write_list(w, r.jars);
    w.Key("numExecutors"); w.Int64(r.num_executors.value_or(0));
    w.Key("pyFiles"); write_list(w, r.py_files);
    w.Key("queue"); write_optional(w, r.queue);
  });
}

namespace {
std::string render_list(std::string_view head, int64_t head_value, std::string_view total_key,
                        int64_t total, std::string_view items_key,
                        const std::vector<std::string>& rendered, bool with_head) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  if (with_head) {
    write_string(w, head);
    w.Int64(head_value);
  }
  write_string(w, total_key);
  w.Int64(total);
  write_string(w, items_key);
  w.StartArray();
  for (const auto& item : rendered) w.RawValue(item.data(), item.size(), rapidjson::kObjectType);
  w.EndArray();
  w.EndObject();
  return b.GetString();
}
}  // namespace

std::string render_session_list(int64_t from, int64_t total, const std::vector<std::string>& rendered) {
  return render_list("from", from, "total", total, "sessions", rendered, true);
}

std::string render_statement(const session::StatementRecord& s) {
  return json_object([&](Writer& w) {
    w.Key("id"); w.Int64(s.id);
    w.Key("code"); write_string(w, s.code);
    w.Key("state"); write_string(w, session::to_string(s.state));
    w.Key("output");
    if (s.output_json) w.RawValue(s.output_json->data(), s.output_json->size(), rapidjson::kObjectType);
    else w.Null();
    w.Key("progress"); w.Double(s.progress);
    w.Key("started"); w.Int64(s.started_ms);
    w.Key("completed"); w.Int64(s.completed_ms);
  });
}

std::string render_statement_list(int64_t total, const std::vector<std::string>& rendered) {
  return render_list("", 0, "total_statements", total, "statements", rendered, false);
}

std::string render_state(int64_t id, std::string_view state) {
  return json_object([&](Writer& w) {
    w.Key("id"); w.Int64(id);
    w.Key("state"); write_string(w, state);
  });
}

std::string render_log(int64_t id, int64_t from, int64_t total, const std::vector<std::string>& lines) {
  return json_object([&](Writer& w) {
    w.Key("id"); w.Int64(id);
    w.Key("from"); w.Int64(from);
    w.Key("total"); w.Int64(total);
    w.Key("log"); write_list(w, lines);
  });
}

std::string render_version(std::string_view version) {
  return json_object([&](Writer& w) {
    w.Key("version"); write_string(w, version);
    w.Key("user"); w.String("<unknown>");
    w.Key("revision"); w.String("<unknown>");
    w.Key("branch"); w.String("<unknown>");
    w.Key("date"); w.String("<unknown>");
    w.Key("url"); w.String("<unknown>");
  });
}

Result<CompletionRequest> parse_completion(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.error();
  CompletionRequest request;
  bool has_code = false, has_kind = false;
  for (const auto& member : doc->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (key == "code") {
      if (!v.IsString()) return bad_request(type_error("code", "a string"));
      request.code.assign(v.GetString(), v.GetStringLength());
      has_code = true;
    } else if (key == "kind") {
      if (!v.IsString()) return bad_request(type_error("kind", "a string"));
      auto kind = normalize_statement_kind(std::string_view(v.GetString(), v.GetStringLength()));
      if (!kind) return bad_request("Invalid kind: " + std::string(v.GetString()));
      request.kind = *kind;
      has_kind = true;
    } else if (key == "cursor") {
      if (!v.IsInt64()) return bad_request(type_error("cursor", "an integer"));
      request.cursor = v.GetInt64();
    } else {
      return bad_request("Unrecognized field \"" + std::string(key) + "\" in the completion request");
    }
  }
  if (!has_code) return bad_request("field 'code' is required");
  if (!has_kind) return bad_request("field 'kind' is required");
  if (request.cursor < 0) request.cursor = static_cast<int64_t>(request.code.size());
  return request;
}

Result<std::string> parse_add_artifact(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.error();
  std::optional<std::string> uri;
  for (const auto& member : doc->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    if (key != "uri") {
      return bad_request("Unrecognized field \"" + std::string(key) + "\" in the request");
    }
    if (!member.value.IsString()) return bad_request(type_error("uri", "a string"));
    uri.emplace(member.value.GetString(), member.value.GetStringLength());
  }
  if (!uri || uri->empty()) return bad_request("field 'uri' is required");
  return *uri;
}

Result<std::string> check_artifact_uri(std::string_view uri, const std::vector<std::string>& whitelist) {
  std::string_view path = uri;
  auto colon = uri.find(':');
  bool has_scheme = colon != std::string_view::npos && colon > 0 &&
                    std::isalpha(static_cast<unsigned char>(uri[0])) &&
                    uri.substr(0, colon).find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") ==
                        std::string_view::npos;
  if (has_scheme) {
    if (uri.substr(0, colon) != "file") return std::string(uri);  // remote: Spark fetches it
    path = uri.substr(colon + 1);
    if (path.substr(0, 2) == "//") path.remove_prefix(2);
  }
  std::filesystem::path local(path);
  if (!local.is_absolute()) return bad_request("Path " + std::string(uri) + " must be absolute.");
  auto normal = std::filesystem::weakly_canonical(local);
  for (const auto& dir : whitelist) {
    auto base = std::filesystem::weakly_canonical(dir);
    auto rel = normal.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return "file://" + normal.string();
  }
  return bad_request("Local path " + std::string(uri) + " cannot be added to user sessions.");
}

std::string render_candidates(const std::vector<std::string>& candidates) {
  return json_object([&](Writer& w) {
    w.Key("candidates"); write_list(w, candidates);
  });
}

std::string render_message(std::string_view message) {
  return json_object([&](Writer& w) {
    w.Key("msg"); write_string(w, message);
  });
}

std::string render_log_lines(const std::vector<std::string>& lines) {
  return json_object([&](Writer& w) {
    w.Key("lines"); write_list(w, lines);
  });
}

std::string render_upload_progress(std::string_view upload, int64_t bytes) {
  return json_object([&](Writer& w) {
    w.Key("upload"); write_string(w, upload);
    w.Key("bytes"); w.Int64(bytes);
  });
}

std::string render_subscription(std::optional<int64_t> session, int64_t seq) {
  return json_object([&](Writer& w) {
    w.Key("session");
    if (session) w.Int64(*session);
    else w.Null();
    w.Key("seq"); w.Int64(seq);
  });
}

namespace {
void write_optional_int(Writer& w, const std::optional<int64_t>& v) {
  if (v) w.Int64(*v);
  else w.Null();
}

void write_map(Writer& w, const std::map<std::string, std::string>& values) {
  w.StartObject();
  for (const auto& [key, value] : values) {
    write_string(w, key);
    write_string(w, value);
  }
  w.EndObject();
}
}  // namespace

std::string render_driver(const session::DriverView& d) {
  const session::DriverRecord& r = d.record;
  return json_object([&](Writer& w) {
    w.Key("id"); write_string(w, r.id);
    w.Key("state"); write_string(w, d.state);
    w.Key("user"); write_optional(w, r.user);
    w.Key("shareLevel"); write_string(w, r.share_level);
    w.Key("pooled"); w.Bool(r.pooled);
    w.Key("profile");
    w.StartObject();
    w.Key("driverMemory"); write_optional(w, r.profile.driver_memory);
    w.Key("driverCores"); write_optional_int(w, r.profile.driver_cores);
    w.Key("executorMemory"); write_optional(w, r.profile.executor_memory);
    w.Key("executorCores"); write_optional_int(w, r.profile.executor_cores);
    w.Key("numExecutors"); write_optional_int(w, r.profile.num_executors);
    w.Key("queue"); write_optional(w, r.profile.queue);
    w.Key("conf"); write_map(w, r.profile.conf);
    w.EndObject();
    w.Key("sessions");
    w.StartArray();
    for (int64_t id : d.sessions) w.Int64(id);
    w.EndArray();
    w.Key("load");
    w.StartObject();
    w.Key("sessions"); w.Int64(static_cast<int64_t>(d.sessions.size()));
    w.Key("busySessions"); w.Int64(d.busy_sessions);
    w.Key("runningStatements"); w.Int64(d.running_statements);
    w.Key("runningJobs"); w.Int64(d.running_jobs);
    w.EndObject();
    w.Key("appId"); write_optional(w, r.app_id);
    w.Key("sparkUiUrl"); write_optional(w, r.spark_ui_url);
    w.Key("pid"); w.Int64(r.pid);
    w.Key("created"); w.Int64(r.created_ms);
    w.Key("lastUsed"); w.Int64(r.last_used_ms);
  });
}

std::string render_driver_list(const std::vector<std::string>& rendered) {
  return render_list("", 0, "total", static_cast<int64_t>(rendered.size()), "drivers", rendered, false);
}

Result<session::JobRequest> parse_start_job(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.error();
  session::JobRequest request;
  bool has_class = false;
  for (const auto& member : doc->GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (key == "className") {
      if (!v.IsString() || v.GetStringLength() == 0) {
        return bad_request(type_error("className", "a non-empty string"));
      }
      request.class_name.assign(v.GetString(), v.GetStringLength());
      has_class = true;
    } else if (key == "jar") {
      auto jar = optional_string(v, key);
      if (!jar) return jar.error();
      request.jar = std::move(*jar);
    } else if (key == "args") {
      auto args = string_list(v, key);
      if (!args) return args.error();
      request.args = std::move(*args);
    } else if (key == "conf") {
      auto conf = conf_map(v);
      if (!conf) return conf.error();
      request.conf = std::move(*conf);
    } else {
      return bad_request("Unrecognized field \"" + std::string(key) + "\" in the job request");
    }
  }
  if (!has_class) return bad_request("field 'className' is required");
  return request;
}

std::string render_job(const session::JobRecord& j) {
  return json_object([&](Writer& w) {
    w.Key("id"); w.Int64(j.id);
    w.Key("sessionId"); w.Int64(j.session_id);
    w.Key("className"); write_string(w, j.class_name);
    w.Key("jar"); write_optional(w, j.jar);
    w.Key("args"); write_list(w, j.args);
    w.Key("conf"); write_map(w, j.conf);
    w.Key("state"); write_string(w, session::to_string(j.state));
    w.Key("progress"); w.Double(j.progress);
    w.Key("created"); w.Int64(j.created_ms);
    w.Key("started"); w.Int64(j.started_ms);
    w.Key("completed"); w.Int64(j.completed_ms);
    w.Key("result");
    if (j.result_json) {
      w.RawValue(j.result_json->data(), j.result_json->size(), rapidjson::kObjectType);
    } else {
      w.Null();
    }
    w.Key("error"); write_optional(w, j.error);
    w.Key("traceback"); write_list(w, j.traceback);
  });
}

std::string render_job_list(int64_t total, const std::vector<std::string>& rendered) {
  return render_list("", 0, "total", total, "jobs", rendered, false);
}

}  // namespace hearth::server
