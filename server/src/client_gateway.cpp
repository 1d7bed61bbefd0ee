#include "hearth/server/client_gateway.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "hearth/protocol/client_codec.hpp"
#include "hearth/server/livy_json.hpp"
#include "hearth/session/port_holder.hpp"

namespace hearth::server {
namespace {

namespace wire = protocol::client;
using Clock = std::chrono::steady_clock;
using Change = session::SessionManager::Change;

constexpr std::size_t kMaxUploadsPerClient = 4;
constexpr std::size_t kMaxUploadNameBytes = 128;
constexpr std::size_t kMaxPendingLogLines = 1000;  // per driver, between two event-thread passes
constexpr std::size_t kLogTailLines = 10;           // the log lines a session event carries
// What waits for one client beyond ZeroMQ's own queue before the client counts as overrun.
constexpr std::size_t kMaxBacklogBytes = 64u << 20;
// How often a client's backlog is retried (ZeroMQ does not say when a ROUTER peer has room).
constexpr std::chrono::milliseconds kBacklogRetry{5};

// A wake-up that any thread can signal and a ZeroMQ poll can wait on (an eventfd).
class Wakeup {
 public:
  Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~Wakeup() { ::close(fd_); }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  void signal() {
    uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }
  void drain() {
    uint64_t value = 0;
    (void)!::read(fd_, &value, sizeof value);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// What the I/O thread sends: an encoded message for one client. kReplay is a stored event sent
// because the client subscribed with `since`. Events of an overrun client are dropped; kDropped
// tells the I/O thread the event thread has forgotten the client's
// subscriptions (everything it queued for the client before is ahead of it).
struct Outgoing {
  enum class Kind { kReply, kEvent, kReplay, kDropped };
  Kind kind = Kind::kReply;
  std::string client;
  wire::Frames frames;
};

// Work for the event thread besides changes.
struct SubscriptionWork {
  enum class Kind { kSubscribe, kUnsubscribe, kDropClient };
  Kind kind = Kind::kSubscribe;
  std::string client;
  int64_t request_id = 0;
  std::optional<int64_t> session;
  std::optional<int64_t> since;
};

struct CallWork {
  std::string client;
  int64_t request_id = 0;
  ApiRequest request;
};

wire::Frames reply_frames(int64_t id, int status, std::string body_json) {
  return wire::encode(wire::Reply{id, status, body_json.empty() ? "null" : std::move(body_json)});
}

wire::Frames error_frames(std::optional<int64_t> id, std::string code, std::string message) {
  return wire::encode(wire::ErrorMessage{id, std::move(code), std::move(message)});
}

}  // namespace

struct ClientGateway::Impl {
  Impl(session::SessionManager& s, ClientGatewayOptions o)
      : sessions(s), options(std::move(o)), api(s, options.api),
        server_id(boost::uuids::to_string(boost::uuids::random_generator()())) {}

  session::SessionManager& sessions;
  const ClientGatewayOptions options;
  Api api;
  const std::string server_id;
  std::string bound_endpoint;
  bool serving = false;

  // ---- shared between threads ----
  Wakeup io_wakeup;
  std::atomic<bool> stopping{false};

  // The I/O thread's inbox from the workers and the event thread. The I/O thread never blocks
  // while sending, so it drains this as fast as it is filled.
  std::mutex outbox_mutex;
  std::deque<Outgoing> outbox;

  void post(Outgoing out) {
    {
      std::lock_guard lock(outbox_mutex);
      outbox.push_back(std::move(out));
    }
    io_wakeup.signal();
  }

  // The event thread's inputs. Changes are coalesced per resource (several changes of one
  // statement before the thread gets to it become one event with its latest state), which also
  // bounds the queue by the number of live resources.
  std::mutex event_mutex;
  std::condition_variable event_cv;
  using ChangeKey = std::tuple<int, int64_t, int64_t>;  // kind, session, item
  std::deque<ChangeKey> change_order;
  std::set<ChangeKey> pending_changes;
  std::map<std::string, std::vector<std::string>> pending_logs;  // driver → lines
  std::deque<SubscriptionWork> subscription_work;
  bool event_stopping = false;

