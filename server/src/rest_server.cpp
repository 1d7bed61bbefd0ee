#include "hearth/server/rest_server.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/router.h>

#include <charconv>
#include <iostream>

#include "hearth/server/livy_json.hpp"
#include "hearth/server/multipart.hpp"
#include "openapi_json.hpp"
#include "statement_waits.hpp"

namespace hearth::server {
namespace {

using Pistache::Http::Code;
using Pistache::Http::ResponseWriter;
using Pistache::Rest::Request;
using Pistache::Rest::Route;

// The REST boundary's one error table: expected failure codes to HTTP statuses.
Code status_for(const std::string& code) {
  if (code == "bad_request" || code == "session_not_active") return Code::Bad_Request;
  if (code == "not_found" || code == "statement_not_found") return Code::Not_Found;
  if (code == "forbidden") return Code::Forbidden;
  if (code == "conflict") return Code::Conflict;
  if (code == "not_implemented") return Code::Not_Implemented;
  if (code == "artifact_failed") return Code::Bad_Request;
  if (code == "too_large") return Code::Request_Entity_Too_Large;
  if (code == "store_unavailable") return Code::Service_Unavailable;
  return Code::Internal_Server_Error;
}

void send_json(ResponseWriter& response, Code code, const std::string& body) {
  response.send(code, body, MIME(Application, Json));
}

void send_error(ResponseWriter& response, const Error& error) {
  Code code = status_for(error.code);
  if (code == Code::Internal_Server_Error) {
    std::cerr << "[hearth] REST: internal error " << error.code << ": " << error.message << "\n";
    send_json(response, code, render_message("internal error; see the server log"));
    return;
  }
  send_json(response, code, render_message(error.message));
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

// `:id` is a session id when it is all digits, else a session name (as in Livy).
Result<int64_t> session_id_of(session::SessionManager& sessions, const Request& request) {
  auto text = request.param(":id").as<std::string>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    auto named = sessions.find_session_by_name(text);
    if (!named) return named.error();
    value = named->id;
  }
  // Every request about a session counts for its heartbeat timeout.
  sessions.touch(value, session::SessionManager::Touch::kRequest);
  return value;
}

Result<int64_t> statement_id_of(const Request& request) {
  auto text = request.param(":sid").as<std::string>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return make_error("statement_not_found", "Statement not found");
  }
  return value;
}

Result<int64_t> job_id_of(const Request& request) {
  auto text = request.param(":jobid").as<std::string>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return make_error("not_found", "Job '" + text + "' not found.");
  }
  return value;
}

void not_implemented(const Request& request, ResponseWriter& response) {
  send_error(response, make_error("not_implemented", request.resource() +
                                                         " is not supported by this Hearth version yet"));
}

Result<std::vector<FormPart>> form_parts(const Request& request) {
  auto type = request.headers().tryGet<Pistache::Http::Header::ContentType>();
  std::optional<std::string> boundary;
  if (type) boundary = type->mime().getParam("boundary");
  if (!boundary) {
    return make_error("bad_request", "expected a multipart/form-data body with a boundary");
  }
  return parse_multipart(request.body(), *boundary);
}

Result<int64_t> query_int(const Request& request, const std::string& name, int64_t fallback) {
  auto value = request.query().get(name);
  if (!value) return fallback;
  return parse_integer(*value, name);
}

// Applies Livy's from/size paging to `total` items: returns [begin, end).
std::pair<int64_t, int64_t> page(int64_t total, int64_t from, int64_t size) {
  int64_t begin = std::clamp<int64_t>(from, 0, total);
  int64_t end = size < 0 ? total : std::min<int64_t>(total, begin + size);
  return {begin, end};
}

}  // namespace

