#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/session_manager.hpp"

namespace hearth::server {

struct RestOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8998;                       // 0 = any free port
  int threads = 8;
  std::size_t max_request_bytes = 16u << 20;  // larger bodies are answered 413
  std::string version = "0.0.0";
  bool csrf_protection = false;               // require X-Requested-By on non-GET requests
  std::vector<std::string> local_dir_whitelist;  // where add-* may take file: URIs from
};

// The Livy-compatible REST API on Pistache. Handlers run on Pistache's worker threads and call
// the session manager; every expected failure is mapped to an HTTP answer in one table
// (rest_server.cpp, `status_for`).
class RestServer {
 public:
  // Registers itself as the manager's statement observer (for long-polls), so it must be built
  // before sessions.start() and stopped before sessions.stop().
  RestServer(session::SessionManager& sessions, RestOptions options);
  ~RestServer();  // stops
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // Binds and serves on background threads. Error code "bind_failed".
  Result<void> start();
  // The bound port (the real one when options.port was 0). Valid after start().
  uint16_t port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