  void on_change(Change change) {
    std::lock_guard lock(event_mutex);
    if (event_stopping) return;
    if (change.kind == Change::Kind::kDriverLog) {
      auto& lines = pending_logs[change.driver_id];
      for (auto& line : change.lines) lines.push_back(std::move(line));
      if (lines.size() > kMaxPendingLogLines) {
        lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(kMaxPendingLogLines));
      }
    } else {
      ChangeKey key{static_cast<int>(change.kind), change.session_id, change.item_id};
      if (pending_changes.insert(key).second) change_order.push_back(key);
    }
    event_cv.notify_one();
  }

  void post_subscription_work(SubscriptionWork work) {
    {
      std::lock_guard lock(event_mutex);
      subscription_work.push_back(std::move(work));
    }
    event_cv.notify_one();
  }

  // Calls for the workers.
  std::mutex call_mutex;
  std::condition_variable call_cv;
  std::deque<CallWork> calls;
  bool calls_stopping = false;

  std::thread io_thread;
  std::thread event_thread;
  std::vector<std::thread> workers;

  // ---- owned by the I/O thread ----
  struct PendingUpload {
    std::string filename;
    std::string data;
    bool complete = false;
  };
  struct ClientState {
    std::optional<std::string> user;
    std::string name;
    Clock::time_point last_seen;
    int64_t next_ref = 1;
    std::map<std::string, PendingUpload> uploads;
    // Overrun: its events are dropped until it was told (error overrun) and the event thread
    // confirmed its subscriptions are gone; then it may subscribe again.
    bool overrun = false;
    bool overrun_told = false;
    bool drop_confirmed = false;
    // Messages ZeroMQ had no room for, in order, retried every kBacklogRetry. A replay (the
    // client asked for it, and it is bounded by what Redis keeps) may wait here as long as the
    // client keeps reading; live messages count against send_high_water_mark, all of them
    // against kMaxBacklogBytes.
    struct Queued {
      wire::Frames frames;
      bool live = true;
    };
    std::deque<Queued> backlog;
    std::size_t backlog_bytes = 0;
    std::size_t backlog_live = 0;
  };
  std::map<std::string, ClientState> clients;

  // ---- owned by the event thread ----
  struct Subscriber {
    bool all = false;
    std::set<int64_t> sessions;
    std::map<int64_t, int64_t> last_sent;  // per session: the newest seq sent
  };
  std::map<std::string, Subscriber> subscribers;

  // ================= I/O thread =================