// The longest a long-poll (?wait=) parks a request.
constexpr std::chrono::milliseconds kMaxStatementWait{60'000};
constexpr std::size_t kMaxParkedRequests = 10'000;

struct RestServer::Impl {
  Impl(session::SessionManager& s, RestOptions o)
      : sessions(s),
        options(std::move(o)),
        waits([&s](int64_t id, int64_t sid) { return s.get_statement(id, sid); },
              [](ResponseWriter& response, const Result<session::StatementRecord>& statement) {
                if (!statement) return send_error(response, statement.error());
                send_json(response, Code::Ok, render_statement(*statement));
              },
              kMaxParkedRequests) {}

  session::SessionManager& sessions;
  RestOptions options;
  StatementWaits waits;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint;
  Pistache::Rest::Router router;
  bool running = false;

  std::vector<std::string> log_tail(int64_t id, std::size_t n) {
    auto lines = sessions.session_log(id);
    if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
    return lines;
  }

  // Wraps a handler: the CSRF check (when enabled), and an escaped exception becomes a 500
  // instead of a dropped connection.
  template <typename F>
  Route::Handler guard(F f) {
    return [this, f = std::move(f)](const Request& request, ResponseWriter response) {
      using Pistache::Http::Method;
      const Method method = request.method();
      if (options.csrf_protection && method != Method::Get && method != Method::Head &&
          method != Method::Options && !request.headers().tryGetRaw("X-Requested-By")) {
        send_json(response, Code::Bad_Request,
                  render_message("Missing Required Header for CSRF protection."));
        return Route::Result::Ok;
      }
      try {
        f(request, response);
      } catch (const std::exception& e) {
        std::cerr << "[hearth] REST: unexpected exception: " << e.what() << "\n";
        send_json(response, Code::Internal_Server_Error, render_message("internal error; see the server log"));
      }
      return Route::Result::Ok;
    };
  }

  // POST upload-*: the multipart field `field` is stored and added to the session as `kind`.
  Route::Handler upload(std::string field, std::string kind, std::string missing) {
    return guard([this, field, kind, missing](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto parts = form_parts(request);
      if (!parts) return send_error(response, parts.error());
      auto part = std::find_if(parts->begin(), parts->end(),
                               [&](const FormPart& p) { return p.name == field; });
      if (part == parts->end()) return send_error(response, make_error("bad_request", missing));
      auto uri = sessions.store_upload(*id, part->filename.value_or(field), part->data);
      if (!uri) return send_error(response, uri.error());
      auto added = sessions.add_artifact(*id, kind, *uri);
      if (!added) return send_error(response, added.error());
      response.send(Code::Ok);
    });
  }

  // POST add-*: {"uri": …} added to the session as `kind`.
  Route::Handler add(std::string kind) {
    return guard([this, kind](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto uri = parse_add_artifact(request.body());
      if (!uri) return send_error(response, uri.error());
      auto allowed = check_artifact_uri(*uri, options.local_dir_whitelist);
      if (!allowed) return send_error(response, allowed.error());
      auto added = sessions.add_artifact(*id, kind, *allowed);
      if (!added) return send_error(response, added.error());
      response.send(Code::Ok);
    });
  }

  void routes() {
    using Pistache::Rest::Routes::Delete;
    using Pistache::Rest::Routes::Get;
    using Pistache::Rest::Routes::Post;

    Get(router, "/version", guard([this](const Request&, ResponseWriter& response) {
      send_json(response, Code::Ok, render_version(options.version));
    }));

    Get(router, "/openapi.json", guard([](const Request&, ResponseWriter& response) {
      send_json(response, Code::Ok, kOpenApiJson);
    }));

    Get(router, "/sessions", guard([this](const Request& request, ResponseWriter& response) {
      auto from = query_int(request, "from", 0);
      if (!from) return send_error(response, from.error());
      auto size = query_int(request, "size", 100);
      if (!size) return send_error(response, size.error());
      auto all = sessions.list_sessions();
      if (!all) return send_error(response, all.error());
      auto total = static_cast<int64_t>(all->size());
      auto [begin, end] = page(total, *from, *size);
      std::vector<std::string> rendered;
      for (int64_t i = begin; i < end; ++i) {
        const auto& s = (*all)[static_cast<std::size_t>(i)];
        rendered.push_back(render_session(s, log_tail(s.id, 10)));
      }
      send_json(response, Code::Ok, render_session_list(*from, total, rendered));
    }));

    Post(router, "/sessions", guard([this](const Request& request, ResponseWriter& response) {
      auto parsed = parse_create_session(request.body());
      if (!parsed) return send_error(response, parsed.error());
      auto created = sessions.create_session(std::move(*parsed), std::nullopt);
      if (!created) return send_error(response, created.error());
      response.headers().add<Pistache::Http::Header::Location>("/sessions/" + std::to_string(created->id));
      send_json(response, Code::Created, render_session(*created, log_tail(created->id, 10)));
    }));

    Get(router, "/sessions/:id", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto session = sessions.get_session(*id);
      if (!session) return send_error(response, session.error());
      send_json(response, Code::Ok, render_session(*session, log_tail(*id, 10)));
    }));

    Get(router, "/sessions/:id/state", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto session = sessions.get_session(*id);
      if (!session) return send_error(response, session.error());
      send_json(response, Code::Ok, render_state(*id, session::to_string(session->state)));
    }));

    Get(router, "/sessions/:id/log", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto session = sessions.get_session(*id);
      if (!session) return send_error(response, session.error());
      auto lines = sessions.session_log(*id);
      auto total = static_cast<int64_t>(lines.size());
      auto size = query_int(request, "size", 100);
      if (!size) return send_error(response, size.error());
      // Livy: without `from`, the last `size` lines.
      auto from = query_int(request, "from", *size < 0 ? 0 : std::max<int64_t>(0, total - *size));
      if (!from) return send_error(response, from.error());
      auto [begin, end] = page(total, *from, *size);
      std::vector<std::string> slice(lines.begin() + begin, lines.begin() + end);
      send_json(response, Code::Ok, render_log(*id, *from, total, slice));
    }));

    Delete(router, "/sessions/:id", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto deleted = sessions.delete_session(*id);
      if (!deleted) return send_error(response, deleted.error());
      send_json(response, Code::Ok, render_message("deleted"));
    }));

    Get(router, "/sessions/:id/statements", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto from = query_int(request, "from", 0);
      if (!from) return send_error(response, from.error());
      auto size = query_int(request, "size", -1);
      if (!size) return send_error(response, size.error());
      auto order = request.query().get("order").value_or("asc");
      if (order != "asc" && order != "desc") {
        return send_error(response, make_error("bad_request", "order must be asc or desc"));
      }
      auto statements = sessions.list_statements(*id);
      if (!statements) return send_error(response, statements.error());
      if (order == "desc") std::reverse(statements->begin(), statements->end());
      auto total = static_cast<int64_t>(statements->size());
      auto [begin, end] = page(total, *from, *size);
      std::vector<std::string> rendered;
      for (int64_t i = begin; i < end; ++i) {
        rendered.push_back(render_statement((*statements)[static_cast<std::size_t>(i)]));
      }
      send_json(response, Code::Ok, render_statement_list(total, rendered));
    }));

    Post(router, "/sessions/:id/statements/:sid/cancel", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto sid = statement_id_of(request);
      if (!sid) return send_error(response, sid.error());
      auto cancelled = sessions.cancel_statement(*id, *sid);
      if (!cancelled) return send_error(response, cancelled.error());
      send_json(response, Code::Ok, render_message("canceled"));
    }));

    Post(router, "/sessions/:id/completion", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto parsed = parse_completion(request.body());
      if (!parsed) return send_error(response, parsed.error());
      auto candidates = sessions.complete(*id, parsed->kind, parsed->code, parsed->cursor);
      if (!candidates) return send_error(response, candidates.error());
      send_json(response, Code::Ok, render_candidates(*candidates));
    }));

    Post(router, "/sessions/:id/stop", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto stopped = sessions.stop_session(*id);
      if (!stopped) return send_error(response, stopped.error());
      response.send(Code::No_Content);
    }));

    // Livy's legacy interrupt stops the session.
    Post(router, "/sessions/:id/interrupt", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto stopped = sessions.stop_session(*id);
      if (!stopped) return send_error(response, stopped.error());
      send_json(response, Code::Ok, render_message("interrupted"));
    }));

    Post(router, "/sessions/:id/connect", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      sessions.touch(*id, session::SessionManager::Touch::kActivity);
      auto session = sessions.get_session(*id);
      if (!session) return send_error(response, session.error());
      send_json(response, Code::Ok, render_session(*session, log_tail(*id, 10)));
    }));

    // Livy endpoints Hearth does not serve yet answer a clear error rather than a bare 404.
    // Artifacts: uploads (multipart) are stored by the server; add-* take a URI.
    Post(router, "/sessions/:id/upload-jar", upload("jar", "jar", "No jar sent!"));
    Post(router, "/sessions/:id/upload-pyfile", upload("file", "pyfile", "No file sent!"));
    Post(router, "/sessions/:id/upload-file", upload("file", "file", "No file sent!"));
    Post(router, "/sessions/:id/add-jar", add("jar"));
    Post(router, "/sessions/:id/add-pyfile", add("pyfile"));
    Post(router, "/sessions/:id/add-file", add("file"));

    for (const char* path : {"/sessions/:id/submit-job", "/sessions/:id/run-job", "/batches"}) {
      Post(router, path, guard(not_implemented));
    }
    for (const char* path : {"/batches", "/batches/:id", "/batches/:id/state", "/batches/:id/log"}) {
      Get(router, path, guard(not_implemented));
    }
    Delete(router, "/batches/:id", guard(not_implemented));

    Post(router, "/sessions/:id/statements", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto session = sessions.get_session(*id);
      if (!session) return send_error(response, session.error());
      auto parsed = parse_create_statement(request.body());
      if (!parsed) return send_error(response, parsed.error());
      std::string kind;
      if (parsed->kind) {
        kind = *parsed->kind;
      } else if (session->request.kind == "shared") {
        return send_error(response, make_error("bad_request",
                                               "Code type should be specified if session kind is shared"));
      } else {
        kind = session->request.kind;
      }
      auto statement = sessions.submit_statement(*id, std::move(parsed->code), std::move(kind));
      if (!statement) return send_error(response, statement.error());
      response.headers().add<Pistache::Http::Header::Location>(
          "/sessions/" + std::to_string(*id) + "/statements/" + std::to_string(statement->id));
      send_json(response, Code::Created, render_statement(*statement));
    }));

    Get(router, "/sessions/:id/statements/:sid", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto sid = statement_id_of(request);
      if (!sid) return send_error(response, sid.error());
      auto wait = query_int(request, "wait", 0);
      if (!wait) return send_error(response, wait.error());
      auto statement = sessions.get_statement(*id, *sid);
      if (!statement) return send_error(response, statement.error());
      if (*wait > 0 && !StatementWaits::done(*statement)) {
        // Hearth's long-poll: answered when the statement leaves waiting/running.
        auto deadline = std::chrono::steady_clock::now() +
                        std::min(std::chrono::milliseconds(*wait), kMaxStatementWait);
        waits.park(*id, *sid, deadline, std::move(response));
        return;
      }
      send_json(response, Code::Ok, render_statement(*statement));
    }));

    // Hearth: drivers.
    Get(router, "/drivers", guard([this](const Request&, ResponseWriter& response) {
      std::vector<std::string> rendered;
      for (const auto& driver : sessions.list_drivers()) rendered.push_back(render_driver(driver));
      send_json(response, Code::Ok, render_driver_list(rendered));
    }));

    Get(router, "/drivers/:driver", guard([this](const Request& request, ResponseWriter& response) {
      auto driver = sessions.get_driver(request.param(":driver").as<std::string>());
      if (!driver) return send_error(response, driver.error());
      send_json(response, Code::Ok, render_driver(*driver));
    }));

    Delete(router, "/drivers/:driver", guard([this](const Request& request, ResponseWriter& response) {
      auto deleted = sessions.delete_driver(request.param(":driver").as<std::string>());
      if (!deleted) return send_error(response, deleted.error());
      send_json(response, Code::Ok, render_message("deleted"));
    }));

    Get(router, "/sessions/:id/driver", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto driver = sessions.session_driver(*id);
      if (!driver) return send_error(response, driver.error());
      send_json(response, Code::Ok, render_driver(*driver));
    }));

    Delete(router, "/sessions/:id/driver", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto driver = sessions.session_driver(*id);
      if (!driver) return send_error(response, driver.error());
      auto deleted = sessions.delete_driver(driver->record.id);
      if (!deleted) return send_error(response, deleted.error());
      send_json(response, Code::Ok, render_message("deleted"));
    }));

    // Hearth: jobs (classes from jars run in the session's driver).
    Post(router, "/sessions/:id/jobs", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto parsed = parse_start_job(request.body());
      if (!parsed) return send_error(response, parsed.error());
      if (parsed->jar) {
        auto allowed = check_artifact_uri(*parsed->jar, options.local_dir_whitelist);
        if (!allowed) return send_error(response, allowed.error());
        parsed->jar = *allowed;
      }
      auto job = sessions.start_job(*id, std::move(*parsed));
      if (!job) return send_error(response, job.error());
      response.headers().add<Pistache::Http::Header::Location>(
          "/sessions/" + std::to_string(*id) + "/jobs/" + std::to_string(job->id));
      send_json(response, Code::Created, render_job(*job));
    }));

    Get(router, "/sessions/:id/jobs", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto jobs = sessions.list_jobs(*id);
      if (!jobs) return send_error(response, jobs.error());
      std::vector<std::string> rendered;
      for (const auto& job : *jobs) rendered.push_back(render_job(job));
      send_json(response, Code::Ok, render_job_list(static_cast<int64_t>(rendered.size()), rendered));
    }));

    Get(router, "/sessions/:id/jobs/:jobid", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto job_id = job_id_of(request);
      if (!job_id) return send_error(response, job_id.error());
      auto job = sessions.get_job(*id, *job_id);
      if (!job) return send_error(response, job.error());
      send_json(response, Code::Ok, render_job(*job));
    }));

    Post(router, "/sessions/:id/jobs/:jobid/cancel", guard([this](const Request& request, ResponseWriter& response) {
      auto id = session_id_of(sessions, request);
      if (!id) return send_error(response, id.error());
      auto job_id = job_id_of(request);
      if (!job_id) return send_error(response, job_id.error());
      auto job = sessions.cancel_job(*id, *job_id);
      if (!job) return send_error(response, job.error());
      send_json(response, Code::Ok, render_job(*job));
    }));

    router.addNotFoundHandler(guard([](const Request& request, ResponseWriter& response) {
      send_json(response, Code::Not_Found,
                render_message("no such resource: " + request.resource()));
    }));
  }
};

