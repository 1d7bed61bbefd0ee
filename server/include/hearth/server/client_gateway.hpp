#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "hearth/protocol/result.hpp"
#include "hearth/server/api.hpp"
#include "hearth/session/session_manager.hpp"

namespace hearth::server {

struct ClientGatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8999;                          // 0 = any free port
  std::chrono::milliseconds heartbeat{2000};     // announced in welcome; clients silent 3x this are forgotten
  std::size_t max_upload_bytes = 100u << 20;     // one upload; larger ones are answered 413
  int call_threads = 8;                          // calls run here (they may block, e.g. DELETE)
  std::size_t max_queued_calls = 1024;           // more are answered 503 at once
  int send_high_water_mark = 1000;               // messages queued per client before it is overrun
  ApiOptions api;
};

// The ZeroMQ client channel (protocol/PROTOCOL.md, "The client channel"): a ROUTER socket that
// serves the Api's operations as call/reply, pushes session, statement, job and log events to
// subscribed clients, and takes uploads in parts.
//
// Threads: one I/O thread owns the socket (it never blocks on a client: sends are non-blocking
// and a full client is overrun); `call_threads` workers run calls; one event thread turns the
// manager's changes into numbered events (stored in Redis before they are pushed) and owns the
// subscriptions, so a replay on subscribe and the live events after it are one ordered stream.
class ClientGateway {
 public:
  // Registers itself as the manager's change observer, so it must be built before
  // sessions.start(); it must outlive the manager's last change (stop the manager first, or
  // destroy the gateway after sessions.stop()).
  ClientGateway(session::SessionManager& sessions, ClientGatewayOptions options);
  ~ClientGateway();  // stop()
  ClientGateway(const ClientGateway&) = delete;
  ClientGateway& operator=(const ClientGateway&) = delete;

  // Binds and starts the threads. Error "bind_failed".
  Result<void> start();
  // tcp://HOST:PORT with the bound port. Valid after start().
  std::string endpoint() const;
  // Stops taking messages and calls (joins the I/O and call threads); events are still stored
  // until stop(). Idempotent.
  void stop_serving();
  // stop_serving(), then stores what changed until now and joins the event thread; changes
  // reported later are ignored. Idempotent. To keep the events of a shutdown (sessions marked
  // dead), call stop_serving() before sessions.stop() and stop() after it.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
