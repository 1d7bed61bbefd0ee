#include "hearth/session/driver_channel.hpp"

#include <atomic>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "hearth/protocol/codec.hpp"
#include "hearth/session/port_holder.hpp"

namespace hearth::session {
namespace {

std::atomic<int> next_channel_number{0};

}  // namespace

struct DriverChannel::Impl {
  Impl(Options o, SecretVerifier s, Listener& l)
      : options(std::move(o)), secrets(std::move(s)), listener(l),
        wake_endpoint("inproc://hearth-driver-channel-" + std::to_string(next_channel_number++)) {}

  Options options;
  SecretVerifier secrets;
  Listener& listener;
  const std::string wake_endpoint;

  zmq::context_t context{1};
  // Owned by the channel thread once it runs; created in start() so bind errors reach the caller.
  zmq::socket_t router;
  zmq::socket_t wake_pull;
  // Shared by the threads that call send()/stop(); a socket is not thread-safe, hence the mutex.
  std::mutex wake_mutex;
  zmq::socket_t wake_push;

  std::mutex queue_mutex;
  std::deque<std::pair<std::string, std::string>> outgoing;  // routing id, frame

  // Peers: written by the channel thread, read by send()/connected() from other threads.
  mutable std::mutex peers_mutex;
  std::map<std::string, std::string> routing_by_driver;
  std::map<std::string, std::string> driver_by_routing;
  // When each welcomed driver's last frame (heartbeats included) arrived.
  std::map<std::string, std::chrono::steady_clock::time_point> last_heard;

  std::string bound_endpoint;
  std::atomic<bool> stopping{false};
  std::thread thread;

  void wake() {
    std::lock_guard lock(wake_mutex);
    wake_push.send(zmq::const_buffer("w", 1), zmq::send_flags::dontwait);
  }

  void send_raw(const std::string& routing_id, const protocol::Message& message) {
    std::string frame = protocol::encode(message);
    try {
      router.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::buffer(frame), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;
      forget_routing(routing_id);  // see flush_outgoing
    }
  }

  void handle_hello(const std::string& routing_id, const protocol::Hello& hello) {
    // The server speaks exactly one version (the agent ships with it), so "the highest version
    // both sides speak" is kVersion or none. The reject goes out with v = 1 (encode() sends
    // every reject so), which an agent of any version can read.
    bool speaks_ours = false;
    for (auto v : hello.versions) speaks_ours |= (v == protocol::kVersion);
    if (!speaks_ours) {
      std::cerr << "[hearth] driver channel: rejected hello for driver '" << hello.driver_id
                << "' (no common protocol version)\n";
      send_raw(routing_id, protocol::Reject{"no common protocol version (server speaks " +
                                            std::to_string(protocol::kVersion) + ")"});
      return;
    }
    if (!secrets(hello.driver_id, hello.secret)) {
      std::cerr << "[hearth] driver channel: rejected hello for driver '" << hello.driver_id
                << "' (unknown driver or wrong secret)\n";
      send_raw(routing_id, protocol::Reject{"unknown driver or wrong secret"});
      return;
    }
    {
      std::lock_guard lock(peers_mutex);
      // A reconnecting driver comes with a new routing id: forget the old one.
      if (auto old = routing_by_driver.find(hello.driver_id); old != routing_by_driver.end()) {
        driver_by_routing.erase(old->second);
      }
      routing_by_driver[hello.driver_id] = routing_id;
      driver_by_routing[routing_id] = hello.driver_id;
      last_heard[hello.driver_id] = std::chrono::steady_clock::now();
    }
    send_raw(routing_id, protocol::Welcome{protocol::kVersion, options.heartbeat.count()});
    listener.on_driver_message(hello.driver_id, hello);
  }

  void handle_frame(const std::string& routing_id, std::string_view frame) {
    auto decoded = protocol::decode(frame);
    if (!decoded) {
      std::cerr << "[hearth] driver channel: dropped undecodable frame: " << decoded.error().message
                << "\n";
      return;
    }
    protocol::Message message = std::move(decoded).value();
    if (auto* hello = std::get_if<protocol::Hello>(&message)) {
      handle_hello(routing_id, *hello);
      return;
    }
    std::string driver_id;
    {
      std::lock_guard lock(peers_mutex);
      auto it = driver_by_routing.find(routing_id);
      if (it != driver_by_routing.end()) {
        driver_id = it->second;
        last_heard[driver_id] = std::chrono::steady_clock::now();
      }
    }
    if (driver_id.empty()) {
      send_raw(routing_id, protocol::ErrorReply{"not_authenticated", "send hello first"});
      return;
    }
    if (std::holds_alternative<protocol::Heartbeat>(message)) return;
    listener.on_driver_message(driver_id, std::move(message));
  }

  void flush_outgoing() {
    std::deque<std::pair<std::string, std::string>> batch;
    {
      std::lock_guard lock(queue_mutex);
      batch.swap(outgoing);
    }
    for (auto& [routing_id, frame] : batch) {
      try {
        router.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        router.send(zmq::buffer(frame), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EHOSTUNREACH) throw;
        // ZMQ_ROUTER_MANDATORY: the peer is gone (its connection dropped). The frame is lost;
        // the manager hands unfinished work to the driver again once it has said hello again,
        // so forget the routing id now and let send() answer driver_not_connected meanwhile.
        forget_routing(routing_id);
      }
    }
  }