  void io_loop(zmq::socket_t& socket) {
    auto next_expiry = Clock::now() + options.heartbeat;
    while (!stopping.load()) {
      zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, io_wakeup.fd(), ZMQ_POLLIN, 0}};
      bool backlogged = std::any_of(clients.begin(), clients.end(),
                                    [](const auto& entry) { return !entry.second.backlog.empty(); });
      try {
        zmq::poll(items, 2, backlogged ? kBacklogRetry : options.heartbeat);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      if (items[1].revents & ZMQ_POLLIN) io_wakeup.drain();
      // A bounded number of messages per pass, so the outbox is served under load too.
      for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN); ++i) {
        if (!receive_one(socket)) break;
      }
      send_outbox(socket);
      flush_backlogs(socket);
      if (Clock::now() >= next_expiry) {
        expire_clients();
        next_expiry = Clock::now() + options.heartbeat;
      }
    }
  }

  bool receive_one(zmq::socket_t& socket) {
    std::vector<zmq::message_t> frames;
    auto got = zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
    if (!got) return false;
    if (frames.size() < 2 || frames.size() > 3) return true;  // not a client-channel message: dropped
    std::string client = frames[0].to_string();
    std::string_view header(static_cast<const char*>(frames[1].data()), frames[1].size());
    std::optional<std::string_view> data;
    if (frames.size() == 3) data = std::string_view(static_cast<const char*>(frames[2].data()), frames[2].size());
    auto decoded = wire::decode(header, data);
    if (auto* bad = std::get_if<wire::DecodeError>(&decoded)) {
      std::cerr << "[hearth] client channel: dropped a bad frame: " << bad->error.message << "\n";
      send(socket, client, error_frames(bad->id_hint, "bad_frame", bad->error.message), true);
      return true;
    }
    handle(socket, client, std::get<wire::Message>(std::move(decoded)));
    return true;
  }

  void handle(zmq::socket_t& socket, const std::string& client, wire::Message message) {
    if (auto* hello = std::get_if<wire::Hello>(&message)) {
      if (std::find(hello->versions.begin(), hello->versions.end(), wire::kVersion) == hello->versions.end()) {
        send(socket, client, error_frames(std::nullopt, "unsupported_version",
                                          "no common client-channel version (server speaks 1)"), true);
        return;
      }
      // A hello again (a reconnect) starts over: subscriptions and uploads are dropped.
      if (clients.count(client)) post_subscription_work({SubscriptionWork::Kind::kDropClient, client, 0, {}, {}});
      auto& state = clients[client];
      state = ClientState{};
      state.user = hello->user;
      state.name = hello->client;
      state.last_seen = Clock::now();
      send(socket, client,
           wire::encode(wire::Welcome{wire::kVersion, server_id, options.heartbeat.count(),
                                      static_cast<int64_t>(wire::kMaxPartBytes)}),
           true);
      return;
    }
    auto known = clients.find(client);
    if (known == clients.end()) {
      send(socket, client, error_frames(request_id(message), "hello_required",
                                        "this server does not know the client: say hello (again)"), true);
      return;
    }
    ClientState& state = known->second;
    state.last_seen = Clock::now();
    if (state.overrun && !state.overrun_told) {
      state.overrun_told = true;
      send(socket, client, error_frames(std::nullopt, "overrun",
                                        "the client did not read its events fast enough; its subscriptions were "
                                        "dropped: subscribe again with since"), true);
      if (state.drop_confirmed) state.overrun = false;
    }
    std::visit([&](auto& m) { handle_known(socket, client, state, m); }, message);
  }

  static std::optional<int64_t> request_id(const wire::Message& message) {
    return std::visit(
        [](const auto& m) -> std::optional<int64_t> {
          if constexpr (requires { m.id; }) {
            if constexpr (std::is_same_v<std::decay_t<decltype(m.id)>, int64_t>) return m.id;
          }
          return std::nullopt;
        },
        message);
  }

  void handle_known(zmq::socket_t& socket, const std::string& client, ClientState&, const wire::Ping&) {
    send(socket, client, wire::encode(wire::Pong{server_id}), true);
  }

  void handle_known(zmq::socket_t& socket, const std::string& client, ClientState& state, wire::Call& call) {
    auto [path, query] = Api::split_target(call.path);
    CallWork work;
    work.client = client;
    work.request_id = call.id;
    work.request.method = call.method;
    work.request.path = std::move(path);
    work.request.query = std::move(query);
    work.request.body = call.body_json.value_or("");
    work.request.user = state.user;
    if (call.upload) {
      if (!Api::upload_field(work.request.path)) {
        send(socket, client, reply_frames(call.id, 400, render_message("'upload' is only for the upload-* operations")), true);
        return;
      }
      auto upload = state.uploads.find(*call.upload);
      if (upload == state.uploads.end() || !upload->second.complete) {
        send(socket, client, reply_frames(call.id, 400, render_message("no finished upload named '" + *call.upload + "'")), true);
        return;
      }
      work.request.file = UploadedFile{std::move(upload->second.filename), std::move(upload->second.data)};
      state.uploads.erase(upload);
    }
    {
      std::lock_guard lock(call_mutex);
      if (calls.size() < options.max_queued_calls) {
        calls.push_back(std::move(work));
        call_cv.notify_one();
        return;
      }
    }
    send(socket, client, reply_frames(call.id, 503, render_message("the server is busy; try again")), true);
  }

  void handle_known(zmq::socket_t& socket, const std::string& client, ClientState& state, wire::Upload& part) {
    auto answer = [&](int status, std::string body) { send(socket, client, reply_frames(part.id, status, std::move(body)), true); };
    if (part.upload.empty() || part.upload.size() > kMaxUploadNameBytes) {
      return answer(400, render_message("an upload name has 1 to 128 characters"));
    }
    auto it = state.uploads.find(part.upload);
    if (part.offset == 0) {
      if (it == state.uploads.end()) {
        auto finished = static_cast<std::size_t>(std::count_if(
            state.uploads.begin(), state.uploads.end(), [](const auto& u) { return u.second.complete; }));
        if (state.uploads.size() - finished >= kMaxUploadsPerClient) {
          return answer(400, render_message("too many unfinished uploads (at most 4 per client)"));
        }
        if (finished >= kMaxUploadsPerClient) {
          return answer(400, render_message("too many finished uploads not used yet (at most 4 per client)"));
        }
      }
      it = state.uploads.insert_or_assign(part.upload, PendingUpload{part.name, {}, false}).first;
    } else if (it == state.uploads.end() || it->second.complete ||
               static_cast<int64_t>(it->second.data.size()) != part.offset) {
      return answer(400, render_message("upload '" + part.upload + "': offset " + std::to_string(part.offset) +
                                        " does not follow the previous part"));
    }
    if (it->second.data.size() + part.data.size() > options.max_upload_bytes) {
      state.uploads.erase(it);
      return answer(413, render_message("upload larger than the server's limit of " +
                                        std::to_string(options.max_upload_bytes) + " bytes"));
    }
    it->second.data += part.data;
    it->second.complete = part.last;
    answer(200, render_upload_progress(part.upload, static_cast<int64_t>(it->second.data.size())));
  }

  void handle_known(zmq::socket_t&, const std::string& client, ClientState&, const wire::Subscribe& subscribe) {
    post_subscription_work({SubscriptionWork::Kind::kSubscribe, client, subscribe.id, subscribe.session, subscribe.since});
  }

  void handle_known(zmq::socket_t&, const std::string& client, ClientState&, const wire::Unsubscribe& unsubscribe) {
    post_subscription_work({SubscriptionWork::Kind::kUnsubscribe, client, unsubscribe.id, unsubscribe.session, {}});
  }

  // Messages only the server sends.
  template <typename M>
  void handle_known(zmq::socket_t& socket, const std::string& client, ClientState&, const M& message) {
    send(socket, client, error_frames(request_id(message), "bad_frame",
                                      std::string(wire::type_name(message)) + " is not a client message"), true);
  }

  void send_outbox(zmq::socket_t& socket) {
    std::deque<Outgoing> batch;
    {
      std::lock_guard lock(outbox_mutex);
      batch.swap(outbox);
    }
    for (auto& out : batch) {
      auto state = clients.find(out.client);
      if (out.kind == Outgoing::Kind::kDropped) {
        if (state != clients.end() && state->second.overrun) {
          state->second.drop_confirmed = true;
          if (state->second.overrun_told) state->second.overrun = false;
        }
        continue;
      }
      if (state == clients.end()) continue;  // forgotten meanwhile
      if (out.kind != Outgoing::Kind::kReply && state->second.overrun) continue;
      send(socket, out.client, std::move(out.frames), out.kind != Outgoing::Kind::kReplay);
    }
  }

  enum class SendResult { kSent, kFull, kGone };

  // One message, without blocking.
  SendResult send_now(zmq::socket_t& socket, const std::string& client, const wire::Frames& message) {
    try {
      auto first = socket.send(zmq::buffer(client), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      if (!first) return SendResult::kFull;
      // Once the routing frame is taken the rest of the message goes too.
      if (message.data) {
        socket.send(zmq::buffer(message.header), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(*message.data), zmq::send_flags::none);
      } else {
        socket.send(zmq::buffer(message.header), zmq::send_flags::none);
      }
      return SendResult::kSent;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return SendResult::kGone;
      throw;
    }
  }

  // Sends without blocking, split into parts when large. What does not fit waits in the
  // client's backlog; a client whose backlog grows past its limits is overrun; one that is gone
  // is forgotten. `live` is false for replayed events (see ClientState::backlog).
  void send(zmq::socket_t& socket, const std::string& client, wire::Frames frames, bool live) {
    auto state = clients.find(client);
    std::vector<wire::Frames> messages;
    if (frames.header.size() > wire::kMaxPartBytes) {
      int64_t ref = state != clients.end() ? state->second.next_ref++ : 1;
      for (auto& part : wire::split(frames.header, ref)) messages.push_back(wire::encode(part));
    } else {
      messages.push_back(std::move(frames));
    }
    if (state == clients.end()) {
      // An answer to a peer that never said hello: one try.
      for (const auto& message : messages) {
        if (send_now(socket, client, message) != SendResult::kSent) return;
      }
      return;
    }
    ClientState& target = state->second;
    for (auto& message : messages) {
      if (target.backlog.empty()) {
        auto sent = send_now(socket, client, message);
        if (sent == SendResult::kSent) continue;
        if (sent == SendResult::kGone) return forget(client);
      }
      target.backlog_bytes += message.header.size() + (message.data ? message.data->size() : 0);
      if (live) ++target.backlog_live;
      target.backlog.push_back({std::move(message), live});
    }
    if (target.backlog_live > static_cast<std::size_t>(options.send_high_water_mark) ||
        target.backlog_bytes > kMaxBacklogBytes) {
      overrun(client);
    }
  }

  void flush_backlogs(zmq::socket_t& socket) {
    std::vector<std::string> gone;
    for (auto& [client, state] : clients) {
      while (!state.backlog.empty()) {
        auto& front = state.backlog.front();
        auto sent = send_now(socket, client, front.frames);
        if (sent == SendResult::kFull) break;
        if (sent == SendResult::kGone) {
          gone.push_back(client);
          break;
        }
        state.backlog_bytes -= front.frames.header.size() + (front.frames.data ? front.frames.data->size() : 0);
        if (front.live) --state.backlog_live;
        state.backlog.pop_front();
      }
    }
    for (const auto& client : gone) forget(client);
  }

  void overrun(const std::string& client) {
    auto state = clients.find(client);
    if (state == clients.end() || state->second.overrun) return;
    std::cerr << "[hearth] client channel: client " << state->second.name
              << " does not read; its subscriptions are dropped\n";
    state->second.backlog.clear();
    state->second.backlog_bytes = 0;
    state->second.backlog_live = 0;
    state->second.overrun = true;
    state->second.overrun_told = false;
    state->second.drop_confirmed = false;
    post_subscription_work({SubscriptionWork::Kind::kDropClient, client, 0, {}, {}});
  }

  void forget(const std::string& client) {
    if (clients.erase(client)) post_subscription_work({SubscriptionWork::Kind::kDropClient, client, 0, {}, {}});
  }

  void expire_clients() {
    auto limit = Clock::now() - 3 * options.heartbeat;
    std::vector<std::string> gone;
    for (const auto& [id, state] : clients) {
      if (state.last_seen < limit) gone.push_back(id);
    }
    for (const auto& id : gone) forget(id);
  }

  // ================= workers =================

  void worker_loop() {
    for (;;) {
      CallWork work;
      {
        std::unique_lock lock(call_mutex);
        call_cv.wait(lock, [&] { return calls_stopping || !calls.empty(); });
        if (calls_stopping) return;
        work = std::move(calls.front());
        calls.pop_front();
      }
      auto response = api.handle(work.request);
      post(Outgoing{Outgoing::Kind::kReply, work.client,
                    reply_frames(work.request_id, response.status, std::move(response.body))});
    }
  }

  // ================= event thread =================

  void event_loop() {
    for (;;) {
      std::deque<SubscriptionWork> work;
      std::vector<ChangeKey> changes;
      std::map<std::string, std::vector<std::string>> logs;
      bool last_pass = false;
      {
        std::unique_lock lock(event_mutex);
        event_cv.wait(lock, [&] {
          return event_stopping || !subscription_work.empty() || !change_order.empty() || !pending_logs.empty();
        });
        // On stop, what is queued is still stored (e.g. the sessions the manager's stop marked
        // dead), so a client resuming later finds those events.
        last_pass = event_stopping;
        work.swap(subscription_work);
        changes.assign(change_order.begin(), change_order.end());
        change_order.clear();
        pending_changes.clear();
        logs.swap(pending_logs);
      }
      // Subscriptions first: a change that raced with a subscribe is then delivered to it live
      // (or skipped as already replayed, by last_sent).
      for (auto& item : work) handle_subscription_work(item);
      for (const auto& key : changes) publish_change(key);
      for (auto& [driver, lines] : logs) publish_log(driver, std::move(lines));
      if (last_pass) return;
    }
  }

  void handle_subscription_work(const SubscriptionWork& work) {
    switch (work.kind) {
      case SubscriptionWork::Kind::kDropClient:
        subscribers.erase(work.client);
        post(Outgoing{Outgoing::Kind::kDropped, work.client, {}});
        return;
      case SubscriptionWork::Kind::kUnsubscribe: {
        auto it = subscribers.find(work.client);
        if (it != subscribers.end()) {
          if (work.session) {
            it->second.sessions.erase(*work.session);
          } else {
            it->second.all = false;
          }
        }
        post(Outgoing{Outgoing::Kind::kReply, work.client, reply_frames(work.request_id, 200, render_subscription(work.session, 0))});
        return;
      }
      case SubscriptionWork::Kind::kSubscribe:
        subscribe(work);
        return;
    }
  }

  void subscribe(const SubscriptionWork& work) {
    auto reply = [&](int status, std::string body) {
      post(Outgoing{Outgoing::Kind::kReply, work.client, reply_frames(work.request_id, status, std::move(body))});
    };
    if (!work.session) {
      subscribers[work.client].all = true;
      return reply(200, render_subscription(std::nullopt, 0));
    }
    const int64_t session = *work.session;
    if (auto found = sessions.get_session(session); !found) {
      auto response = Api::error_response(found.error());
      return reply(response.status, response.body);
    }
    auto log = sessions.events_since(session, work.since.value_or(INT64_MAX));
    if (!log) {
      auto response = Api::error_response(log.error());
      return reply(response.status, response.body);
    }
    auto& subscriber = subscribers[work.client];
    subscriber.sessions.insert(session);
    int64_t& last_sent = subscriber.last_sent[session];
    reply(200, render_subscription(session, log->last_seq));
    if (!work.since) {
      last_sent = std::max(last_sent, log->last_seq);
      return;
    }
    // Replay. Events after `since` that are no longer stored: say so first.
    int64_t oldest = log->events.empty() ? log->last_seq + 1 : log->events.front().seq;
    if (*work.since + 1 < oldest && log->last_seq > *work.since) {
      post_event(work.client, wire::Event{session, 0, "gap", "{\"oldest\":" + std::to_string(oldest) + "}"},
                 Outgoing::Kind::kReplay);
    }
    last_sent = *work.since;
    for (auto& event : log->events) {
      if (event.seq <= last_sent) continue;
      post_event(work.client, wire::Event{session, event.seq, event.kind, std::move(event.body_json)},
                 Outgoing::Kind::kReplay);
      last_sent = event.seq;
    }
  }

  void post_event(const std::string& client, const wire::Event& event, Outgoing::Kind kind) {
    post(Outgoing{kind, client, wire::encode(event)});
  }

  void publish_change(const ChangeKey& key) {
    auto [kind_number, session, item] = key;
    auto kind = static_cast<Change::Kind>(kind_number);
    std::string body;
    std::string kind_name;
    if (kind == Change::Kind::kSession) {
      auto record = sessions.get_session(session);
      if (!record) return;  // deleted meanwhile: its event log went with it
      auto lines = sessions.session_log(session);
      if (lines.size() > kLogTailLines) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(kLogTailLines));
      body = render_session(*record, lines);
      kind_name = "session";
    } else if (kind == Change::Kind::kStatement) {
      auto record = sessions.get_statement(session, item);
      if (!record) return;
      body = render_statement(*record);
      kind_name = "statement";
    } else {
      auto record = sessions.get_job(session, item);
      if (!record) return;
      body = render_job(*record);
      kind_name = "job";
    }
    auto seq = sessions.append_event(session, kind_name, body);
    if (!seq) {
      // Not stored, so not pushed either: a client must be able to get every event it was
      // pushed again after a reconnect. The resource itself is still readable with a call.
      std::cerr << "[hearth] client channel: cannot store an event of session " << session << ": "
                << seq.error().message << "\n";
      return;
    }
    std::optional<wire::Frames> frames;
    for (auto& [client, subscriber] : subscribers) {
      if (!subscriber.all && !subscriber.sessions.count(session)) continue;
      int64_t& last_sent = subscriber.last_sent[session];
      if (*seq <= last_sent) continue;
      last_sent = *seq;
      if (!frames) frames = wire::encode(wire::Event{session, *seq, kind_name, body});
      post(Outgoing{Outgoing::Kind::kEvent, client, *frames});
    }
  }

  void publish_log(const std::string& driver_id, std::vector<std::string> lines) {
    if (subscribers.empty() || lines.empty()) return;
    auto driver = sessions.get_driver(driver_id);
    if (!driver) return;
    std::string body = render_log_lines(lines);
    for (int64_t session : driver->sessions) {
      std::optional<wire::Frames> frames;
      for (auto& [client, subscriber] : subscribers) {
        if (!subscriber.all && !subscriber.sessions.count(session)) continue;
        if (!frames) frames = wire::encode(wire::Event{session, 0, "log", body});
        post(Outgoing{Outgoing::Kind::kEvent, client, *frames});
      }
    }
  }
};

