// The server's end of the driver channel against a real ZeroMQ DEALER peer speaking the protocol.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>
#include <zmq.hpp>

#include "hearth/protocol/codec.hpp"
#include "hearth/session/driver_channel.hpp"
#include "hearth/session/driver_secret.hpp"

namespace hearth::session {
namespace {

using namespace std::chrono_literals;

class RecordingListener : public DriverChannel::Listener {
 public:
  void on_driver_message(const std::string& driver_id, protocol::Message message) override {
    std::lock_guard lock(mutex_);
    received_.emplace_back(driver_id, std::move(message));
    cv_.notify_all();
  }
  // Waits (bounded) until at least n messages arrived; returns a copy of them.
  std::vector<std::pair<std::string, protocol::Message>> wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 10s, [&] { return received_.size() >= n; });
    return received_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, protocol::Message>> received_;
};

class FakeDriverPeer {  // a protocol peer for this test, not a stand-in for Spark
 public:
  FakeDriverPeer(zmq::context_t& context, const std::string& endpoint)
      : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 10000);
    socket_.connect(endpoint);
  }
  void send(const protocol::Message& message) { send_raw(protocol::encode(message)); }
  void send_raw(const std::string& frame) { socket_.send(zmq::buffer(frame), zmq::send_flags::none); }
  // The next message that is not a heartbeat; fails the test on timeout.
  protocol::Message receive() {
    for (;;) {
      zmq::message_t frame;
      auto got = socket_.recv(frame);
      if (!got) {
        ADD_FAILURE() << "no message from the server within the timeout";
        return protocol::Heartbeat{};
      }
      auto decoded = protocol::decode(frame.to_string_view());
      EXPECT_TRUE(decoded) << frame.to_string();
      if (!decoded) return protocol::Heartbeat{};
      if (!std::holds_alternative<protocol::Heartbeat>(*decoded)) return *decoded;
    }
  }
  bool receives_heartbeat() {
    zmq::message_t frame;
    for (int i = 0; i < 10; ++i) {
      if (!socket_.recv(frame)) return false;
      auto decoded = protocol::decode(frame.to_string_view());
      if (decoded && std::holds_alternative<protocol::Heartbeat>(*decoded)) return true;
    }
    return false;
  }

 private:
  zmq::socket_t socket_;
};

class DriverChannelTest : public testing::Test {
 protected:
  void SetUp() override {
    DriverChannel::Options options;
    options.heartbeat = 100ms;
    channel_ = std::make_unique<DriverChannel>(
        options,
        // As the server does it: only the digest of driver-a's secret is known.
        [digest = secret_digest("secret-a")](const std::string& id, std::string_view secret) {
          return id == "driver-a" && secret_matches(digest, secret);
        },
        listener_);
    ASSERT_TRUE(channel_->start());
  }
  void TearDown() override { channel_->stop(); }

  protocol::Hello hello(std::string id, std::string secret) {
    return protocol::Hello{std::move(id), std::move(secret), {protocol::kVersion}, 1234, "4.3.0"};
  }

  zmq::context_t context_{1};
  RecordingListener listener_;
  std::unique_ptr<DriverChannel> channel_;
};

TEST_F(DriverChannelTest, WelcomesTheRightSecretThenRelaysMessagesBothWays) {
  EXPECT_NE(channel_->endpoint().find("tcp://127.0.0.1:"), std::string::npos);
  FakeDriverPeer peer(context_, channel_->endpoint());
  peer.send(hello("driver-a", "secret-a"));
  auto welcome = peer.receive();
  ASSERT_TRUE(std::holds_alternative<protocol::Welcome>(welcome));
  EXPECT_EQ(std::get<protocol::Welcome>(welcome).version, protocol::kVersion);
  EXPECT_EQ(std::get<protocol::Welcome>(welcome).heartbeat_ms, 100);
  EXPECT_TRUE(channel_->connected("driver-a"));

  peer.send(protocol::DriverStatus{"ready", "local-1", std::nullopt, std::nullopt});
  auto received = listener_.wait_for(2);  // the hello, then driver_state
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[1].first, "driver-a");
  EXPECT_TRUE(std::holds_alternative<protocol::DriverStatus>(received[1].second));

  ASSERT_TRUE(channel_->send("driver-a", protocol::OpenSession{5, "pyspark"}));
  auto open = peer.receive();
  ASSERT_TRUE(std::holds_alternative<protocol::OpenSession>(open));
  EXPECT_EQ(std::get<protocol::OpenSession>(open).session_id, 5);
  EXPECT_TRUE(peer.receives_heartbeat());
}

