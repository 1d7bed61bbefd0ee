// hearth::clients::Client against ScriptedServerPeer: a ROUTER socket on tcp://127.0.0.1 (port 0)
// that speaks the client channel (protocol/PROTOCOL.md) by a script each test sets. It is a
// protocol peer for testing the library's side of the channel, not a stand-in for hearth-server
// or Spark: the real server's answers are tested by the server's own suites.
//
// No sleeps: every wait is on a condition with a deadline.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "hearth/clients/client.hpp"
#include "hearth/protocol/client_codec.hpp"

namespace hearth::clients {
namespace {

namespace pc = hearth::protocol::client;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 10s;  // every wait's deadline; a healthy run needs milliseconds

class ScriptedServerPeer {
 public:
  // Answers a call: a reply (its id is filled in), or nullopt for no answer.
  using CallScript = std::function<std::optional<pc::Reply>(const pc::Call&)>;

  explicit ScriptedServerPeer(int64_t heartbeat_ms = 200, int64_t max_part_bytes = 262144)
      : heartbeat_ms_(heartbeat_ms), max_part_bytes_(max_part_bytes), router_(context_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    std::string endpoint = router_.get(zmq::sockopt::last_endpoint);
    address_ = endpoint.substr(std::string("tcp://").size());
    thread_ = std::thread([this] { run(); });
  }

  ~ScriptedServerPeer() {
    stop_ = true;
    thread_.join();
  }

  const std::string& address() const { return address_; }

  void on_call(CallScript script) {
    std::lock_guard lock(mutex_);
    script_ = std::move(script);
  }

  // Sends `message` to the client (from any thread; in order with the peer's own answers).
  void emit(pc::Message message, bool split = false) {
    if (std::this_thread::get_id() == thread_.get_id()) {
      send(message, split);
      return;
    }
    std::lock_guard lock(mutex_);
    outbox_.push_back({std::move(message), split});
  }

  void emit_event(int64_t session, int64_t seq, std::string kind, std::string body) {
    emit(pc::Event{session, seq, std::move(kind), std::move(body)});
  }

  // The peer "restarts": a new server id, every client forgotten (their next message is
  // answered with error hello_required).
  void restart(std::string server_id) {
    std::lock_guard lock(mutex_);
    server_id_ = std::move(server_id);
    known_.clear();
  }

  // The client's next message is answered with error overrun (and not taken).
  void overrun_next() {
    std::lock_guard lock(mutex_);
    overrun_next_ = true;
  }

  // Waits until `predicate(received messages)` holds.
  bool wait_until(const std::function<bool(const std::vector<pc::Message>&)>& predicate) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, Clock::now() + kWait, [&] { return predicate(received_); });
  }

  std::vector<pc::Message> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

  template <typename T>
  std::vector<T> received_of() {
    std::vector<T> out;
    for (auto& m : received()) {
      if (auto* x = std::get_if<T>(&m)) out.push_back(*x);
    }
    return out;
  }

 private:
  void send(const pc::Message& message, bool split) {
    pc::Frames frames = pc::encode(message);
    if (split) {
      for (auto& part : pc::split(frames.header, next_ref_++)) send(part, false);
      return;
    }
    router_.send(zmq::buffer(client_id_), zmq::send_flags::sndmore);
    if (frames.data) {
      router_.send(zmq::buffer(frames.header), zmq::send_flags::sndmore);
      router_.send(zmq::buffer(*frames.data), zmq::send_flags::none);
    } else {
      router_.send(zmq::buffer(frames.header), zmq::send_flags::none);
    }
  }