  void forget_routing(const std::string& routing_id) {
    std::lock_guard lock(peers_mutex);
    auto it = driver_by_routing.find(routing_id);
    if (it == driver_by_routing.end()) return;
    std::cerr << "[hearth] driver channel: driver " << it->second << " is not connected; frame dropped\n";
    if (auto r = routing_by_driver.find(it->second); r != routing_by_driver.end() && r->second == routing_id) {
      routing_by_driver.erase(r);
    }
    driver_by_routing.erase(it);
  }

  void send_heartbeats() {
    std::vector<std::string> routing_ids;
    {
      std::lock_guard lock(peers_mutex);
      for (const auto& [routing_id, driver] : driver_by_routing) routing_ids.push_back(routing_id);
    }
    for (const auto& routing_id : routing_ids) send_raw(routing_id, protocol::Heartbeat{});
  }

  void run() {
    auto next_heartbeat = std::chrono::steady_clock::now() + options.heartbeat;
    while (!stopping) {
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                 {wake_pull.handle(), 0, ZMQ_POLLIN, 0}};
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          next_heartbeat - std::chrono::steady_clock::now());
      try {
        zmq::poll(items, 2, std::max(wait, std::chrono::milliseconds(0)));
        if (items[1].revents & ZMQ_POLLIN) {
          zmq::message_t drained;
          while (wake_pull.recv(drained, zmq::recv_flags::dontwait)) {
          }
          flush_outgoing();
        }
        if (items[0].revents & ZMQ_POLLIN) {
          // Drain what is ready, bounded so heartbeats and sends are not starved.
          for (int i = 0; i < 1000; ++i) {
            std::vector<zmq::message_t> parts;
            zmq::message_t part;
            if (!router.recv(part, zmq::recv_flags::dontwait)) break;
            parts.push_back(std::move(part));
            while (parts.back().more()) {
              zmq::message_t next;
              (void)router.recv(next);
              parts.push_back(std::move(next));
            }
            if (parts.size() != 2) {
              std::cerr << "[hearth] driver channel: dropped message of " << parts.size() - 1
                        << " frames (expected 1)\n";
              continue;
            }
            handle_frame(parts[0].to_string(), parts[1].to_string_view());
          }
        }
        if (std::chrono::steady_clock::now() >= next_heartbeat) {
          send_heartbeats();
          next_heartbeat = std::chrono::steady_clock::now() + options.heartbeat;
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
        std::cerr << "[hearth] driver channel: " << e.what() << "\n";
      }
    }
    router.close();
    wake_pull.close();
  }
};

DriverChannel::DriverChannel(Options options, SecretVerifier secrets, Listener& listener)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(secrets), listener)) {}

DriverChannel::~DriverChannel() { stop(); }

Result<void> DriverChannel::start() {
  try {
    impl_->router = zmq::socket_t(impl_->context, zmq::socket_type::router);
    impl_->router.set(zmq::sockopt::linger, 0);
    // A frame for a peer that is gone fails (EHOSTUNREACH) instead of vanishing silently, so
    // the server knows the driver is not connected (see flush_outgoing).
    impl_->router.set(zmq::sockopt::router_mandatory, 1);
    impl_->router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::kMaxFrameBytes + 1024));
    impl_->router.bind(impl_->options.bind_endpoint);
    impl_->bound_endpoint = impl_->router.get(zmq::sockopt::last_endpoint);
    impl_->wake_pull = zmq::socket_t(impl_->context, zmq::socket_type::pull);
    impl_->wake_pull.set(zmq::sockopt::linger, 0);
    impl_->wake_pull.bind(impl_->wake_endpoint);
    impl_->wake_push = zmq::socket_t(impl_->context, zmq::socket_type::push);
    impl_->wake_push.set(zmq::sockopt::linger, 0);
    impl_->wake_push.connect(impl_->wake_endpoint);
  } catch (const zmq::error_t& e) {
    if (auto address = parse_tcp_endpoint(impl_->options.bind_endpoint)) {
      return make_error("bind_failed", cannot_listen_message(address->host, address->port,
                                                             "the driver channel", e.what()));
    }
    return make_error("bind_failed", "cannot listen on " + impl_->options.bind_endpoint +
                                         " for the driver channel: " + e.what());
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  return Ok{};
}

std::string DriverChannel::endpoint() const { return impl_->bound_endpoint; }

Result<void> DriverChannel::send(const std::string& driver_id, protocol::Message message) {
  std::string routing_id;
  {
    std::lock_guard lock(impl_->peers_mutex);
    auto it = impl_->routing_by_driver.find(driver_id);
    if (it == impl_->routing_by_driver.end()) {
      return make_error("driver_not_connected", "driver " + driver_id + " is not connected");
    }
    routing_id = it->second;
  }
  std::string frame = protocol::encode(message);
  {
    std::lock_guard lock(impl_->queue_mutex);
    if (impl_->outgoing.size() >= impl_->options.max_queued_messages) {
      return make_error("queue_full", "driver channel send queue is full");
    }
    impl_->outgoing.emplace_back(std::move(routing_id), std::move(frame));
  }
  impl_->wake();
  return Ok{};
}

std::optional<std::chrono::steady_clock::time_point> DriverChannel::last_heard(
    const std::string& driver_id) const {
  std::lock_guard lock(impl_->peers_mutex);
  auto it = impl_->last_heard.find(driver_id);
  if (it == impl_->last_heard.end()) return std::nullopt;
  return it->second;
}

bool DriverChannel::connected(const std::string& driver_id) const {
  std::lock_guard lock(impl_->peers_mutex);
  return impl_->routing_by_driver.count(driver_id) > 0;
}

void DriverChannel::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->wake();
  impl_->thread.join();
  std::lock_guard lock(impl_->wake_mutex);
  impl_->wake_push.close();
}

}  // namespace hearth::session
