#include "hearth/server/api.hpp"

#include <algorithm>
#include <charconv>
#include <functional>
#include <iostream>

#include "hearth/server/livy_json.hpp"
#include "openapi_json.hpp"

namespace hearth::server {
namespace {

using session::SessionManager;

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) segments.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

Result<int64_t> parse_integer(std::string_view text, std::string_view what) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return make_error("bad_request", "For input string: \"" + std::string(text) + "\" (" +
                                         std::string(what) + ")");
  }
  return value;
}

Result<int64_t> query_int(const ApiRequest& request, const std::string& name, int64_t fallback) {
  auto value = request.query.find(name);
  if (value == request.query.end()) return fallback;
  return parse_integer(value->second, name);
}

// Applies Livy's from/size paging to `total` items: returns [begin, end).
std::pair<int64_t, int64_t> page(int64_t total, int64_t from, int64_t size) {
  int64_t begin = std::clamp<int64_t>(from, 0, total);
  int64_t end = size < 0 ? total : std::min<int64_t>(total, begin + size);
  return {begin, end};
}

Result<int64_t> id_param(const std::string& text, const Error& not_found) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return not_found;
  return value;
}

ApiResponse json(int status, std::string body) { return ApiResponse{status, std::move(body), std::nullopt}; }
ApiResponse ok(std::string body) { return json(200, std::move(body)); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding of one query component ('+' is a space).
std::string decode_component(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

int Api::status_for(const std::string& code) {
  if (code == "bad_request" || code == "session_not_active" || code == "artifact_failed") return 400;
  if (code == "not_found" || code == "statement_not_found") return 404;
  if (code == "forbidden") return 403;
  if (code == "conflict") return 409;
  if (code == "too_large") return 413;
  if (code == "not_implemented") return 501;
  if (code == "store_unavailable") return 503;
  if (code == "driver_timeout") return 504;  // the driver (the upstream) did not answer in time
  return 500;
}

ApiResponse Api::error_response(const Error& error) {
  int status = status_for(error.code);
  if (status == 500) {
    std::cerr << "[hearth] API: internal error " << error.code << ": " << error.message << "\n";
    return json(500, render_message("internal error; see the server log"));
  }
  return json(status, render_message(error.message));
}

std::optional<std::string> Api::upload_field(std::string_view path) {
  auto segments = split_path(path);
  if (segments.size() != 3 || segments[0] != "sessions") return std::nullopt;
  if (segments[2] == "upload-jar") return "jar";
  if (segments[2] == "upload-pyfile" || segments[2] == "upload-file") return "file";
  return std::nullopt;
}

std::pair<std::string, std::map<std::string, std::string>> Api::split_target(std::string_view target) {
  auto question = target.find('?');
  std::string path(target.substr(0, question));
  std::map<std::string, std::string> query;
  if (question == std::string_view::npos) return {path, query};
  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = decode_component(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string() : decode_component(pair.substr(eq + 1));
    query.emplace(std::move(key), std::move(value));  // the first of a repeated key counts
  }
  return {path, query};
}

std::vector<Api::RouteName> Api::routes() const {
  std::vector<RouteName> names;
  for (const auto& route : routes_) names.push_back({route.method, route.pattern});
  return names;
}

ApiResponse Api::handle(const ApiRequest& request) {
  // Like REST's router: a path with another method is as unknown as a path that does not exist.
  auto segments = split_path(request.path);
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    Params params;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      if (route.segments[i].starts_with(':')) {
        params[route.segments[i]] = segments[i];
      } else {
        match = route.segments[i] == segments[i];
      }
    }
    if (!match || route.method != request.method) continue;
    return dispatch(route, params, request);
  }
  return json(404, render_message("no such resource: " + request.path));
}

ApiResponse Api::dispatch(const Route& route, const Params& params, const ApiRequest& request) {
  try {
    return route.handler(params, request);
  } catch (const std::exception& e) {
    std::cerr << "[hearth] API: unexpected exception in " << route.method << " " << route.pattern
              << ": " << e.what() << "\n";
    return json(500, render_message("internal error; see the server log"));
  }
}