  void run() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{static_cast<void*>(router_), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, std::chrono::milliseconds(5));
      std::deque<std::pair<pc::Message, bool>> out;
      {
        std::lock_guard lock(mutex_);
        out.swap(outbox_);
      }
      for (auto& [message, split] : out) send(message, split);
      while (true) {
        zmq::message_t id;
        if (!router_.recv(id, zmq::recv_flags::dontwait)) break;
        zmq::message_t header;
        (void)router_.recv(header);
        std::optional<zmq::message_t> data;
        if (header.more()) {
          data.emplace();
          (void)router_.recv(*data);
        }
        client_id_ = id.to_string();
        std::optional<std::string_view> data_view;
        if (data) data_view = data->to_string_view();
        auto decoded = pc::decode(header.to_string_view(), data_view);
        ASSERT_TRUE(std::holds_alternative<pc::Message>(decoded))
            << std::get<pc::DecodeError>(decoded).error.message;
        handle(std::get<pc::Message>(decoded));
      }
    }
  }

  static std::optional<int64_t> id_of(const pc::Message& message) {
    return std::visit(
        [](const auto& m) -> std::optional<int64_t> {
          if constexpr (requires { m.id; }) {
            return m.id;
          } else {
            return std::nullopt;
          }
        },
        message);
  }

  void handle(const pc::Message& message) {
    CallScript script;
    bool known = false;
    bool overrun = false;
    std::string server_id;
    {
      std::lock_guard lock(mutex_);
      received_.push_back(message);
      changed_.notify_all();
      if (std::holds_alternative<pc::Hello>(message)) known_.insert(client_id_);
      known = known_.count(client_id_) != 0;
      overrun = overrun_next_ && !std::holds_alternative<pc::Hello>(message);
      if (overrun) overrun_next_ = false;
      script = script_;
      server_id = server_id_;
    }
    if (auto* hello = std::get_if<pc::Hello>(&message)) {
      EXPECT_EQ(hello->versions, std::vector<int64_t>{1});
      send(pc::Welcome{1, server_id, heartbeat_ms_, max_part_bytes_}, false);
      return;
    }
    if (!known) {
      send(pc::ErrorMessage{id_of(message), "hello_required", "who are you?"}, false);
      return;
    }
    if (overrun) {
      send(pc::ErrorMessage{id_of(message), "overrun", "sessions 1, 2 lost events"}, false);
      return;
    }
    if (std::holds_alternative<pc::Ping>(message)) {
      send(pc::Pong{server_id}, false);
    } else if (auto* subscribe = std::get_if<pc::Subscribe>(&message)) {
      std::string session = subscribe->session ? std::to_string(*subscribe->session) : "null";
      send(pc::Reply{subscribe->id, 200, "{\"session\":" + session + ",\"seq\":0}"}, false);
    } else if (auto* unsubscribe = std::get_if<pc::Unsubscribe>(&message)) {
      send(pc::Reply{unsubscribe->id, 200, "null"}, false);
    } else if (auto* upload = std::get_if<pc::Upload>(&message)) {
      int64_t bytes = upload->offset + static_cast<int64_t>(upload->data.size());
      send(pc::Reply{upload->id, 200,
                     "{\"upload\":\"" + upload->upload + "\",\"bytes\":" + std::to_string(bytes) +
                         "}"},
           false);
    } else if (auto* call = std::get_if<pc::Call>(&message)) {
      std::optional<pc::Reply> reply;
      if (script) {
        reply = script(*call);
      } else {
        reply = pc::Reply{0, 404, "{\"msg\":\"no script\"}"};
      }
      if (reply) {
        reply->id = call->id;
        bool split = reply->body_json.size() > pc::kMaxPartBytes;
        send(*reply, split);
      }
    }
  }

  const int64_t heartbeat_ms_;
  const int64_t max_part_bytes_;
  zmq::context_t context_;
  zmq::socket_t router_;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::string client_id_;  // peer thread only: the (single) client's routing id
  int64_t next_ref_ = 1;

  std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::vector<pc::Message> received_;
  std::deque<std::pair<pc::Message, bool>> outbox_;
  CallScript script_;
  std::string server_id_ = "peer-1";
  std::set<std::string> known_;
  bool overrun_next_ = false;
};

