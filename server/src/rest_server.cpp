#include "hearth/server/rest_server.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/router.h>

#include <charconv>
#include <memory>
#include <iostream>

#include "hearth/server/livy_json.hpp"
#include "hearth/server/multipart.hpp"
#include "hearth/server/api.hpp"
#include "hearth/server/statement_waits.hpp"
#include "hearth/session/port_holder.hpp"

namespace hearth::server {
namespace {

using Pistache::Http::Code;
using Pistache::Http::ResponseWriter;
using Pistache::Rest::Request;
using Pistache::Rest::Route;

void send_json(ResponseWriter& response, Code code, const std::string& body) {
  response.send(code, body, MIME(Application, Json));
}

void send(ResponseWriter& response, const ApiResponse& answer) {
  if (answer.location) response.headers().add<Pistache::Http::Header::Location>(*answer.location);
  auto code = static_cast<Code>(answer.status);
  if (answer.body.empty()) {
    response.send(code);
  } else {
    send_json(response, code, answer.body);
  }
}

std::string method_name(Pistache::Http::Method method) {
  using Pistache::Http::Method;
  switch (method) {
    case Method::Get: return "GET";
    case Method::Post: return "POST";
    case Method::Delete: return "DELETE";
    default: return "OTHER";
  }
}

// The file of an upload-* request: the multipart part named `field`, or nullopt when the body
// has none (the API answers Livy's "No jar sent!"). A body that is not multipart is an error.
Result<std::optional<UploadedFile>> form_file(const Request& request, const std::string& field) {
  auto type = request.headers().tryGet<Pistache::Http::Header::ContentType>();
  std::optional<std::string> boundary;
  if (type) boundary = type->mime().getParam("boundary");
  if (!boundary) {
    return make_error("bad_request", "expected a multipart/form-data body with a boundary");
  }
  auto parts = parse_multipart(request.body(), *boundary);
  if (!parts) return parts.error();
  auto part = std::find_if(parts->begin(), parts->end(), [&](const FormPart& p) { return p.name == field; });
  if (part == parts->end()) return std::optional<UploadedFile>();
  return std::optional<UploadedFile>(UploadedFile{part->filename.value_or(field), std::move(part->data)});
}

}  // namespace

// The longest a long-poll (?wait=) parks a request.
constexpr std::chrono::milliseconds kMaxStatementWait{60'000};
constexpr std::size_t kMaxParkedRequests = 10'000;

struct RestServer::Impl {
  Impl(session::SessionManager& s, RestOptions o)
      : sessions(s),
        options(std::move(o)),
        api(s, ApiOptions{options.version, options.local_dir_whitelist}),
        waits([&s](int64_t id, int64_t sid) { return s.get_statement(id, sid); }, kMaxParkedRequests) {}

  session::SessionManager& sessions;
  RestOptions options;
  Api api;
  StatementWaits waits;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint;
  Pistache::Rest::Router router;
  bool running = false;

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

  ApiRequest api_request(const Request& request) {
    ApiRequest call;
    call.method = method_name(request.method());
    call.path = request.resource();
    for (auto it = request.query().parameters_begin(); it != request.query().parameters_end(); ++it) {
      call.query.emplace(it->first, it->second);
    }
    call.body = request.body();
    return call;
  }

  // Hearth's long-poll: GET /sessions/{id}/statements/{sid}?wait=<ms> is answered when the
  // statement leaves waiting/running (or at the deadline), without holding a worker thread.
  // True when the request was parked.
  bool park_if_waiting(const Request& request, ResponseWriter& response) {
    auto wait_text = request.query().get("wait");
    if (!wait_text) return false;
    int64_t wait = 0;
    auto [end, ec] = std::from_chars(wait_text->data(), wait_text->data() + wait_text->size(), wait);
    if (ec != std::errc() || end != wait_text->data() + wait_text->size() || wait <= 0) return false;
    auto id_text = request.param(":id").as<std::string>();
    auto sid_text = request.param(":sid").as<std::string>();
    int64_t id = 0;
    int64_t sid = 0;
    if (std::from_chars(id_text.data(), id_text.data() + id_text.size(), id).ec != std::errc() ||
        std::from_chars(sid_text.data(), sid_text.data() + sid_text.size(), sid).ec != std::errc()) {
      return false;  // names and bad ids: answered (at once) by the API
    }
    auto statement = sessions.get_statement(id, sid);
    if (!statement || StatementWaits::done(*statement)) return false;
    sessions.touch(id, session::SessionManager::Touch::kRequest);
    auto deadline = std::chrono::steady_clock::now() +
                    std::min(std::chrono::milliseconds(wait), kMaxStatementWait);
    // std::function needs a copyable callable; the writer is move-only.
    auto writer = std::make_shared<ResponseWriter>(std::move(response));
    waits.park(id, sid, deadline, [writer](const Result<session::StatementRecord>& statement) {
      if (!statement) return send(*writer, Api::error_response(statement.error()));
      send_json(*writer, Code::Ok, render_statement(*statement));
    });
    return true;
  }

  void routes() {
    for (const auto& route : api.routes()) {
      auto upload_field = Api::upload_field(route.pattern);
      bool long_poll = route.method == "GET" && route.pattern == "/sessions/:id/statements/:sid";
      auto handler = guard([this, upload_field, long_poll](const Request& request, ResponseWriter& response) {
        auto wait = query_wait_error(request);
        if (long_poll && wait) return send(response, Api::error_response(*wait));
        if (long_poll && park_if_waiting(request, response)) return;
        auto call = api_request(request);
        if (upload_field) {
          auto file = form_file(request, *upload_field);
          if (file) {
            call.file = std::move(*file);
          } else {
            call.file_error = file.error();
          }
        }
        send(response, api.handle(call));
      });
      using namespace Pistache::Rest::Routes;
      if (route.method == "GET") Get(router, route.pattern, handler);
      if (route.method == "POST") Post(router, route.pattern, handler);
      if (route.method == "DELETE") Delete(router, route.pattern, handler);
    }
    router.addNotFoundHandler(guard([](const Request& request, ResponseWriter& response) {
      send_json(response, Code::Not_Found, render_message("no such resource: " + request.resource()));
    }));
  }

  // A ?wait= that is not an integer is refused like Livy refuses bad numbers.
  static std::optional<Error> query_wait_error(const Request& request) {
    auto text = request.query().get("wait");
    if (!text) return std::nullopt;
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size()) {
      return make_error("bad_request", "For input string: \"" + *text + "\" (wait)");
    }
    return std::nullopt;
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
    return make_error("bind_failed", session::cannot_listen_message(impl_->options.host, impl_->options.port,
                                                                    "REST", e.what()));
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