ClientGateway::ClientGateway(session::SessionManager& sessions, ClientGatewayOptions options)
    : impl_(std::make_unique<Impl>(sessions, std::move(options))) {
  sessions.set_change_observer([impl = impl_.get()](Change change) { impl->on_change(std::move(change)); });
}

ClientGateway::~ClientGateway() { stop(); }

Result<void> ClientGateway::start() {
  auto& impl = *impl_;
  // The socket is created here and handed to the I/O thread, which alone uses it from then on.
  auto context = std::make_shared<zmq::context_t>(1);
  auto socket = std::make_shared<zmq::socket_t>(*context, zmq::socket_type::router);
  try {
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::router_mandatory, 1);
    socket->set(zmq::sockopt::sndhwm, impl.options.send_high_water_mark);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxHeaderBytes + wire::kMaxPartBytes + 1024));
    socket->bind("tcp://" + impl.options.host + ":" +
                 (impl.options.port == 0 ? std::string("*") : std::to_string(impl.options.port)));
    impl.bound_endpoint = socket->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return make_error("bind_failed", session::cannot_listen_message(impl.options.host, impl.options.port,
                                                                    "the client channel", e.what()));
  }
  impl.serving = true;
  impl.event_thread = std::thread([&impl] { impl.event_loop(); });
  for (int i = 0; i < impl.options.call_threads; ++i) impl.workers.emplace_back([&impl] { impl.worker_loop(); });
  impl.io_thread = std::thread([&impl, context, socket] {
    try {
      impl.io_loop(*socket);
    } catch (const std::exception& e) {
      std::cerr << "[hearth] client channel: I/O thread ended: " << e.what() << "\n";
    }
    socket->close();
  });
  return Ok{};
}

std::string ClientGateway::endpoint() const { return impl_->bound_endpoint; }

void ClientGateway::stop_serving() {
  auto& impl = *impl_;
  if (!impl.serving) return;
  impl.serving = false;
  impl.stopping = true;
  impl.io_wakeup.signal();
  if (impl.io_thread.joinable()) impl.io_thread.join();
  {
    std::lock_guard lock(impl.call_mutex);
    impl.calls_stopping = true;
  }
  impl.call_cv.notify_all();
  for (auto& worker : impl.workers) worker.join();
  impl.workers.clear();
}

void ClientGateway::stop() {
  stop_serving();
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.event_mutex);
    impl.event_stopping = true;
  }
  impl.event_cv.notify_all();
  if (impl.event_thread.joinable()) impl.event_thread.join();
}

}  // namespace hearth::server
