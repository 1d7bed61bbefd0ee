// hearth::clients::Client: the client channel of protocol/PROTOCOL.md over one DEALER socket.
//
// Threads and hand-offs:
// - The I/O thread owns the socket and every piece of state marked "I/O thread only" below.
//   Other threads never touch it: they post closures to `inbox_` (under `inbox_mutex_`) and wake
//   the I/O thread through an eventfd that it polls beside the socket. Request completions
//   (`ReplyCallback`) and waiter continuations run on the I/O thread and must not block.
// - The callback thread (CallbackQueue) runs user callbacks in arrival order. The I/O thread never
//   waits for it: when its queue is full, events for user subscriptions are dropped and the
//   subscriptions are resynchronised with `since` once it drained (see deliver_to_users).
// - Synchronous calls wait on a std::future that the I/O thread completes; the I/O thread
//   enforces every request's deadline, so they always return.
//
// Reconnects (documented choice): after a re-welcome (server restart, hello_required, silence),
// every active subscription is re-sent with since = the last seq delivered; in-flight GETs,
// subscribes and unsubscribes are re-sent (idempotent); requests the server answered with error
// hello_required / overrun are re-sent (the server did not take them); any other request whose
// reply was lost ends with "timeout" at its deadline (re-sending a POST could run it twice).

#include "hearth/clients/client.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iostream>
#include <list>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <zmq.hpp>

#include "callback_queue.hpp"
#include "hearth/protocol/client_codec.hpp"
#include "reply_errors.hpp"
#include "resource_json.hpp"

namespace hearth::clients {

namespace pc = hearth::protocol::client;
using Clock = std::chrono::steady_clock;

// ---- plain types ----

bool Statement::finished() const {
  return state == "available" || state == "error" || state == "cancelled";
}

bool Statement::succeeded() const {
  return state == "available" && output.has_value() && output->status == "ok";
}

std::string_view to_string(JobStatus status) {
  switch (status) {
    case JobStatus::kStart: return "START";
    case JobStatus::kSuccess: return "SUCCESS";
    case JobStatus::kFailed: return "FAILED";
    case JobStatus::kKilled: return "KILLED";
  }
  return "START";
}

JobStatus Job::status() const {
  if (state == "succeeded") return JobStatus::kSuccess;
  if (state == "failed") return JobStatus::kFailed;
  if (state == "cancelled") return JobStatus::kKilled;
  return JobStatus::kStart;
}

namespace {

// Droppable callbacks waiting on the callback thread before events are dropped and resynced.
constexpr std::size_t kCallbackQueueCapacity = 10'000;
// Statement / job states remembered per watched session (events seen before their submit's
// reply, or before a waiter asked).
constexpr std::size_t kCachedPerSession = 1000;
// Until the first welcome: the heartbeat the protocol assumes.
constexpr int64_t kDefaultHeartbeatMs = 2000;
// How many messages the I/O thread reads before it looks at its inbox again.
constexpr int kReadBatch = 256;

bool session_ended(const std::string& state) {
  return state == "error" || state == "dead" || state == "killed" || state == "success";
}

bool job_finished(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

std::string parse_endpoint(const std::string& server) {
  std::string rest = server;
  if (rest.starts_with("tcp://")) rest = rest.substr(6);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    throw std::invalid_argument("hearth client: server must be HOST:PORT, got '" + server + "'");
  }
  std::string port = rest.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      port.size() > 5 || std::stoi(port) > 65535) {
    throw std::invalid_argument("hearth client: bad port in '" + server + "'");
  }
  return "tcp://" + rest;
}

std::string session_path(int64_t session_id) { return "/sessions/" + std::to_string(session_id); }

void log_warning(const std::string& text) { std::cerr << "hearth-clients: " << text << "\n"; }

Error disconnected() { return make_error("disconnected", "the client is closing"); }

struct ReplyValue {
  int64_t status = 0;
  std::string body_json;
};
using ReplyCallback = std::function<void(Result<ReplyValue>)>;

int64_t& id_of(pc::Message& message) {
  return std::visit(
      [](auto& m) -> int64_t& {
        if constexpr (requires { m.id; }) {
          if constexpr (std::is_same_v<decltype(m.id), int64_t>) return m.id;
        }
        throw std::logic_error("message without a correlation id");
      },
      message);
}

}  // namespace

struct Client::Impl {
  explicit Impl(ClientOptions options);
  ~Impl() { stop(); }

  // ---- any thread ----
  // Runs `task` on the I/O thread; false when the client is closing (task dropped).
  bool post(std::function<void()> task);
  // Sends a request and waits for its reply (or its deadline).
  Result<ReplyValue> request(pc::Message message);
  // request() of a call; a non-2xx status becomes the error table's Error.
  Result<ReplyValue> call_ok(std::string method, std::string path,
                             std::optional<std::string> body = std::nullopt,
                             std::optional<std::string> upload = std::nullopt);
  Result<void> upload_and_add(int64_t session_id, const std::filesystem::path& file,
                              const std::string& endpoint);
  bool wait_welcomed(Clock::time_point deadline);
  // run_async / run: subscribe, submit, complete on the final statement event.
  std::future<Result<Statement>> run_statement(int64_t session_id, std::string code,
                                               std::optional<std::string> kind,
                                               std::function<void(const Statement&)> on_update,
                                               Clock::time_point deadline);
  void stop();

  // ---- I/O thread only ----
  void io_main();
  void loop_once();
  void read_socket();
  void on_frames(std::string_view header, std::optional<std::string_view> data);
  void handle(pc::Message message);
  void on_welcome(const pc::Welcome& welcome);
  void on_error(const pc::ErrorMessage& error);
  void on_event(pc::Event event);
  void say_hello();
  enum class Sent { kOk, kFull, kInvalid };
  Sent transmit(const pc::Message& message);
  void send_request(pc::Message message, Clock::time_point deadline, ReplyCallback done);
  void transmit_request(int64_t id);
  void complete(int64_t id, Result<ReplyValue> result);
  void expire(Clock::time_point now);
  Clock::time_point next_wakeup(Clock::time_point now) const;
  void shut_down_io();

  // subscriptions at the server, shared by user subscriptions and internal watches
  using SubKey = std::optional<int64_t>;
  void acquire_sub(SubKey key, std::function<void(Result<void>)> ready);
  void release_sub(SubKey key);
  // Re-sends every active subscription with since; returns how many subscribes it sent.
  int resubscribe_all(std::function<void()> each_done = {});
  void send_subscribe(SubKey key, std::optional<int64_t> since, std::function<void()> done);
  void deliver_to_users(const pc::Event& event, bool ordered);
  void maybe_resync_delivery();

