#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/protocol/messages.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::session {

// The server's end of the driver channel (protocol/PROTOCOL.md): a ZeroMQ ROUTER socket owned
// by one thread. It authenticates drivers (hello → welcome/reject; a hello must list
// protocol::kVersion, the only version the server speaks), sends heartbeats, and hands
// every other decoded message of an authenticated driver to the listener. Undecodable frames
// are logged and dropped.
class DriverChannel {
 public:
  struct Listener {
    virtual ~Listener() = default;
    // Called on the channel thread; must not block for long and must not call stop().
    virtual void on_driver_message(const std::string& driver_id, protocol::Message message) = 0;
  };
  // True when secret is the secret of a known driver with that id (false for an unknown id).
  // The server keeps only digests of secrets, hence a verifier rather than a lookup: see
  // driver_secret.hpp. Called on the channel thread for every hello; must not block for long.
  using SecretVerifier =
      std::function<bool(const std::string& driver_id, std::string_view secret)>;

  struct Options {
    std::string bind_endpoint = "tcp://127.0.0.1:0";
    std::chrono::milliseconds heartbeat{2000};
    std::size_t max_queued_messages = 100000;
  };

  DriverChannel(Options options, SecretVerifier secrets, Listener& listener);
  ~DriverChannel();  // stops
  DriverChannel(const DriverChannel&) = delete;
  DriverChannel& operator=(const DriverChannel&) = delete;

  // Binds and starts the channel thread. Error code "bind_failed".
  Result<void> start();
  // The bound endpoint with the real port, e.g. tcp://127.0.0.1:40123. Valid after start().
  std::string endpoint() const;
  // Queues a message for a driver; thread-safe, never blocks on the network. Error codes:
  // "driver_not_connected" (no welcomed peer has that id), "queue_full".
  Result<void> send(const std::string& driver_id, protocol::Message message);
  // True when a welcomed peer with that id exists.
  bool connected(const std::string& driver_id) const;
  // When a frame (any, heartbeats included) of that driver last arrived since it was first
  // welcomed by this channel; nullopt if it never was. Thread-safe.
  std::optional<std::chrono::steady_clock::time_point> last_heard(const std::string& driver_id) const;
  // Stops and joins the channel thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::session