Api::Api(SessionManager& sessions, ApiOptions options)
    : sessions_(sessions), options_(std::move(options)) {
  auto add = [this](std::string method, std::string pattern,
                    std::function<ApiResponse(const Params&, const ApiRequest&)> handler) {
    auto segments = split_path(pattern);
    routes_.push_back({std::move(method), std::move(pattern), std::move(segments), std::move(handler)});
  };

  // `:id` is a session id when it is all digits, else a session name (as in Livy). Every
  // request about a session counts for its heartbeat timeout.
  auto session_id = [this](const Params& params) -> Result<int64_t> {
    const auto& text = params.at(":id");
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
      auto named = sessions_.find_session_by_name(text);
      if (!named) return named.error();
      value = named->id;
    }
    sessions_.touch(value, SessionManager::Touch::kRequest);
    return value;
  };
  auto statement_id = [](const Params& params) {
    return id_param(params.at(":sid"), make_error("statement_not_found", "Statement not found"));
  };
  auto job_id = [](const Params& params) {
    const auto& text = params.at(":jobid");
    return id_param(text, make_error("not_found", "Job '" + text + "' not found."));
  };
  auto log_tail = [this](int64_t id, std::size_t n) {
    auto lines = sessions_.session_log(id);
    if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
    return lines;
  };
  auto not_implemented = [](const Params&, const ApiRequest& request) {
    return error_response(make_error("not_implemented",
                                     request.path + " is not supported by this Hearth version yet"));
  };

  add("GET", "/version", [this](const Params&, const ApiRequest&) {
    return ok(render_version(options_.version));
  });
  add("GET", "/openapi.json", [](const Params&, const ApiRequest&) { return ok(kOpenApiJson); });

  add("GET", "/sessions", [this, log_tail](const Params&, const ApiRequest& request) {
    auto from = query_int(request, "from", 0);
    if (!from) return error_response(from.error());
    auto size = query_int(request, "size", 100);
    if (!size) return error_response(size.error());
    auto all = sessions_.list_sessions();
    if (!all) return error_response(all.error());
    auto total = static_cast<int64_t>(all->size());
    auto [begin, end] = page(total, *from, *size);
    std::vector<std::string> rendered;
    for (int64_t i = begin; i < end; ++i) {
      const auto& s = (*all)[static_cast<std::size_t>(i)];
      rendered.push_back(render_session(s, log_tail(s.id, 10)));
    }
    return ok(render_session_list(*from, total, rendered));
  });

  add("POST", "/sessions", [this, log_tail](const Params&, const ApiRequest& request) {
    auto parsed = parse_create_session(request.body);
    if (!parsed) return error_response(parsed.error());
    auto created = sessions_.create_session(std::move(*parsed), std::nullopt);
    if (!created) return error_response(created.error());
    auto response = json(201, render_session(*created, log_tail(created->id, 10)));
    response.location = "/sessions/" + std::to_string(created->id);
    return response;
  });

  add("GET", "/sessions/:id", [this, session_id, log_tail](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto session = sessions_.get_session(*id);
    if (!session) return error_response(session.error());
    return ok(render_session(*session, log_tail(*id, 10)));
  });

  add("GET", "/sessions/:id/state", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto session = sessions_.get_session(*id);
    if (!session) return error_response(session.error());
    return ok(render_state(*id, session::to_string(session->state)));
  });

  add("GET", "/sessions/:id/log", [this, session_id](const Params& params, const ApiRequest& request) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto session = sessions_.get_session(*id);
    if (!session) return error_response(session.error());
    auto lines = sessions_.session_log(*id);
    auto total = static_cast<int64_t>(lines.size());
    auto size = query_int(request, "size", 100);
    if (!size) return error_response(size.error());
    // Livy: without `from`, the last `size` lines.
    auto from = query_int(request, "from", *size < 0 ? 0 : std::max<int64_t>(0, total - *size));
    if (!from) return error_response(from.error());
    auto [begin, end] = page(total, *from, *size);
    std::vector<std::string> slice(lines.begin() + begin, lines.begin() + end);
    return ok(render_log(*id, *from, total, slice));
  });

  add("DELETE", "/sessions/:id", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto deleted = sessions_.delete_session(*id);
    if (!deleted) return error_response(deleted.error());
    return ok(render_message("deleted"));
  });

  add("GET", "/sessions/:id/statements", [this, session_id](const Params& params, const ApiRequest& request) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto from = query_int(request, "from", 0);
    if (!from) return error_response(from.error());
    auto size = query_int(request, "size", -1);
    if (!size) return error_response(size.error());
    auto order_it = request.query.find("order");
    std::string order = order_it == request.query.end() ? "asc" : order_it->second;
    if (order != "asc" && order != "desc") {
      return error_response(make_error("bad_request", "order must be asc or desc"));
    }
    auto statements = sessions_.list_statements(*id);
    if (!statements) return error_response(statements.error());
    if (order == "desc") std::reverse(statements->begin(), statements->end());
    auto total = static_cast<int64_t>(statements->size());
    auto [begin, end] = page(total, *from, *size);
    std::vector<std::string> rendered;
    for (int64_t i = begin; i < end; ++i) {
      rendered.push_back(render_statement((*statements)[static_cast<std::size_t>(i)]));
    }
    return ok(render_statement_list(total, rendered));
  });

  add("POST", "/sessions/:id/statements", [this, session_id](const Params& params, const ApiRequest& request) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto session = sessions_.get_session(*id);
    if (!session) return error_response(session.error());
    auto parsed = parse_create_statement(request.body);
    if (!parsed) return error_response(parsed.error());
    std::string kind;
    if (parsed->kind) {
      kind = *parsed->kind;
    } else if (session->request.kind == "shared") {
      return error_response(make_error("bad_request", "Code type should be specified if session kind is shared"));
    } else {
      kind = session->request.kind;
    }
    auto statement = sessions_.submit_statement(*id, std::move(parsed->code), std::move(kind));
    if (!statement) return error_response(statement.error());
    auto response = json(201, render_statement(*statement));
    response.location = "/sessions/" + std::to_string(*id) + "/statements/" + std::to_string(statement->id);
    return response;
  });

  add("GET", "/sessions/:id/statements/:sid", [this, session_id, statement_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto sid = statement_id(params);
    if (!sid) return error_response(sid.error());
    auto statement = sessions_.get_statement(*id, *sid);
    if (!statement) return error_response(statement.error());
    return ok(render_statement(*statement));
  });

  add("POST", "/sessions/:id/statements/:sid/cancel", [this, session_id, statement_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto sid = statement_id(params);
    if (!sid) return error_response(sid.error());
    auto cancelled = sessions_.cancel_statement(*id, *sid);
    if (!cancelled) return error_response(cancelled.error());
    return ok(render_message("canceled"));
  });

  add("POST", "/sessions/:id/completion", [this, session_id](const Params& params, const ApiRequest& request) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto parsed = parse_completion(request.body);
    if (!parsed) return error_response(parsed.error());
    auto candidates = sessions_.complete(*id, parsed->kind, parsed->code, parsed->cursor);
    if (!candidates) return error_response(candidates.error());
    return ok(render_candidates(*candidates));
  });

  add("POST", "/sessions/:id/stop", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto stopped = sessions_.stop_session(*id);
    if (!stopped) return error_response(stopped.error());
    return json(204, "");
  });

  // Livy's legacy interrupt stops the session.
  add("POST", "/sessions/:id/interrupt", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto stopped = sessions_.stop_session(*id);
    if (!stopped) return error_response(stopped.error());
    return ok(render_message("interrupted"));
  });

  add("POST", "/sessions/:id/connect", [this, session_id, log_tail](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    sessions_.touch(*id, SessionManager::Touch::kActivity);
    auto session = sessions_.get_session(*id);
    if (!session) return error_response(session.error());
    return ok(render_session(*session, log_tail(*id, 10)));
  });

  // Artifacts: uploads are stored by the server; add-* take a URI.
  for (auto [name, kind, missing] : {std::tuple{"upload-jar", "jar", "No jar sent!"},
                                     std::tuple{"upload-pyfile", "pyfile", "No file sent!"},
                                     std::tuple{"upload-file", "file", "No file sent!"}}) {
    add("POST", std::string("/sessions/:id/") + name,
        [this, session_id, kind = std::string(kind), missing = std::string(missing)](
            const Params& params, const ApiRequest& request) {
          auto id = session_id(params);
          if (!id) return error_response(id.error());
          if (request.file_error) return error_response(*request.file_error);
          if (!request.file) return error_response(make_error("bad_request", missing));
          auto uri = sessions_.store_upload(*id, request.file->filename, request.file->data);
          if (!uri) return error_response(uri.error());
          auto added = sessions_.add_artifact(*id, kind, *uri);
          if (!added) return error_response(added.error());
          return ok("");
        });
  }
  for (auto [name, kind] : {std::pair{"add-jar", "jar"}, std::pair{"add-pyfile", "pyfile"},
                            std::pair{"add-file", "file"}}) {
    add("POST", std::string("/sessions/:id/") + name,
        [this, session_id, kind = std::string(kind)](const Params& params, const ApiRequest& request) {
          auto id = session_id(params);
          if (!id) return error_response(id.error());
          auto uri = parse_add_artifact(request.body);
          if (!uri) return error_response(uri.error());
          auto allowed = check_artifact_uri(*uri, options_.local_dir_whitelist);
          if (!allowed) return error_response(allowed.error());
          auto added = sessions_.add_artifact(*id, kind, *allowed);
          if (!added) return error_response(added.error());
          return ok("");
        });
  }

  // Livy endpoints Hearth does not serve yet answer a clear error rather than a bare 404.
  for (const char* path : {"/sessions/:id/submit-job", "/sessions/:id/run-job", "/batches"}) {
    add("POST", path, not_implemented);
  }
  for (const char* path : {"/batches", "/batches/:id", "/batches/:id/state", "/batches/:id/log"}) {
    add("GET", path, not_implemented);
  }
  add("DELETE", "/batches/:id", not_implemented);

  // Hearth: drivers.
  add("GET", "/drivers", [this](const Params&, const ApiRequest&) {
    std::vector<std::string> rendered;
    for (const auto& driver : sessions_.list_drivers()) rendered.push_back(render_driver(driver));
    return ok(render_driver_list(rendered));
  });
  add("GET", "/drivers/:driver", [this](const Params& params, const ApiRequest&) {
    auto driver = sessions_.get_driver(params.at(":driver"));
    if (!driver) return error_response(driver.error());
    return ok(render_driver(*driver));
  });
  add("DELETE", "/drivers/:driver", [this](const Params& params, const ApiRequest&) {
    auto deleted = sessions_.delete_driver(params.at(":driver"));
    if (!deleted) return error_response(deleted.error());
    return ok(render_message("deleted"));
  });
  add("GET", "/sessions/:id/driver", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto driver = sessions_.session_driver(*id);
    if (!driver) return error_response(driver.error());
    return ok(render_driver(*driver));
  });
  add("DELETE", "/sessions/:id/driver", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto driver = sessions_.session_driver(*id);
    if (!driver) return error_response(driver.error());
    auto deleted = sessions_.delete_driver(driver->record.id);
    if (!deleted) return error_response(deleted.error());
    return ok(render_message("deleted"));
  });

  // Hearth: jobs (classes from jars run in the session's driver).
  add("POST", "/sessions/:id/jobs", [this, session_id](const Params& params, const ApiRequest& request) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto parsed = parse_start_job(request.body);
    if (!parsed) return error_response(parsed.error());
    if (parsed->jar) {
      auto allowed = check_artifact_uri(*parsed->jar, options_.local_dir_whitelist);
      if (!allowed) return error_response(allowed.error());
      parsed->jar = *allowed;
    }
    auto job = sessions_.start_job(*id, std::move(*parsed));
    if (!job) return error_response(job.error());
    auto response = json(201, render_job(*job));
    response.location = "/sessions/" + std::to_string(*id) + "/jobs/" + std::to_string(job->id);
    return response;
  });
  add("GET", "/sessions/:id/jobs", [this, session_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto jobs = sessions_.list_jobs(*id);
    if (!jobs) return error_response(jobs.error());
    std::vector<std::string> rendered;
    for (const auto& job : *jobs) rendered.push_back(render_job(job));
    return ok(render_job_list(static_cast<int64_t>(rendered.size()), rendered));
  });
  add("GET", "/sessions/:id/jobs/:jobid", [this, session_id, job_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto jid = job_id(params);
    if (!jid) return error_response(jid.error());
    auto job = sessions_.get_job(*id, *jid);
    if (!job) return error_response(job.error());
    return ok(render_job(*job));
  });
  add("POST", "/sessions/:id/jobs/:jobid/cancel", [this, session_id, job_id](const Params& params, const ApiRequest&) {
    auto id = session_id(params);
    if (!id) return error_response(id.error());
    auto jid = job_id(params);
    if (!jid) return error_response(jid.error());
    auto job = sessions_.cancel_job(*id, *jid);
    if (!job) return error_response(job.error());
    return ok(render_job(*job));
  });
}

}  // namespace hearth::server