TEST_F(DriverChannelTest, WrongSecretIsRejectedAndTheDriverStaysUnauthenticated) {
  FakeDriverPeer peer(context_, channel_->endpoint());
  peer.send(hello("driver-a", "secret-b"));
  ASSERT_TRUE(std::holds_alternative<protocol::Reject>(peer.receive()));
  EXPECT_FALSE(channel_->connected("driver-a"));
  peer.send(protocol::SessionStatus{0, "idle", std::nullopt});
  auto answer = peer.receive();
  ASSERT_TRUE(std::holds_alternative<protocol::ErrorReply>(answer));
  EXPECT_EQ(std::get<protocol::ErrorReply>(answer).code, "not_authenticated");
  EXPECT_EQ(listener_.count(), 0u);
  auto sent = channel_->send("driver-a", protocol::Shutdown{});
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, "driver_not_connected");
}

TEST_F(DriverChannelTest, UnknownDriverAndUnsupportedVersionAreRejected) {
  FakeDriverPeer stranger(context_, channel_->endpoint());
  stranger.send(hello("driver-z", "secret-a"));
  EXPECT_TRUE(std::holds_alternative<protocol::Reject>(stranger.receive()));

  FakeDriverPeer future(context_, channel_->endpoint());
  auto h = hello("driver-a", "secret-a");
  h.versions = {7, 8};
  future.send(h);
  EXPECT_TRUE(std::holds_alternative<protocol::Reject>(future.receive()));
  EXPECT_FALSE(channel_->connected("driver-a"));

  // An agent of version 2 (before resynchronisation) is refused too: the server speaks only 3.
  FakeDriverPeer old(context_, channel_->endpoint());
  h.versions = {1, 2};
  old.send(h);
  auto reject = old.receive();
  ASSERT_TRUE(std::holds_alternative<protocol::Reject>(reject));
  EXPECT_NE(std::get<protocol::Reject>(reject).reason.find("server speaks 3"), std::string::npos);
  EXPECT_FALSE(channel_->connected("driver-a"));
}

TEST_F(DriverChannelTest, UndecodableFramesAreDroppedAndTheChannelKeepsWorking) {
  FakeDriverPeer peer(context_, channel_->endpoint());
  peer.send_raw("this is not json");
  peer.send_raw(R"({"v":3,"type":"teleport","body":{}})");
  peer.send_raw(R"({"v":1,"type":"heartbeat","body":{}})");  // only hello and reject use v 1
  peer.send_raw(std::string("\xff\xfe\x00garbage", 10));
  peer.send(hello("driver-a", "secret-a"));
  EXPECT_TRUE(std::holds_alternative<protocol::Welcome>(peer.receive()));
  peer.send_raw(R"({"v":3,"type":"session_state","body":{"session_id":"x","state":"idle"}})");
  peer.send_raw(R"({"v":1,"type":"session_state","body":{"session_id":1,"state":"idle"}})");
  peer.send(protocol::SessionStatus{1, "busy", std::nullopt});
  auto received = listener_.wait_for(2);
  ASSERT_EQ(received.size(), 2u);  // the hello and the valid session_state only
  EXPECT_TRUE(std::holds_alternative<protocol::SessionStatus>(received[1].second));
}

TEST_F(DriverChannelTest, AReconnectingDriverReplacesItsOldConnection) {
  FakeDriverPeer first(context_, channel_->endpoint());
  first.send(hello("driver-a", "secret-a"));
  ASSERT_TRUE(std::holds_alternative<protocol::Welcome>(first.receive()));
  FakeDriverPeer second(context_, channel_->endpoint());
  second.send(hello("driver-a", "secret-a"));
  ASSERT_TRUE(std::holds_alternative<protocol::Welcome>(second.receive()));
  ASSERT_TRUE(channel_->send("driver-a", protocol::CloseSession{9}));
  auto close = second.receive();
  ASSERT_TRUE(std::holds_alternative<protocol::CloseSession>(close));
  EXPECT_EQ(std::get<protocol::CloseSession>(close).session_id, 9);
}

}  // namespace
}  // namespace hearth::session