ClientOptions options_for(const ScriptedServerPeer& peer,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  ClientOptions options;
  options.server = peer.address();
  options.user = "alice";
  options.client_name = "client-library-test/1";
  options.request_timeout = timeout;
  return options;
}

std::string statement_json(int64_t id, const std::string& state, double progress,
                           const std::string& text = "") {
  std::string json = "{\"id\":" + std::to_string(id) + ",\"code\":\"1+1\",\"state\":\"" + state +
                     "\",\"progress\":" + std::to_string(progress) +
                     ",\"started\":0,\"completed\":0";
  if (state == "available") {
    json += ",\"output\":{\"status\":\"ok\",\"execution_count\":" + std::to_string(id) +
            ",\"data\":{\"text/plain\":\"" + text + "\"}}";
  } else {
    json += ",\"output\":null";
  }
  return json + "}";
}

// Collects what a callback thread hands over, for the test thread to wait on.
template <typename T>
class Inbox {
 public:
  void add(T item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
    changed_.notify_all();
  }
  bool wait_for_count(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, Clock::now() + kWait, [&] { return items_.size() >= n; });
  }
  std::vector<T> items() {
    std::lock_guard lock(mutex_);
    return items_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<T> items_;
};

TEST(ClientLibrary, SaysHelloAndMakesACallRoundTrip) {
  ScriptedServerPeer peer;
  peer.on_call([](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.method == "GET" && call.path == "/version") {
      return pc::Reply{0, 200, "{\"version\":\"0.9.0-hearth-0.1.0\"}"};
    }
    return pc::Reply{0, 404, "{\"msg\":\"Session '9' not found.\"}"};
  });
  Client client(options_for(peer));

  auto response = client.call("GET", "/version");
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body_json, "{\"version\":\"0.9.0-hearth-0.1.0\"}");

  auto hellos = peer.received_of<pc::Hello>();
  ASSERT_FALSE(hellos.empty());
  EXPECT_EQ(hellos.front().client, "client-library-test/1");
  EXPECT_EQ(hellos.front().user, std::optional<std::string>("alice"));

  // A 404 is a Response for call(), and the error table's not_found for typed operations.
  auto raw = client.call("GET", "/sessions/9");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 404);
  auto session = client.get_session(9);
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().code, "not_found");
  EXPECT_EQ(session.error().message, "Session '9' not found.");
}

TEST(ClientLibrary, RunAsyncCompletesFromPushedEventsAfterSubscribing) {
  ScriptedServerPeer peer;
  peer.on_call([&](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.method == "POST" && call.path == "/sessions/1/statements") {
      EXPECT_EQ(call.body_json, std::optional<std::string>("{\"code\":\"1+1\"}"));
      // The reply first, then the statement's events.
      peer.emit(pc::Reply{call.id, 201, statement_json(0, "waiting", 0)});
      peer.emit_event(1, 1, "statement", statement_json(0, "running", 0.5));
      peer.emit_event(1, 2, "statement", statement_json(0, "available", 1, "2"));
      return std::nullopt;
    }
    return pc::Reply{0, 404, "{\"msg\":\"unexpected\"}"};
  });
  Client client(options_for(peer));
  Inbox<Statement> updates;
  auto future = client.run_async(1, "1+1", std::nullopt,
                                 [&](const Statement& s) { updates.add(s); });
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  auto statement = future.get();
  ASSERT_TRUE(statement) << statement.error().message;
  EXPECT_EQ(statement->state, "available");
  EXPECT_TRUE(statement->succeeded());
  EXPECT_EQ(statement->output->text, std::optional<std::string>("2"));

  // Every pushed update was seen before the future was ready.
  auto seen = updates.items();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].state, "running");
  EXPECT_DOUBLE_EQ(seen[0].progress, 0.5);
  EXPECT_EQ(seen[1].state, "available");

  // The subscription went out before the submit.
  auto messages = peer.received();
  int subscribe_at = -1, call_at = -1;
  for (int i = 0; i < static_cast<int>(messages.size()); ++i) {
    if (auto* s = std::get_if<pc::Subscribe>(&messages[i]); s && s->session == 1) subscribe_at = i;
    if (auto* c = std::get_if<pc::Call>(&messages[i]); c && c->method == "POST") call_at = i;
  }
  ASSERT_GE(subscribe_at, 0);
  EXPECT_LT(subscribe_at, call_at);
}

