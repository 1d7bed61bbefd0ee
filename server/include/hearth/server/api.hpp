#pragma once

// The operations of Hearth's API, independent of the transport: the REST server (Pistache) and
// the ZeroMQ client gateway both turn their requests into an ApiRequest and answer with the
// ApiResponse, so the two channels offer the same operations with the same answers, checks and
// error table.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/session/session_manager.hpp"

namespace hearth::server {

struct ApiOptions {
  std::string version = "0.0.0";
  std::vector<std::string> local_dir_whitelist;  // where add-* may take file: URIs from
};

// A file sent with an upload-* request (REST: the multipart field; ZeroMQ: a finished upload).
struct UploadedFile {
  std::string filename;
  std::string data;
};

struct ApiRequest {
  std::string method;  // GET, POST, DELETE
  std::string path;    // without the query string, e.g. /sessions/7/statements
  std::map<std::string, std::string> query;
  std::string body;    // the JSON body ("" when there is none)
  std::optional<UploadedFile> file;
  // Why the transport could not read the file of an upload-* request (e.g. a REST body that is
  // not multipart); answered after the session checks, like a missing file.
  std::optional<Error> file_error;
  std::optional<std::string> user;  // the authenticated principal, when the channel has one
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON; empty when the answer has no body
  std::optional<std::string> location;
};

class Api {
 public:
  Api(session::SessionManager& sessions, ApiOptions options);

  // Answers a request. Never throws for bad input: an unknown resource is 404, an expected
  // failure is mapped by the error table (status_for) to 4xx/5xx with {"msg": …}. May block
  // as long as the manager's operation does (deleting a session waits for its driver).
  ApiResponse handle(const ApiRequest& request);

  // The route patterns ("/sessions/:id/statements/:sid") with their methods, for transports
  // that register routes (REST).
  struct RouteName {
    std::string method;
    std::string pattern;
  };
  std::vector<RouteName> routes() const;

  // For upload-* paths: the multipart field that carries the file ("jar" or "file"); nullopt
  // for every other path.
  static std::optional<std::string> upload_field(std::string_view path);

  // Splits "path?query" into the path and its decoded query parameters.
  static std::pair<std::string, std::map<std::string, std::string>> split_target(std::string_view target);

  // The error table of the API: an expected failure's code to the HTTP status both channels answer.
  static int status_for(const std::string& code);
  // An error as a response: its status and {"msg": …} (internals of 500s are logged, not sent).
  static ApiResponse error_response(const Error& error);

 private:
  using Params = std::map<std::string, std::string>;
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    std::function<ApiResponse(const Params&, const ApiRequest&)> handler;
  };
  ApiResponse dispatch(const Route& route, const Params& params, const ApiRequest& request);

  session::SessionManager& sessions_;
  const ApiOptions options_;
  std::vector<Route> routes_;
};

}  // namespace hearth::server