  // watches: per-session event consumers behind run_async / wait_*
  struct StatementWaiter {
    uint64_t serial;
    int64_t statement_id;
    std::function<void(const Statement&)> on_update;
    std::function<void(Result<Statement>)> done;
    Clock::time_point deadline;
  };
  struct JobWaiter {
    uint64_t serial;
    int64_t job_id;
    std::function<void(Result<Job>)> done;
    Clock::time_point deadline;
  };
  struct IdleWaiter {
    uint64_t serial;
    std::function<void(Result<Session>)> done;
    Clock::time_point deadline;
  };
  struct Watch {
    int refs = 0;
    bool ready = false;
    std::vector<std::function<void(Result<void>)>> on_ready;
    std::map<int64_t, Statement> statements;
    std::map<int64_t, Job> jobs;
    std::list<StatementWaiter> statement_waiters;
    std::list<JobWaiter> job_waiters;
    std::list<IdleWaiter> idle_waiters;
  };
  void acquire_watch(int64_t session, std::function<void(Result<void>)> ready);
  void release_watch(int64_t session);
  void watch_event(const pc::Event& event);
  void finish_statement(int64_t session, uint64_t serial, Result<Statement> result);
  void finish_job(int64_t session, uint64_t serial, Result<Job> result);
  void finish_idle(int64_t session, uint64_t serial, Result<Session> result);
  void check_statement(int64_t session, uint64_t serial, int64_t statement_id, bool session_over);
  void check_job(int64_t session, uint64_t serial, int64_t job_id, bool session_over);
  void check_idle(int64_t session, uint64_t serial);
  void recheck_watch(int64_t session, bool session_over);
  void add_statement_waiter(int64_t session, int64_t statement_id,
                            std::function<void(const Statement&)> on_update,
                            std::function<void(Result<Statement>)> done, Clock::time_point deadline,
                            bool check_now);
  std::string statement_path(int64_t session, int64_t id) const {
    return "/sessions/" + std::to_string(session) + "/statements/" + std::to_string(id);
  }

  const ClientOptions options_;
  const std::string endpoint_;
  std::atomic<int64_t> max_part_bytes_{static_cast<int64_t>(pc::kMaxPartBytes)};
  std::atomic<uint64_t> upload_counter_{0};
  std::atomic<uint64_t> next_local_sub_{1};

  // Guards inbox_, inbox_closed_ and stop_requested_. Never held while running a task.
  std::mutex inbox_mutex_;
  std::deque<std::function<void()>> inbox_;
  bool inbox_closed_ = false;
  bool stop_requested_ = false;
  int wake_fd_ = -1;

  // Set by the I/O thread after the first welcome; upload_and_add waits for max_part_bytes.
  std::mutex welcome_mutex_;
  std::condition_variable welcome_cv_;
  bool welcomed_once_ = false;

  zmq::context_t context_{1};
  detail::CallbackQueue callbacks_{kCallbackQueueCapacity};
  std::thread io_thread_;

  // ---- I/O thread only ----
  std::optional<zmq::socket_t> socket_;
  bool closing_ = false;
  bool welcomed_ = false;
  bool ever_welcomed_ = false;
  bool silent_ = false;
  std::string server_id_;
  int64_t heartbeat_ms_ = kDefaultHeartbeatMs;
  Clock::time_point last_recv_{};
  Clock::time_point last_ping_{};
  Clock::time_point last_hello_{};
  int64_t next_id_ = 1;
  uint64_t next_serial_ = 1;
  struct PendingRequest {
    pc::Message message;
    Clock::time_point deadline;
    ReplyCallback done;
    bool sent = false;
  };
  std::map<int64_t, PendingRequest> requests_;
  std::deque<int64_t> unsent_;  // ids held until the next welcome
  pc::PartAssembler assembler_{64u << 20};

  struct ServerSub {
    int refs = 0;
    bool active = false;
    std::vector<std::function<void(Result<void>)>> waiting;
    std::set<int64_t> resync_sessions;  // (all-sessions key) per-session since-subscriptions
  };
  std::map<SubKey, ServerSub> subs_;
  struct LocalSub {
    SubKey session;
    std::shared_ptr<std::function<void(const Event&)>> on_event;
  };
  std::map<uint64_t, LocalSub> local_subs_;
  // Highest seq processed for watches, and highest seq handed to user subscriptions.
  std::map<int64_t, int64_t> seen_seq_;
  std::map<int64_t, int64_t> delivered_seq_;
  bool delivery_lagging_ = false;
  int resync_outstanding_ = 0;
  std::set<int64_t> strict_sessions_;
  std::map<int64_t, Watch> watches_;
};

// ------------------------------------------------------------------------------------------
// construction, posting, stopping

Client::Impl::Impl(ClientOptions options)
    : options_(std::move(options)), endpoint_(parse_endpoint(options_.server)) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("hearth client: eventfd failed");
  io_thread_ = std::thread([this] { io_main(); });
}