TEST(ClientLibrary, RunCompletesWhenTheFinalEventArrivesBeforeTheSubmitReply) {
  ScriptedServerPeer peer;
  peer.on_call([&](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.method == "POST") {
      peer.emit_event(1, 1, "statement", statement_json(3, "running", 0.2));
      peer.emit_event(1, 2, "statement", statement_json(3, "available", 1, "done"));
      return pc::Reply{0, 201, statement_json(3, "waiting", 0)};  // sent after the events
    }
    return pc::Reply{0, 404, "{\"msg\":\"unexpected\"}"};
  });
  Client client(options_for(peer));
  auto statement = client.run(1, "1+1", std::nullopt, kWait);
  ASSERT_TRUE(statement) << statement.error().code << ": " << statement.error().message;
  EXPECT_EQ(statement->id, 3);
  EXPECT_EQ(statement->state, "available");
  EXPECT_EQ(statement->output->text, std::optional<std::string>("done"));
}

TEST(ClientLibrary, WaitStatementReturnsAnAlreadyFinishedStatementFromOneGet) {
  ScriptedServerPeer peer;
  peer.on_call([&](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.method == "GET" && call.path == "/sessions/4/statements/7") {
      return pc::Reply{0, 200, statement_json(7, "available", 1, "42")};
    }
    return pc::Reply{0, 404, "{\"msg\":\"unexpected\"}"};
  });
  Client client(options_for(peer));
  auto statement = client.wait_statement(4, 7, kWait);
  ASSERT_TRUE(statement) << statement.error().message;
  EXPECT_EQ(statement->session_id, 4);
  EXPECT_EQ(statement->output->text, std::optional<std::string>("42"));
}

TEST(ClientLibrary, WaitForIdleFollowsSessionEventsAndReportsAFailedSession) {
  ScriptedServerPeer peer;
  peer.on_call([&](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.path == "/sessions/5") {
      peer.emit(pc::Reply{call.id, 200, "{\"id\":5,\"state\":\"starting\",\"kind\":\"pyspark\"}"});
      peer.emit_event(5, 1, "session", "{\"id\":5,\"state\":\"idle\",\"kind\":\"pyspark\"}");
      return std::nullopt;
    }
    if (call.path == "/sessions/6") {
      peer.emit(pc::Reply{call.id, 200, "{\"id\":6,\"state\":\"starting\",\"kind\":\"pyspark\"}"});
      peer.emit_event(6, 1, "session", "{\"id\":6,\"state\":\"error\",\"kind\":\"pyspark\"}");
      return std::nullopt;
    }
    return pc::Reply{0, 404, "{\"msg\":\"unexpected\"}"};
  });
  Client client(options_for(peer));
  auto idle = client.wait_for_idle(5, kWait);
  ASSERT_TRUE(idle) << idle.error().message;
  EXPECT_EQ(idle->state, "idle");
  auto failed = client.wait_for_idle(6, kWait);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, "session_failed");
}

TEST(ClientLibrary, ReassemblesAReplySplitIntoParts) {
  ScriptedServerPeer peer;
  std::string big(700'000, 'x');
  peer.on_call([&](const pc::Call&) -> std::optional<pc::Reply> {
    return pc::Reply{0, 200, "{\"data\":\"" + big + "\"}"};  // > kMaxPartBytes: sent as parts
  });
  Client client(options_for(peer));
  auto response = client.call("GET", "/sessions/1/statements/0");
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->body_json, "{\"data\":\"" + big + "\"}");
}