RestServer::RestServer(session::SessionManager& sessions, RestOptions options)
    : impl_(std::make_unique<Impl>(sessions, std::move(options))) {
  sessions.set_statement_observer(
      [impl = impl_.get()](int64_t id, int64_t sid) { impl->waits.notify(id, sid); });
}

RestServer::~RestServer() { stop(); }

Result<void> RestServer::start() {
  try {
    Pistache::Address address(impl_->options.host, Pistache::Port(impl_->options.port));
    impl_->endpoint = std::make_unique<Pistache::Http::Endpoint>(address);
    auto opts = Pistache::Http::Endpoint::options()
                    .threads(impl_->options.threads)
                    .flags(Pistache::Tcp::Options::ReuseAddr)
                    .maxRequestSize(impl_->options.max_request_bytes);
    impl_->endpoint->init(opts);
    impl_->routes();
    impl_->endpoint->setHandler(impl_->router.handler());
    impl_->endpoint->serveThreaded();
    impl_->running = true;
  } catch (const std::exception& e) {
    return make_error("bind_failed", "REST cannot listen on " + impl_->options.host + ":" +
                                         std::to_string(impl_->options.port) + ": " + e.what());
  }
  return Ok{};
}

uint16_t RestServer::port() const { return static_cast<uint16_t>(impl_->endpoint->getPort()); }

void RestServer::stop() {
  // Parked long-polls are answered while their connections can still be written.
  impl_->waits.stop();
  if (!impl_->running) return;
  impl_->running = false;
  impl_->endpoint->shutdown();
}

}  // namespace hearth::server