bool Client::Impl::post(std::function<void()> task) {
  {
    std::lock_guard lock(inbox_mutex_);
    if (inbox_closed_) return false;
    inbox_.push_back(std::move(task));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
  return true;
}

void Client::Impl::stop() {
  {
    std::lock_guard lock(inbox_mutex_);
    if (stop_requested_) return;
    stop_requested_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
  // Lifecycle: the I/O thread fails every request and waiter ("disconnected") before it ends;
  // their completions may sit in the callback queue, which stop() then drains.
  if (io_thread_.joinable()) io_thread_.join();
  callbacks_.stop();
  ::close(wake_fd_);
}

Result<ReplyValue> Client::Impl::request(pc::Message message) {
  auto promise = std::make_shared<std::promise<Result<ReplyValue>>>();
  auto future = promise->get_future();
  auto deadline = Clock::now() + options_.request_timeout;
  bool posted = post([this, message = std::move(message), deadline, promise]() mutable {
    send_request(std::move(message), deadline,
                 [promise](Result<ReplyValue> result) { promise->set_value(std::move(result)); });
  });
  if (!posted) return disconnected();
  return future.get();
}

Result<ReplyValue> Client::Impl::call_ok(std::string method, std::string path,
                                         std::optional<std::string> body,
                                         std::optional<std::string> upload) {
  auto reply = request(pc::Call{0, std::move(method), std::move(path), std::move(body),
                                std::move(upload)});
  if (!reply) return reply.error();
  if (!detail::is_success(reply->status)) {
    return detail::error_for_reply(reply->status, reply->body_json);
  }
  return reply;
}

bool Client::Impl::wait_welcomed(Clock::time_point deadline) {
  std::unique_lock lock(welcome_mutex_);
  return welcome_cv_.wait_until(lock, deadline, [&] { return welcomed_once_; });
}

// ------------------------------------------------------------------------------------------
// the I/O loop

void Client::Impl::io_main() {
  try {
    socket_.emplace(context_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->set(zmq::sockopt::sndhwm, 10'000);
    socket_->set(zmq::sockopt::rcvhwm, 10'000);
    socket_->connect(endpoint_);
    last_recv_ = Clock::now();
    say_hello();
    while (true) {
      {
        std::lock_guard lock(inbox_mutex_);
        if (stop_requested_) break;
      }
      loop_once();
    }
  } catch (const std::exception& e) {
    log_warning(std::string("I/O thread failed: ") + e.what());
  }
  shut_down_io();
}

void Client::Impl::loop_once() {
  auto now = Clock::now();
  auto wake = next_wakeup(now);
  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now);
  if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
  zmq_pollitem_t items[] = {{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0},
                            {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  zmq::poll(items, 2, timeout);

  if (items[1].revents & ZMQ_POLLIN) {
    uint64_t count = 0;
    [[maybe_unused]] auto got = ::read(wake_fd_, &count, sizeof count);
  }
  // Tasks first, then the socket: a request posted before a reply arrived is registered.
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(inbox_mutex_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
  read_socket();

  now = Clock::now();
  expire(now);
  auto heartbeat = std::chrono::milliseconds(heartbeat_ms_);
  if (welcomed_) {
    if (now - last_ping_ >= heartbeat) {
      transmit(pc::Ping{});
      last_ping_ = now;
    }
    if (!silent_ && now - last_recv_ > 3 * heartbeat) silent_ = true;
  } else if (now - last_hello_ >= 3 * heartbeat) {
    say_hello();  // the server may have lost our hello (or is not up yet)
  }
  maybe_resync_delivery();
}

Clock::time_point Client::Impl::next_wakeup(Clock::time_point now) const {
  auto heartbeat = std::chrono::milliseconds(heartbeat_ms_);
  auto wake = welcomed_ ? last_ping_ + heartbeat : last_hello_ + 3 * heartbeat;
  // Coarse tick for silence detection and delivery resync.
  wake = std::min(wake, now + std::chrono::milliseconds(100));
  for (const auto& [id, pending] : requests_) wake = std::min(wake, pending.deadline);
  for (const auto& [session, watch] : watches_) {
    for (const auto& w : watch.statement_waiters) wake = std::min(wake, w.deadline);
    for (const auto& w : watch.job_waiters) wake = std::min(wake, w.deadline);
    for (const auto& w : watch.idle_waiters) wake = std::min(wake, w.deadline);
  }
  return wake;
}

void Client::Impl::read_socket() {
  for (int i = 0; i < kReadBatch; ++i) {
    zmq::message_t header;
    if (!socket_->recv(header, zmq::recv_flags::dontwait)) return;
    std::optional<zmq::message_t> data;
    bool extra = false;
    if (header.more()) {
      data.emplace();
      // The frames of one message arrive together: this does not block.
      (void)socket_->recv(*data);
      while (data->more()) {
        zmq::message_t drop;
        (void)socket_->recv(drop);
        extra = true;
        if (!drop.more()) break;
      }
    }
    last_recv_ = Clock::now();
    if (silent_) {
      // The server answers again after a silence: it may have forgotten us (or restarted).
      silent_ = false;
      say_hello();
    }
    if (extra) {
      log_warning("dropped a message with more than two frames");
      continue;
    }
    std::optional<std::string_view> data_view;
    if (data) data_view = data->to_string_view();
    on_frames(header.to_string_view(), data_view);
  }
}

void Client::Impl::on_frames(std::string_view header, std::optional<std::string_view> data) {
  auto decoded = pc::decode(header, data);
  if (auto* failure = std::get_if<pc::DecodeError>(&decoded)) {
    log_warning("dropped an undecodable message: " + failure->error.message);
    return;
  }
  handle(std::get<pc::Message>(std::move(decoded)));
}

void Client::Impl::handle(pc::Message message) {
  if (auto* welcome = std::get_if<pc::Welcome>(&message)) {
    on_welcome(*welcome);
  } else if (auto* pong = std::get_if<pc::Pong>(&message)) {
    if (!server_id_.empty() && pong->server_id != server_id_) say_hello();
  } else if (auto* reply = std::get_if<pc::Reply>(&message)) {
    complete(reply->id, ReplyValue{reply->status, std::move(reply->body_json)});
  } else if (auto* event = std::get_if<pc::Event>(&message)) {
    on_event(std::move(*event));
  } else if (auto* error = std::get_if<pc::ErrorMessage>(&message)) {
    on_error(*error);
  } else if (auto* part = std::get_if<pc::Part>(&message)) {
    auto fed = assembler_.feed(*part);
    if (!fed) {
      log_warning("dropped a split message: " + fed.error().message);
      return;
    }
    if (!fed->has_value()) return;
    auto decoded = pc::decode(**fed, std::nullopt);
    auto* whole = std::get_if<pc::Message>(&decoded);
    if (whole == nullptr || !(std::holds_alternative<pc::Reply>(*whole) ||
                              std::holds_alternative<pc::Event>(*whole))) {
      log_warning("dropped a split message that is not a reply or an event");
      return;
    }
    handle(std::move(*whole));
  } else {
    log_warning(std::string("dropped an unexpected '") + std::string(pc::type_name(message)) +
                "' from the server");
  }
}

void Client::Impl::say_hello() {
  // Once welcomed, requests wait for the next welcome (the server does not know us right now).
  welcomed_ = false;
  last_hello_ = Clock::now();
  transmit(pc::Hello{options_.client_name, options_.user, {pc::kVersion}});
}

void Client::Impl::on_welcome(const pc::Welcome& welcome) {
  bool again = ever_welcomed_;
  welcomed_ = true;
  ever_welcomed_ = true;
  silent_ = false;
  server_id_ = welcome.server_id;
  heartbeat_ms_ = welcome.heartbeat_ms > 0 ? welcome.heartbeat_ms : kDefaultHeartbeatMs;
  max_part_bytes_ = std::clamp<int64_t>(welcome.max_part_bytes, 1,
                                        static_cast<int64_t>(pc::kMaxPartBytes));
  last_ping_ = Clock::now();
  {
    std::lock_guard lock(welcome_mutex_);
    welcomed_once_ = true;
  }
  welcome_cv_.notify_all();
  if (again) {
    // The server may be a new process or may have forgotten us: subscriptions first (so that
    // nothing a request causes is missed), then in-flight idempotent requests, then what waited
    // for us.
    resubscribe_all();
    for (auto& [id, pending] : requests_) {
      auto* call = std::get_if<pc::Call>(&pending.message);
      bool idempotent = (call != nullptr && call->method == "GET") ||
                        std::holds_alternative<pc::Subscribe>(pending.message) ||
                        std::holds_alternative<pc::Unsubscribe>(pending.message);
      if (pending.sent && idempotent) transmit(pending.message);
    }
  }
  std::deque<int64_t> held;
  held.swap(unsent_);
  for (int64_t id : held) transmit_request(id);
}

void Client::Impl::on_error(const pc::ErrorMessage& error) {
  if (error.code == "hello_required" || error.code == "overrun") {
    if (error.id) {
      // The server did not take this request: send it again when it can.
      if (auto it = requests_.find(*error.id); it != requests_.end()) {
        it->second.sent = false;
        if (error.code == "hello_required") {
          unsent_.push_back(*error.id);
        }
      }
    }
    if (error.code == "hello_required") {
      if (welcomed_ || Clock::now() - last_hello_ > std::chrono::seconds(1)) say_hello();
    } else {
      log_warning("overrun by the server (" + error.message + "): resubscribing");
      resubscribe_all();
      if (error.id && requests_.count(*error.id) != 0) transmit_request(*error.id);
    }
    return;
  }
  if (error.id) {
    complete(*error.id, make_error("server_error", error.code + ": " + error.message));
  } else {
    log_warning("error from the server: " + error.code + ": " + error.message);
  }
}

Client::Impl::Sent Client::Impl::transmit(const pc::Message& message) {
  pc::Frames frames;
  try {
    frames = pc::encode(message);
  } catch (const std::invalid_argument& e) {
    return Sent::kInvalid;
  }
  auto flags = zmq::send_flags::dontwait;
  if (frames.data) flags = flags | zmq::send_flags::sndmore;
  if (!socket_->send(zmq::buffer(frames.header), flags)) return Sent::kFull;
  if (frames.data) (void)socket_->send(zmq::buffer(*frames.data), zmq::send_flags::dontwait);
  return Sent::kOk;
}

void Client::Impl::send_request(pc::Message message, Clock::time_point deadline,
                                ReplyCallback done) {
  if (closing_) {
    done(disconnected());
    return;
  }
  int64_t id = next_id_++;
  id_of(message) = id;
  requests_.emplace(id, PendingRequest{std::move(message), deadline, std::move(done), false});
  if (welcomed_) {
    transmit_request(id);
  } else {
    unsent_.push_back(id);
  }
}

void Client::Impl::transmit_request(int64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  switch (transmit(it->second.message)) {
    case Sent::kOk: it->second.sent = true; break;
    case Sent::kFull: break;  // ZeroMQ's queue is full: the deadline ends it
    case Sent::kInvalid:
      complete(id, make_error("bad_request", "the request body is not one JSON value"));
      break;
  }
}

void Client::Impl::complete(int64_t id, Result<ReplyValue> result) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;  // late (after its deadline) or a duplicate
  auto done = std::move(it->second.done);
  requests_.erase(it);
  done(std::move(result));
}

void Client::Impl::expire(Clock::time_point now) {
  std::vector<int64_t> late;
  for (const auto& [id, pending] : requests_) {
    if (pending.deadline <= now) late.push_back(id);
  }
  for (int64_t id : late) {
    std::erase(unsent_, id);
    complete(id, make_error("timeout", "no reply from the server within " +
                                           std::to_string(options_.request_timeout.count()) +
                                           " ms"));
  }
  auto timeout = [] { return make_error("timeout", "the wait ended before the result came"); };
  std::vector<std::pair<int64_t, uint64_t>> statements, jobs, idles;
  for (const auto& [session, watch] : watches_) {
    for (const auto& w : watch.statement_waiters) {
      if (w.deadline <= now) statements.emplace_back(session, w.serial);
    }
    for (const auto& w : watch.job_waiters) {
      if (w.deadline <= now) jobs.emplace_back(session, w.serial);
    }
    for (const auto& w : watch.idle_waiters) {
      if (w.deadline <= now) idles.emplace_back(session, w.serial);
    }
  }
  for (auto [session, serial] : statements) finish_statement(session, serial, timeout());
  for (auto [session, serial] : jobs) finish_job(session, serial, timeout());
  for (auto [session, serial] : idles) finish_idle(session, serial, timeout());
}

void Client::Impl::shut_down_io() {
  closing_ = true;
  // Close the inbox, then run what was posted before: requests they make fail at once.
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_closed_ = true;
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
  while (!requests_.empty()) complete(requests_.begin()->first, disconnected());
  while (!watches_.empty()) {
    auto& [session, watch] = *watches_.begin();
    int64_t id = session;
    for (auto& w : watch.on_ready) w(disconnected());
    watch.on_ready.clear();
    if (!watch.statement_waiters.empty()) {
      finish_statement(id, watch.statement_waiters.front().serial, disconnected());
    } else if (!watch.job_waiters.empty()) {
      finish_job(id, watch.job_waiters.front().serial, disconnected());
    } else if (!watch.idle_waiters.empty()) {
      finish_idle(id, watch.idle_waiters.front().serial, disconnected());
    } else {
      watches_.erase(watches_.begin());
    }
  }
  for (auto& [key, sub] : subs_) {
    for (auto& w : sub.waiting) w(disconnected());
  }
  subs_.clear();
  local_subs_.clear();
  socket_.reset();
}

// ------------------------------------------------------------------------------------------
// subscriptions and events

void Client::Impl::acquire_sub(SubKey key, std::function<void(Result<void>)> ready) {
  ServerSub& sub = subs_[key];
  ++sub.refs;
  if (sub.active) {
    ready(Ok{});
    return;
  }
  sub.waiting.push_back(std::move(ready));
  if (sub.waiting.size() > 1) return;  // a subscribe is on its way
  pc::Subscribe subscribe{0, key, std::nullopt};
  send_request(subscribe, Clock::now() + options_.request_timeout,
               [this, key](Result<ReplyValue> reply) {
                 auto it = subs_.find(key);
                 if (it == subs_.end()) return;
                 auto waiting = std::move(it->second.waiting);
                 it->second.waiting.clear();
                 Result<void> result = Ok{};
                 if (!reply) {
                   result = reply.error();
                 } else if (!detail::is_success(reply->status)) {
                   result = detail::error_for_reply(reply->status, reply->body_json);
                 }
                 if (result) {
                   it->second.active = true;
                 } else {
                   // Nobody holds this subscription: every acquirer gets the error.
                   subs_.erase(it);
                 }
                 for (auto& w : waiting) w(result);
               });
}

void Client::Impl::release_sub(SubKey key) {
  auto it = subs_.find(key);
  if (it == subs_.end() || --it->second.refs > 0) return;
  auto extra = std::move(it->second.resync_sessions);
  subs_.erase(it);
  auto deadline = Clock::now() + options_.request_timeout;
  send_request(pc::Unsubscribe{0, key}, deadline, [](Result<ReplyValue>) {});
  for (int64_t session : extra) {
    if (subs_.count(session) == 0) {
      send_request(pc::Unsubscribe{0, session}, deadline, [](Result<ReplyValue>) {});
    }
  }
}

void Client::Impl::send_subscribe(SubKey key, std::optional<int64_t> since,
                                  std::function<void()> done) {
  send_request(pc::Subscribe{0, key, since}, Clock::now() + options_.request_timeout,
               [done = std::move(done)](Result<ReplyValue>) {
                 if (done) done();
               });
}

int Client::Impl::resubscribe_all(std::function<void()> each_done) {
  int sent = 0;
  auto since_of = [this](int64_t session) -> std::optional<int64_t> {
    auto it = delivered_seq_.find(session);
    if (it == delivered_seq_.end()) return std::nullopt;
    return it->second;
  };
  for (auto& [key, sub] : subs_) {
    if (!sub.active) continue;  // its first subscribe is still on its way
    if (key) {
      send_subscribe(key, since_of(*key), each_done);
      ++sent;
      continue;
    }
    // The all-sessions subscription has no since: re-send it, plus a since-subscription for
    // each session it delivered events of (kept until it is released).
    send_subscribe(std::nullopt, std::nullopt, each_done);
    ++sent;
    for (const auto& [session, seq] : delivered_seq_) {
      if (subs_.count(session) != 0) continue;
      sub.resync_sessions.insert(session);
      send_subscribe(session, seq, each_done);
      ++sent;
    }
  }
  return sent;
}

void Client::Impl::on_event(pc::Event event) {
  if (event.kind == "log" || event.kind == "gap") {
    // Log lines are live only; a gap means stored events are gone: waiters reload by GET.
    if (event.kind == "gap") recheck_watch(event.session, false);
    if (!delivery_lagging_) deliver_to_users(event, false);
    return;
  }
  int64_t& seen = seen_seq_[event.session];
  if (event.seq > seen) {
    seen = event.seq;
    watch_event(event);
  }
  deliver_to_users(event, event.seq > 0);
}

void Client::Impl::deliver_to_users(const pc::Event& event, bool ordered) {
  std::vector<std::shared_ptr<std::function<void(const Event&)>>> targets;
  for (const auto& [id, local] : local_subs_) {
    if (!local.session || *local.session == event.session) targets.push_back(local.on_event);
  }
  if (!ordered) {
    Event copy{event.session, event.seq, event.kind, event.body_json};
    for (auto& target : targets) callbacks_.push([target, copy] { (*target)(copy); });
    return;
  }
  int64_t& delivered = delivered_seq_[event.session];
  if (delivery_lagging_) return;
  // While a resync is in flight, events sent before the server took it may still arrive: take
  // only the next one in order, so none is skipped.
  bool strict = resync_outstanding_ > 0 && strict_sessions_.count(event.session) != 0;
  if (strict ? event.seq != delivered + 1 : event.seq <= delivered) return;
  if (callbacks_.size() + targets.size() > callbacks_.capacity()) {
    delivery_lagging_ = true;  // resynchronised by maybe_resync_delivery()
    return;
  }
  Event copy{event.session, event.seq, event.kind, event.body_json};
  for (auto& target : targets) callbacks_.push([target, copy] { (*target)(copy); });
  delivered = event.seq;
}

void Client::Impl::maybe_resync_delivery() {
  if (!delivery_lagging_ || resync_outstanding_ > 0) return;
  if (callbacks_.size() > callbacks_.capacity() / 2) return;
  delivery_lagging_ = false;
  strict_sessions_.clear();
  for (const auto& [session, seq] : delivered_seq_) strict_sessions_.insert(session);
  // A reply may come at once (closing): count down from what was sent.
  int sent = resubscribe_all([this] { --resync_outstanding_; });
  resync_outstanding_ += sent;
}

// ------------------------------------------------------------------------------------------
// watches

void Client::Impl::acquire_watch(int64_t session, std::function<void(Result<void>)> ready) {
  Watch& watch = watches_[session];
  ++watch.refs;
  if (watch.ready) {
    ready(Ok{});
    return;
  }
  watch.on_ready.push_back(std::move(ready));
  if (watch.on_ready.size() > 1) return;
  acquire_sub(session, [this, session](Result<void> result) {
    auto it = watches_.find(session);
    if (it == watches_.end()) return;
    auto waiting = std::move(it->second.on_ready);
    it->second.on_ready.clear();
    if (result) {
      it->second.ready = true;
    } else {
      watches_.erase(it);  // the acquirers get the error and release nothing
    }
    for (auto& w : waiting) w(result);
  });
}

void Client::Impl::release_watch(int64_t session) {
  auto it = watches_.find(session);
  if (it == watches_.end() || --it->second.refs > 0) return;
  watches_.erase(it);
  release_sub(session);
}

void Client::Impl::watch_event(const pc::Event& event) {
  auto it = watches_.find(event.session);
  if (it == watches_.end()) return;
  Watch& watch = it->second;
  int64_t session = event.session;
  if (event.kind == "statement") {
    auto statement = detail::statement_from_json(event.body_json, session);
    if (!statement) return;
    watch.statements[statement->id] = *statement;
    if (watch.statements.size() > kCachedPerSession) watch.statements.erase(watch.statements.begin());
    std::vector<uint64_t> finished;
    for (auto& w : watch.statement_waiters) {
      if (w.statement_id != statement->id) continue;
      if (w.on_update) {
        callbacks_.push([fn = w.on_update, s = *statement] { fn(s); });
      }
      if (statement->finished()) finished.push_back(w.serial);
    }
    for (auto serial : finished) finish_statement(session, serial, *statement);
  } else if (event.kind == "job") {
    auto job = detail::job_from_json(event.body_json, session);
    if (!job) return;
    watch.jobs[job->id] = *job;
    if (watch.jobs.size() > kCachedPerSession) watch.jobs.erase(watch.jobs.begin());
    if (!job_finished(job->state)) return;
    std::vector<uint64_t> finished;
    for (auto& w : watch.job_waiters) {
      if (w.job_id == job->id) finished.push_back(w.serial);
    }
    for (auto serial : finished) finish_job(session, serial, *job);
  } else if (event.kind == "session") {
    auto state = detail::session_from_json(event.body_json);
    if (!state) return;
    bool over = session_ended(state->state);
    if (state->state == "idle" || over) {
      std::vector<uint64_t> serials;
      for (auto& w : watch.idle_waiters) serials.push_back(w.serial);
      for (auto serial : serials) {
        if (over) {
          finish_idle(session, serial,
                      make_error("session_failed", "session " + std::to_string(session) +
                                                       " is " + state->state));
        } else {
          finish_idle(session, serial, *state);
        }
      }
    }
    // Statements and jobs get their final events before the session ends; look once more.
    if (over) recheck_watch(session, true);
  }
}

template <typename List>
static auto take_waiter(List& list, uint64_t serial) {
  std::optional<typename List::value_type> out;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->serial == serial) {
      out = std::move(*it);
      list.erase(it);
      break;
    }
  }
  return out;
}

void Client::Impl::finish_statement(int64_t session, uint64_t serial, Result<Statement> result) {
  auto it = watches_.find(session);
  if (it == watches_.end()) return;
  auto waiter = take_waiter(it->second.statement_waiters, serial);
  if (!waiter) return;  // already finished (event and GET both answered)
  waiter->done(std::move(result));
  release_watch(session);
}

void Client::Impl::finish_job(int64_t session, uint64_t serial, Result<Job> result) {
  auto it = watches_.find(session);
  if (it == watches_.end()) return;
  auto waiter = take_waiter(it->second.job_waiters, serial);
  if (!waiter) return;
  waiter->done(std::move(result));
  release_watch(session);
}

void Client::Impl::finish_idle(int64_t session, uint64_t serial, Result<Session> result) {
  auto it = watches_.find(session);
  if (it == watches_.end()) return;
  auto waiter = take_waiter(it->second.idle_waiters, serial);
  if (!waiter) return;
  waiter->done(std::move(result));
  release_watch(session);
}

void Client::Impl::check_statement(int64_t session, uint64_t serial, int64_t statement_id,
                                   bool session_over) {
  send_request(pc::Call{0, "GET", statement_path(session, statement_id), std::nullopt,
                        std::nullopt},
               Clock::now() + options_.request_timeout,
               [this, session, serial, statement_id, session_over](Result<ReplyValue> reply) {
                 if (!reply) return;  // an event or the waiter's deadline settles it
                 if (!detail::is_success(reply->status)) {
                   finish_statement(session, serial,
                                    detail::error_for_reply(reply->status, reply->body_json));
                   return;
                 }
                 auto statement = detail::statement_from_json(reply->body_json, session);
                 if (!statement) {
                   finish_statement(session, serial, statement.error());
                 } else if (statement->finished()) {
                   finish_statement(session, serial, *statement);
                 } else if (session_over) {
                   finish_statement(session, serial,
                                    make_error("session_failed",
                                               "session " + std::to_string(session) +
                                                   " ended before statement " +
                                                   std::to_string(statement_id) + " finished"));
                 }
               });
}

void Client::Impl::check_job(int64_t session, uint64_t serial, int64_t job_id,
                             bool session_over) {
  std::string path = "/sessions/" + std::to_string(session) + "/jobs/" + std::to_string(job_id);
  send_request(pc::Call{0, "GET", path, std::nullopt, std::nullopt},
               Clock::now() + options_.request_timeout,
               [this, session, serial, job_id, session_over](Result<ReplyValue> reply) {
                 if (!reply) return;
                 if (!detail::is_success(reply->status)) {
                   finish_job(session, serial,
                              detail::error_for_reply(reply->status, reply->body_json));
                   return;
                 }
                 auto job = detail::job_from_json(reply->body_json, session);
                 if (!job) {
                   finish_job(session, serial, job.error());
                 } else if (job_finished(job->state)) {
                   finish_job(session, serial, *job);
                 } else if (session_over) {
                   finish_job(session, serial,
                              make_error("session_failed", "session " + std::to_string(session) +
                                                               " ended before job " +
                                                               std::to_string(job_id) +
                                                               " finished"));
                 }
               });
}

void Client::Impl::check_idle(int64_t session, uint64_t serial) {
  send_request(pc::Call{0, "GET", "/sessions/" + std::to_string(session), std::nullopt,
                        std::nullopt},
               Clock::now() + options_.request_timeout,
               [this, session, serial](Result<ReplyValue> reply) {
                 if (!reply) return;
                 if (!detail::is_success(reply->status)) {
                   finish_idle(session, serial,
                               detail::error_for_reply(reply->status, reply->body_json));
                   return;
                 }
                 auto state = detail::session_from_json(reply->body_json);
                 if (!state) {
                   finish_idle(session, serial, state.error());
                 } else if (state->state == "idle") {
                   finish_idle(session, serial, *state);
                 } else if (session_ended(state->state)) {
                   finish_idle(session, serial,
                               make_error("session_failed", "session " + std::to_string(session) +
                                                                " is " + state->state));
                 }
               });
}

void Client::Impl::recheck_watch(int64_t session, bool session_over) {
  auto it = watches_.find(session);
  if (it == watches_.end()) return;
  for (const auto& w : it->second.statement_waiters) {
    check_statement(session, w.serial, w.statement_id, session_over);
  }
  for (const auto& w : it->second.job_waiters) check_job(session, w.serial, w.job_id, session_over);
  for (const auto& w : it->second.idle_waiters) check_idle(session, w.serial);
}

void Client::Impl::add_statement_waiter(int64_t session, int64_t statement_id,
                                        std::function<void(const Statement&)> on_update,
                                        std::function<void(Result<Statement>)> done,
                                        Clock::time_point deadline, bool check_now) {
  // The caller holds a watch reference, which the waiter now owns.
  Watch& watch = watches_[session];
  if (auto cached = watch.statements.find(statement_id); cached != watch.statements.end()) {
    // An event came before we asked (e.g. before the submit's reply).
    if (on_update) callbacks_.push([fn = on_update, s = cached->second] { fn(s); });
    if (cached->second.finished()) {
      done(cached->second);
      release_watch(session);
      return;
    }
  }
  uint64_t serial = next_serial_++;
  watch.statement_waiters.push_back(
      StatementWaiter{serial, statement_id, std::move(on_update), std::move(done), deadline});
  if (check_now) check_statement(session, serial, statement_id, false);
}

std::future<Result<Statement>> Client::Impl::run_statement(
    int64_t session_id, std::string code, std::optional<std::string> kind,
    std::function<void(const Statement&)> on_update, Clock::time_point deadline) {
  auto promise = std::make_shared<std::promise<Result<Statement>>>();
  auto future = promise->get_future();
  // With on_update the result goes through the callback thread too, so every update the user
  // sees comes before the future is ready.
  bool via_callbacks = static_cast<bool>(on_update);
  std::function<void(Result<Statement>)> deliver = [this, promise,
                                                    via_callbacks](Result<Statement> result) {
    if (via_callbacks) {
      callbacks_.push([promise, result] { promise->set_value(result); }, true);
    } else {
      promise->set_value(std::move(result));
    }
  };
  std::string body = detail::statement_request_json(code, kind);
  bool posted = post([this, session_id, body, on_update, deliver, deadline] {
    // Subscribe first, then submit: no event of the new statement can be missed.
    acquire_watch(session_id, [=, this](Result<void> ready) {
      if (!ready) {
        deliver(ready.error());
        return;
      }
      send_request(
          pc::Call{0, "POST", session_path(session_id) + "/statements", body, std::nullopt},
          std::min(deadline, Clock::now() + options_.request_timeout),
          [=, this](Result<ReplyValue> reply) {
            if (!reply) {
              deliver(reply.error());
              release_watch(session_id);
              return;
            }
            Result<Statement> statement =
                detail::is_success(reply->status)
                    ? detail::statement_from_json(reply->body_json, session_id)
                    : Result<Statement>(detail::error_for_reply(reply->status, reply->body_json));
            if (!statement || statement->finished()) {
              deliver(std::move(statement));
              release_watch(session_id);
              return;
            }
            add_statement_waiter(session_id, statement->id, on_update, deliver, deadline, false);
          });
    });
  });
  if (!posted) promise->set_value(disconnected());
  return future;
}

// ------------------------------------------------------------------------------------------
// uploads

Result<void> Client::Impl::upload_and_add(int64_t session_id, const std::filesystem::path& file,
                                          const std::string& endpoint) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("bad_request", "cannot read " + file.string());
  if (!wait_welcomed(Clock::now() + options_.request_timeout)) {
    return make_error("timeout", "no welcome from the server within " +
                                     std::to_string(options_.request_timeout.count()) + " ms");
  }
  // Unique among this client's uploads (the server keeps uploads per client).
  std::string name = "upload-" + std::to_string(upload_counter_.fetch_add(1));
  auto part_bytes = static_cast<std::size_t>(max_part_bytes_.load());
  std::string buffer(part_bytes, '\0');
  int64_t offset = 0;
  while (true) {
    in.read(buffer.data(), static_cast<std::streamsize>(part_bytes));
    auto got = static_cast<std::size_t>(in.gcount());
    if (in.bad()) return make_error("bad_request", "cannot read " + file.string());
    bool last = in.eof() || in.peek() == std::char_traits<char>::eof();
    pc::Upload part{0, name, file.filename().string(), offset, last, buffer.substr(0, got)};
    // Each part is answered before the next is sent (PROTOCOL.md "Flow control").
    auto reply = request(std::move(part));
    if (!reply) return reply.error();
    if (!detail::is_success(reply->status)) {
      return detail::error_for_reply(reply->status, reply->body_json);
    }
    offset += static_cast<int64_t>(got);
    if (last) break;
  }
  auto added = call_ok("POST", "/sessions/" + std::to_string(session_id) + "/" + endpoint,
                       std::nullopt, name);
  if (!added) return added.error();
  return Ok{};
}

// ------------------------------------------------------------------------------------------
// Subscription

struct Subscription::State {
  std::weak_ptr<Client::Impl> impl;
  uint64_t local_id = 0;
  std::optional<int64_t> session;
};

Subscription::Subscription(Subscription&&) noexcept = default;

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}

Subscription::~Subscription() { cancel(); }

void Subscription::cancel() {
  if (!state_) return;
  auto state = std::move(state_);
  state_.reset();
  if (auto impl = state->impl.lock()) {
    Client::Impl* raw = impl.get();
    raw->post([raw, id = state->local_id, key = state->session] {
      if (raw->local_subs_.erase(id) != 0) raw->release_sub(key);
    });
  }
}

// ------------------------------------------------------------------------------------------
// Client

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Client::~Client() {
  if (impl_) impl_->stop();
}

Result<Client::Response> Client::call(std::string_view method, std::string_view path,
                                      std::optional<std::string> body_json) {
  auto reply = impl_->request(
      pc::Call{0, std::string(method), std::string(path), std::move(body_json), std::nullopt});
  if (!reply) return reply.error();
  return Response{static_cast<int>(reply->status), std::move(reply->body_json)};
}

Result<Session> Client::create_session(const SubmitParam& param) {
  auto reply = impl_->call_ok("POST", "/sessions", param.to_session_json());
  if (!reply) return reply.error();
  return detail::session_from_json(reply->body_json);
}

Result<Session> Client::get_session(int64_t session_id) {
  auto reply = impl_->call_ok("GET", session_path(session_id));
  if (!reply) return reply.error();
  return detail::session_from_json(reply->body_json);
}

Result<std::vector<Session>> Client::list_sessions() {
  constexpr int64_t kPage = 100;
  std::vector<Session> all;
  while (true) {
    auto reply = impl_->call_ok("GET", "/sessions?from=" + std::to_string(all.size()) +
                                           "&size=" + std::to_string(kPage));
    if (!reply) return reply.error();
    auto page = detail::sessions_from_json(reply->body_json);
    if (!page) return page.error();
    int64_t total = detail::int_field_of(reply->body_json, "total", 0);
    for (auto& session : *page) all.push_back(std::move(session));
    if (page->empty() || static_cast<int64_t>(all.size()) >= total) return all;
  }
}

Result<void> Client::delete_session(int64_t session_id) {
  auto reply = impl_->call_ok("DELETE", session_path(session_id));
  if (!reply) return reply.error();
  return Ok{};
}

Result<Session> Client::wait_for_idle(int64_t session_id, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Session>>>();
  auto future = promise->get_future();
  auto deadline = Clock::now() + timeout;
  Impl* impl = impl_.get();
  bool posted = impl->post([impl, session_id, promise, deadline] {
    impl->acquire_watch(session_id, [impl, session_id, promise, deadline](Result<void> ready) {
      if (!ready) {
        promise->set_value(ready.error());
        return;
      }
      uint64_t serial = impl->next_serial_++;
      impl->watches_[session_id].idle_waiters.push_back(Impl::IdleWaiter{
          serial, [promise](Result<Session> r) { promise->set_value(std::move(r)); }, deadline});
      impl->check_idle(session_id, serial);
    });
  });
  if (!posted) return disconnected();
  return future.get();
}

Result<std::vector<std::string>> Client::session_log(int64_t session_id, int64_t size) {
  auto reply = impl_->call_ok("GET", session_path(session_id) + "/log?size=" + std::to_string(size));
  if (!reply) return reply.error();
  return detail::log_from_json(reply->body_json);
}

Result<Statement> Client::submit(int64_t session_id, std::string code,
                                 std::optional<std::string> kind) {
  auto reply = impl_->call_ok("POST", session_path(session_id) + "/statements",
                              detail::statement_request_json(code, kind));
  if (!reply) return reply.error();
  return detail::statement_from_json(reply->body_json, session_id);
}

std::future<Result<Statement>> Client::run_async(int64_t session_id, std::string code,
                                                 std::optional<std::string> kind,
                                                 std::function<void(const Statement&)> on_update) {
  return impl_->run_statement(session_id, std::move(code), std::move(kind), std::move(on_update),
                              Clock::time_point::max());
}

Result<Statement> Client::run(int64_t session_id, std::string code,
                              std::optional<std::string> kind, std::chrono::milliseconds timeout) {
  auto future = impl_->run_statement(session_id, std::move(code), std::move(kind), {},
                                     Clock::now() + timeout);
  return future.get();
}

Result<Statement> Client::wait_statement(int64_t session_id, int64_t statement_id,
                                         std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Statement>>>();
  auto future = promise->get_future();
  auto deadline = Clock::now() + timeout;
  Impl* impl = impl_.get();
  bool posted = impl->post([impl, session_id, statement_id, promise, deadline] {
    impl->acquire_watch(session_id, [=](Result<void> ready) {
      if (!ready) {
        promise->set_value(ready.error());
        return;
      }
      // Subscribed: events from now on are seen; the GET covers what happened before.
      impl->add_statement_waiter(
          session_id, statement_id, {},
          [promise](Result<Statement> r) { promise->set_value(std::move(r)); }, deadline, true);
    });
  });
  if (!posted) return disconnected();
  return future.get();
}

Result<Statement> Client::get_statement(int64_t session_id, int64_t statement_id) {
  auto reply = impl_->call_ok("GET", impl_->statement_path(session_id, statement_id));
  if (!reply) return reply.error();
  return detail::statement_from_json(reply->body_json, session_id);
}

Result<std::vector<Statement>> Client::list_statements(int64_t session_id) {
  auto reply = impl_->call_ok("GET", session_path(session_id) + "/statements");
  if (!reply) return reply.error();
  return detail::statements_from_json(reply->body_json, session_id);
}

Result<void> Client::cancel(int64_t session_id, int64_t statement_id) {
  auto reply = impl_->call_ok("POST", impl_->statement_path(session_id, statement_id) + "/cancel");
  if (!reply) return reply.error();
  return Ok{};
}

Result<std::vector<std::string>> Client::complete(int64_t session_id, std::string code,
                                                  int64_t cursor, std::string kind) {
  auto reply = impl_->call_ok("POST", session_path(session_id) + "/completion",
                              detail::completion_request_json(code, kind, cursor));
  if (!reply) return reply.error();
  return detail::candidates_from_json(reply->body_json);
}

Result<void> Client::add_jar(int64_t session_id, const std::filesystem::path& local_file) {
  return impl_->upload_and_add(session_id, local_file, "upload-jar");
}

Result<void> Client::add_pyfile(int64_t session_id, const std::filesystem::path& local_file) {
  return impl_->upload_and_add(session_id, local_file, "upload-pyfile");
}

Result<void> Client::add_file(int64_t session_id, const std::filesystem::path& local_file) {
  return impl_->upload_and_add(session_id, local_file, "upload-file");
}

Result<void> Client::add_jar_uri(int64_t session_id, const std::string& uri) {
  auto reply =
      impl_->call_ok("POST", session_path(session_id) + "/add-jar", detail::uri_request_json(uri));
  if (!reply) return reply.error();
  return Ok{};
}

Result<int64_t> Client::start_job(int64_t session_id, const JobSpec& spec) {
  auto reply =
      impl_->call_ok("POST", session_path(session_id) + "/jobs", detail::job_request_json(spec));
  if (!reply) return reply.error();
  auto job = detail::job_from_json(reply->body_json, session_id);
  if (!job) return job.error();
  return job->id;
}

Result<Job> Client::job_status(int64_t session_id, int64_t job_id) {
  auto reply =
      impl_->call_ok("GET", session_path(session_id) + "/jobs/" + std::to_string(job_id));
  if (!reply) return reply.error();
  return detail::job_from_json(reply->body_json, session_id);
}

Result<std::vector<Job>> Client::list_jobs(int64_t session_id) {
  auto reply = impl_->call_ok("GET", session_path(session_id) + "/jobs");
  if (!reply) return reply.error();
  return detail::jobs_from_json(reply->body_json, session_id);
}

Result<Job> Client::kill_job(int64_t session_id, int64_t job_id) {
  auto reply = impl_->call_ok(
      "POST", session_path(session_id) + "/jobs/" + std::to_string(job_id) + "/cancel");
  if (!reply) return reply.error();
  return detail::job_from_json(reply->body_json, session_id);
}

Result<Job> Client::wait_job(int64_t session_id, int64_t job_id,
                             std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Job>>>();
  auto future = promise->get_future();
  auto deadline = Clock::now() + timeout;
  Impl* impl = impl_.get();
  bool posted = impl->post([impl, session_id, job_id, promise, deadline] {
    impl->acquire_watch(session_id, [=](Result<void> ready) {
      if (!ready) {
        promise->set_value(ready.error());
        return;
      }
      auto& watch = impl->watches_[session_id];
      if (auto cached = watch.jobs.find(job_id);
          cached != watch.jobs.end() && job_finished(cached->second.state)) {
        promise->set_value(cached->second);
        impl->release_watch(session_id);
        return;
      }
      uint64_t serial = impl->next_serial_++;
      watch.job_waiters.push_back(Impl::JobWaiter{
          serial, job_id, [promise](Result<Job> r) { promise->set_value(std::move(r)); },
          deadline});
      impl->check_job(session_id, serial, job_id, false);
    });
  });
  if (!posted) return disconnected();
  return future.get();
}

Result<void> Client::stop_driver(int64_t session_id) {
  auto reply = impl_->call_ok("DELETE", session_path(session_id) + "/driver");
  if (!reply) return reply.error();
  return Ok{};
}

Result<std::vector<Driver>> Client::list_drivers() {
  auto reply = impl_->call_ok("GET", "/drivers");
  if (!reply) return reply.error();
  return detail::drivers_from_json(reply->body_json);
}

Result<Subscription> Client::subscribe(std::optional<int64_t> session_id,
                                       std::function<void(const Event&)> on_event) {
  auto promise = std::make_shared<std::promise<Result<void>>>();
  auto future = promise->get_future();
  uint64_t local_id = impl_->next_local_sub_.fetch_add(1);
  auto fn = std::make_shared<std::function<void(const Event&)>>(std::move(on_event));
  Impl* impl = impl_.get();
  bool posted = impl->post([impl, session_id, local_id, fn, promise] {
    impl->local_subs_[local_id] = Impl::LocalSub{session_id, fn};
    impl->acquire_sub(session_id, [impl, local_id, promise](Result<void> ready) {
      if (!ready) impl->local_subs_.erase(local_id);  // the failed acquire holds no reference
      promise->set_value(std::move(ready));
    });
  });
  if (!posted) return disconnected();
  auto ready = future.get();
  if (!ready) return ready.error();
  Subscription subscription;
  subscription.state_ = std::make_shared<Subscription::State>(
      Subscription::State{impl_, local_id, session_id});
  return subscription;
}

}  // namespace hearth::clients