TEST(ClientLibrary, ManyThreadsCallAtOnceAndEachGetsItsOwnReply) {
  ScriptedServerPeer peer;
  peer.on_call([](const pc::Call& call) -> std::optional<pc::Reply> {
    return pc::Reply{0, 200, "{\"path\":\"" + call.path + "\"}"};
  });
  Client client(options_for(peer));
  constexpr int kThreads = 8;
  constexpr int kCalls = 50;
  std::atomic<int> matched{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string path = "/sessions/" + std::to_string(t) + "/statements/" + std::to_string(i);
        auto response = client.call("GET", path);
        if (response && response->body_json == "{\"path\":\"" + path + "\"}") ++matched;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(matched.load(), kThreads * kCalls);
}

TEST(ClientLibrary, AfterThePeerRestartsTheClientSaysHelloAndResubscribesSinceTheLastSeq) {
  ScriptedServerPeer peer(/*heartbeat_ms=*/50);
  Client client(options_for(peer));
  Inbox<Event> events;
  auto subscription = client.subscribe(1, [&](const Event& e) { events.add(e); });
  ASSERT_TRUE(subscription) << subscription.error().message;
  for (int seq = 1; seq <= 3; ++seq) {
    peer.emit_event(1, seq, "session", "{\"id\":1,\"state\":\"busy\"}");
  }
  ASSERT_TRUE(events.wait_for_count(3));

  peer.restart("peer-2");  // the next ping is answered with hello_required
  ASSERT_TRUE(peer.wait_until([](const std::vector<pc::Message>& messages) {
    for (const auto& m : messages) {
      auto* s = std::get_if<pc::Subscribe>(&m);
      if (s && s->session == 1 && s->since == 3) return true;
    }
    return false;
  })) << "no subscribe with since 3 after the restart";

  // A replayed event is not delivered twice; the next one is.
  peer.emit_event(1, 3, "session", "{\"id\":1,\"state\":\"busy\"}");
  peer.emit_event(1, 4, "session", "{\"id\":1,\"state\":\"idle\"}");
  ASSERT_TRUE(events.wait_for_count(4));
  auto seen = events.items();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[3].seq, 4);
  EXPECT_NE(seen[3].body_json.find("idle"), std::string::npos);

  // Calls work again after the new welcome.
  peer.on_call([](const pc::Call&) -> std::optional<pc::Reply> {
    return pc::Reply{0, 200, "{}"};
  });
  auto response = client.call("GET", "/version");
  EXPECT_TRUE(response);
}

TEST(ClientLibrary, OverrunMakesTheClientResubscribeEverySubscriptionWithSince) {
  ScriptedServerPeer peer(/*heartbeat_ms=*/50);
  Client client(options_for(peer));
  Inbox<Event> all_events;
  auto all = client.subscribe(std::nullopt, [&](const Event& e) { all_events.add(e); });
  ASSERT_TRUE(all);
  peer.emit_event(2, 1, "statement", statement_json(0, "running", 0));
  peer.emit_event(2, 2, "statement", statement_json(0, "running", 0.5));
  peer.emit_event(3, 0, "log", "{\"lines\":[\"hello\"]}");
  ASSERT_TRUE(all_events.wait_for_count(3));

  peer.overrun_next();
  ASSERT_TRUE(peer.wait_until([](const std::vector<pc::Message>& messages) {
    bool all_again = false, session_since = false;
    int all_count = 0;
    for (const auto& m : messages) {
      auto* s = std::get_if<pc::Subscribe>(&m);
      if (s == nullptr) continue;
      if (!s->session && ++all_count == 2) all_again = true;
      if (s->session == 2 && s->since == 2) session_since = true;
    }
    return all_again && session_since;
  })) << "no resubscription after the overrun";
  // Replays of delivered events are dropped; the log event (seq 0) is never deduplicated.
  peer.emit_event(2, 2, "statement", statement_json(0, "running", 0.5));
  peer.emit_event(2, 3, "statement", statement_json(0, "available", 1, "x"));
  peer.emit_event(3, 0, "log", "{\"lines\":[\"hello\"]}");
  ASSERT_TRUE(all_events.wait_for_count(5));
  auto seen = all_events.items();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[3].seq, 3);
  EXPECT_EQ(seen[4].kind, "log");
}

TEST(ClientLibrary, UploadsAFileInOrderedPartsThenAddsIt) {
  ScriptedServerPeer peer(/*heartbeat_ms=*/200, /*max_part_bytes=*/1000);
  peer.on_call([](const pc::Call& call) -> std::optional<pc::Reply> {
    if (call.path == "/sessions/5/upload-jar") return pc::Reply{0, 200, "null"};
    return pc::Reply{0, 404, "{\"msg\":\"unexpected\"}"};
  });
  auto path = std::filesystem::temp_directory_path() /
              ("hearth-client-upload-" + std::to_string(::getpid()) + ".jar");
  std::string content(3500, '\0');
  std::mt19937 random(7);
  for (auto& c : content) c = static_cast<char>(random());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  Client client(options_for(peer));
  auto added = client.add_jar(5, path);
  std::filesystem::remove(path);
  ASSERT_TRUE(added) << added.error().message;

  auto parts = peer.received_of<pc::Upload>();
  ASSERT_EQ(parts.size(), 4u);
  std::string joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].offset, static_cast<int64_t>(joined.size()));
    EXPECT_EQ(parts[i].upload, parts[0].upload);
    EXPECT_EQ(parts[i].name, path.filename().string());
    EXPECT_EQ(parts[i].last, i + 1 == parts.size());
    EXPECT_LE(parts[i].data.size(), 1000u);
    joined += parts[i].data;
  }
  EXPECT_EQ(joined, content);
  auto calls = peer.received_of<pc::Call>();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, "POST");
  EXPECT_EQ(calls[0].upload, std::optional<std::string>(parts[0].upload));

  // An unreadable file is the caller's error, and nothing is sent for it.
  auto missing = client.add_pyfile(5, "/nonexistent/hearth/nothing.py");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "bad_request");
}

TEST(ClientLibrary, ACallWithoutReplyEndsWithTimeout) {
  ScriptedServerPeer peer;
  peer.on_call([](const pc::Call&) -> std::optional<pc::Reply> { return std::nullopt; });
  Client client(options_for(peer, std::chrono::milliseconds(300)));
  auto start = Clock::now();
  auto response = client.call("GET", "/sessions/1");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, "timeout");
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(250));
}

TEST(ClientLibrary, DestroyingTheClientEndsOutstandingWaitsWithDisconnected) {
  ScriptedServerPeer peer;
  peer.on_call([](const pc::Call&) -> std::optional<pc::Reply> {
    return pc::Reply{0, 201, statement_json(0, "waiting", 0)};  // and never an event
  });
  std::future<Result<Statement>> future;
  {
    Client client(options_for(peer));
    future = client.run_async(1, "1+1", std::nullopt, [](const Statement&) {});
    ASSERT_TRUE(peer.wait_until([](const std::vector<pc::Message>& messages) {
      for (const auto& m : messages) {
        if (std::holds_alternative<pc::Call>(m)) return true;
      }
      return false;
    }));
  }
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  auto statement = future.get();
  ASSERT_FALSE(statement);
  EXPECT_EQ(statement.error().code, "disconnected");
}

TEST(ClientLibrary, ACallWithoutServerTimesOutAndAMalformedAddressThrows) {
  ClientOptions options;
  {
    // A port that was bound a moment ago and is closed now: nobody answers.
    ScriptedServerPeer gone;
    options.server = gone.address();
  }
  options.request_timeout = std::chrono::milliseconds(200);
  Client client(options);
  auto response = client.call("GET", "/version");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, "timeout");
  ClientOptions malformed;
  malformed.server = "no-port-here";
  EXPECT_THROW({ Client bad(malformed); }, std::invalid_argument);
}

}  // namespace
}  // namespace hearth::clients
