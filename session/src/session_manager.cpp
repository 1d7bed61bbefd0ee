#include "hearth/session/session_manager.hpp"

#include "hearth/session/duration.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <stdexcept>

namespace hearth::session {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_secret() {
  unsigned char bytes[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    throw std::runtime_error("cannot read /dev/urandom");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::string new_driver_id() {
  // random_generator is not thread-safe; one per call is cheap enough for session creation.
  boost::uuids::random_generator generator;
  return boost::uuids::to_string(generator());
}

Result<void> write_secret_file(const std::filesystem::path& path, const std::string& secret) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  ::chmod(path.parent_path().c_str(), 0700);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("launch_failed", "cannot write " + path.string());
  bool ok = ::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size());
  ::close(fd);
  if (!ok) return make_error("launch_failed", "cannot write " + path.string());
  return Ok{};
}

std::string error_output(int64_t statement_id, const std::string& evalue) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("status");
  w.String("error");
  w.Key("execution_count");
  w.Int64(statement_id);
  w.Key("ename");
  w.String("Error");
  w.Key("evalue");
  w.String(evalue.c_str(), static_cast<rapidjson::SizeType>(evalue.size()));
  w.Key("traceback");
  w.StartArray();
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "signal " + std::to_string(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

// Why sparkr sessions cannot run here, or nullopt when R and SparkR are there.
std::optional<std::string> find_sparkr(const std::string& spark_home) {
  bool has_r = false;
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest(path);
    while (!rest.empty() && !has_r) {
      auto colon = rest.find(':');
      std::filesystem::path dir(std::string(rest.substr(0, colon)));
      has_r = ::access((dir / "Rscript").c_str(), X_OK) == 0;
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  if (!has_r) return "R (Rscript) is not installed on this server's machine";
  if (!std::filesystem::exists(std::filesystem::path(spark_home) / "R" / "lib" / "SparkR")) {
    return "SparkR is not part of the Spark installation " + spark_home;
  }
  return std::nullopt;
}

Error not_found(int64_t session_id) {
  return make_error("not_found", "Session '" + std::to_string(session_id) + "' not found.");
}

}  // namespace

SessionManager::SessionManager(SessionStore& store, SessionManagerSettings settings)
    : store_(store), settings_(std::move(settings)) {}

SessionManager::~SessionManager() { stop(); }

void SessionManager::start() {
  // No recovery yet: drivers of an earlier server process are not ours, so their sessions end.
  if (auto sessions = store_.list_sessions(); sessions) {
    for (auto& record : *sessions) {
      if (is_finished(record.state)) continue;
      record.state = SessionState::kDead;
      if (auto put = store_.put_session(record); !put) {
        std::cerr << "[hearth] cannot mark session " << record.id << " dead: " << put.error().message
                  << "\n";
      }
    }
  } else {
    throw std::runtime_error("cannot read sessions from the store: " + sessions.error().message);
  }
  DriverChannel::Options options;
  options.bind_endpoint = settings_.driver_bind_endpoint;
  options.heartbeat = settings_.heartbeat;
  channel_ = std::make_unique<DriverChannel>(
      options,
      [this](const std::string& driver_id) -> std::optional<std::string> {
        std::lock_guard lock(mutex_);
        if (auto* live = live_by_driver(driver_id)) return live->secret;
        return std::nullopt;
      },
      static_cast<DriverChannel::Listener&>(*this));
  if (auto started = channel_->start(); !started) throw std::runtime_error(started.error().message);
  gc_thread_ = std::thread([this] { collect_garbage_loop(); });
  sparkr_missing_ = find_sparkr(settings_.launch.spark_home);
}

std::string SessionManager::driver_endpoint() const { return channel_->endpoint(); }

void SessionManager::stop() {
  std::vector<std::unique_ptr<LiveSession>> sessions;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  gc_cv_.notify_all();
  if (gc_thread_.joinable()) gc_thread_.join();
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, live] : live_) {
      if (live->process && live->process->running()) {
        (void)set_state(id, SessionState::kShuttingDown);
        if (channel_) (void)channel_->send(live->driver_id, protocol::Shutdown{});
      }
    }
  }
  // Wait without the lock: exit callbacks take it to record the final state.
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, live] : live_) sessions.push_back(std::move(live));
    live_.clear();
  }
  for (auto& live : sessions) {
    if (live->process) live->process->stop(settings_.stop_grace);
    std::lock_guard lock(mutex_);
    if (auto record = store_.get_session(live->session_id); record && record->has_value()) {
      (*record)->state = SessionState::kDead;
      (void)store_.put_session(**record);
    }
    std::filesystem::remove(live->secret_file);
  }
  sessions.clear();  // joins the supervisors, outside the lock
  if (channel_) channel_->stop();
}

Result<SessionRecord> SessionManager::create_session(SessionRequest request,
                                                     std::optional<std::string> owner) {
  if (request.kind == "sparkr" && sparkr_missing_) {
    return make_error("bad_request", "Rejected, Reason: sparkr sessions need R and SparkR: " +
                                         *sparkr_missing_);
  }
  if (request.name) {
    // Names are lookup keys (/sessions/<name>), so they must be unique, as in Livy.
    if (auto existing = find_session_by_name(*request.name); existing) {
      return make_error("bad_request", "Rejected, Reason: Duplicate session name: " +
                                           *request.name + " for session " +
                                           std::to_string(existing->id));
    } else if (existing.error().code != "not_found") {
      return existing.error();
    }
  }
  auto id = store_.next_session_id();
  if (!id) return id.error();

  auto live = std::make_unique<LiveSession>();
  live->session_id = *id;
  live->driver_id = new_driver_id();
  live->secret = random_secret();
  live->secret_file = settings_.data_dir / "secrets" / live->driver_id;

  SessionRecord record;
  record.id = *id;
  record.request = std::move(request);
  record.owner = std::move(owner);
  record.state = SessionState::kStarting;
  record.driver_id = live->driver_id;
  record.created_ms = now_ms();

  DriverRecord driver{live->driver_id, live->secret, 0, record.created_ms};

  std::lock_guard lock(mutex_);
  if (stopped_) return make_error("session_not_active", "the server is shutting down");
  std::size_t starting = 0;
  for (const auto& [other_id, other] : live_) {
    if (!other->opened && other->process && other->process->running()) ++starting;
  }
  if (starting >= settings_.max_starting) {
    return make_error("bad_request", "Rejected, too many sessions are being created!");
  }
  live->last_activity_ms = live->last_request_ms = record.created_ms;
  if (auto put = store_.put_driver(driver); !put) return put.error();
  if (auto put = store_.put_session(record); !put) return put.error();

  auto launch_failed = [&](const std::string& why) -> Result<SessionRecord> {
    std::cerr << "[hearth] session " << record.id << ": " << why << "\n";
    record.state = SessionState::kError;
    if (auto put = store_.put_session(record); !put) return put.error();
    live_[record.id] = std::move(live);
    return record;
  };
  if (auto written = write_secret_file(live->secret_file, live->secret); !written) {
    return launch_failed(written.error().message);
  }
  DriverLaunch launch{record.request.name.value_or("hearth-session-" + std::to_string(record.id)),
                      live->driver_id, channel_->endpoint(), live->secret_file.string()};
  ChildProcess::Options options;
  options.argv = spark_submit_command(settings_.launch, record.request, launch);
  options.max_log_lines = settings_.max_log_lines;
  if (!settings_.launch.python.empty()) options.env["PYSPARK_PYTHON"] = settings_.launch.python;
  options.env["SPARK_HOME"] = settings_.launch.spark_home;
  // A local driver talks to nothing but this machine: keep Spark off the network interfaces.
  if (settings_.launch.master.rfind("local", 0) == 0 && std::getenv("SPARK_LOCAL_IP") == nullptr) {
    options.env["SPARK_LOCAL_IP"] = "127.0.0.1";
  }
  const int64_t session_id = record.id;
  options.on_exit = [this, session_id](int status) { on_driver_exit(session_id, status); };
  auto process = ChildProcess::start(std::move(options));
  if (!process) return launch_failed(process.error().message);
  live->process = std::move(process).value();
  driver.pid = live->process->pid();
  (void)store_.put_driver(driver);
  live_[record.id] = std::move(live);
  return record;
}

Result<SessionRecord> SessionManager::get_session(int64_t session_id) {
  auto record = store_.get_session(session_id);
  if (!record) return record.error();
  if (!record->has_value()) return not_found(session_id);
  return std::move(**record);
}

void SessionManager::touch(int64_t session_id, Touch what) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(session_id);
  if (it == live_.end()) return;
  const int64_t now = now_ms();
  it->second->last_request_ms = now;
  if (what == Touch::kActivity) it->second->last_activity_ms = now;
}

std::vector<std::pair<int64_t, std::string>> SessionManager::expired_sessions() {
  std::vector<std::pair<int64_t, std::string>> expired;
  auto sessions = store_.list_sessions();
  if (!sessions) {
    std::cerr << "[hearth] lifecycle check skipped: " << sessions.error().message << "\n";
    return expired;
  }
  std::lock_guard lock(mutex_);
  const int64_t now = now_ms();
  std::set<int64_t> listed;
  for (const auto& session : *sessions) {
    listed.insert(session.id);
    if (is_finished(session.state)) {
      auto [since, inserted] = finished_since_ms_.try_emplace(session.id, now);
      if (now - since->second >= settings_.state_retain.count()) {
        expired.emplace_back(session.id, "finished " + std::to_string(settings_.state_retain.count() / 1000) +
                                             " s ago");
      }
      continue;
    }
    const auto& request = session.request;
    if (request.ttl) {
      auto ttl = parse_duration(*request.ttl);
      if (ttl && now - session.created_ms > ttl->count()) {
        expired.emplace_back(session.id, "its ttl of " + *request.ttl + " passed");
        continue;
      }
    }
    auto it = live_.find(session.id);
    if (it == live_.end()) continue;
    const LiveSession& live = *it->second;
    if (request.heartbeat_timeout_s > 0 &&
        now - live.last_request_ms > request.heartbeat_timeout_s * 1000) {
      expired.emplace_back(session.id, "no request for " + std::to_string(request.heartbeat_timeout_s) +
                                           " s (heartbeatTimeoutInSecond)");
      continue;
    }
    int64_t idle_limit = settings_.session_timeout.count();
    if (request.idle_timeout) {
      if (auto t = parse_duration(*request.idle_timeout)) idle_limit = t->count();
    }
    if (idle_limit > 0 && session.state != SessionState::kBusy && live.outstanding.empty() &&
        now - live.last_activity_ms > idle_limit) {
      expired.emplace_back(session.id, "idle for longer than " + std::to_string(idle_limit / 1000) + " s");
    }
  }
  // Forget finished-times of sessions that are gone.
  for (auto it = finished_since_ms_.begin(); it != finished_since_ms_.end();) {
    it = listed.count(it->first) ? std::next(it) : finished_since_ms_.erase(it);
  }
  return expired;
}

void SessionManager::collect_garbage_loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      gc_cv_.wait_for(lock, settings_.gc_interval, [this] { return stopped_; });
      if (stopped_) return;
    }
    // Deleting blocks until the driver has stopped; done here, never under the lock.
    for (const auto& [session_id, reason] : expired_sessions()) {
      std::cerr << "[hearth] session " << session_id << " deleted: " << reason << "\n";
      if (auto deleted = delete_session(session_id); !deleted) {
        std::cerr << "[hearth] cannot delete session " << session_id << ": " << deleted.error().message << "\n";
      }
    }
  }
}

Result<SessionRecord> SessionManager::find_session_by_name(std::string_view name) {
  auto sessions = store_.list_sessions();
  if (!sessions) return sessions.error();
  for (auto& session : *sessions) {
    if (session.request.name && *session.request.name == name) return std::move(session);
  }
  return make_error("not_found", "Session '" + std::string(name) + "' not found.");
}

Result<std::vector<SessionRecord>> SessionManager::list_sessions() { return store_.list_sessions(); }

std::vector<std::string> SessionManager::session_log(int64_t session_id) const {
  std::lock_guard lock(mutex_);
  auto it = live_.find(session_id);
  if (it == live_.end() || !it->second->process) return {};
  return it->second->process->log_lines();
}

Result<void> SessionManager::delete_session(int64_t session_id) {
  return stop_driver(session_id, /*remove=*/true);
}

Result<void> SessionManager::stop_session(int64_t session_id) {
  return stop_driver(session_id, /*remove=*/false);
}

Result<void> SessionManager::stop_driver(int64_t session_id, bool remove) {
  std::shared_ptr<ChildProcess> process;
  {
    std::lock_guard lock(mutex_);
    auto record = store_.get_session(session_id);
    if (!record) return record.error();
    if (!record->has_value()) return not_found(session_id);
    if (auto it = live_.find(session_id); it != live_.end()) {
      process = it->second->process;
      if (process && process->running()) {
        (void)set_state(session_id, SessionState::kShuttingDown);
        (void)channel_->send(it->second->driver_id, protocol::Shutdown{});
      }
    }
  }
  // Wait for the driver to stop by itself, without the lock (the exit callback needs it).
  // `process` is shared so that it outlives a concurrent DELETE that drops the session first.
  if (process) process->stop(settings_.stop_grace);

  std::unique_ptr<LiveSession> live;
  std::string driver_id;
  {
    std::lock_guard lock(mutex_);
    auto record = store_.get_session(session_id);
    if (!record) return record.error();
    if (!record->has_value()) return Ok{};  // a concurrent DELETE finished first
    driver_id = (*record)->driver_id;
    if (!remove) {
      // The exit callback has marked it dead if it had a driver; a session without one (from an
      // earlier server process, or whose launch failed) is marked here.
      if (!is_finished((*record)->state) || (*record)->state == SessionState::kError) {
        (*record)->state = SessionState::kDead;
        if (auto put = store_.put_session(**record); !put) return put.error();
      }
      return Ok{};  // the live entry stays: its log remains readable
    }
    if (auto it = live_.find(session_id); it != live_.end()) {
      live = std::move(it->second);
      live_.erase(it);
    }
    if (auto removed = store_.delete_session(session_id); !removed) return removed.error();
  }
  if (!driver_id.empty()) (void)store_.delete_driver(driver_id);
  if (live) std::filesystem::remove(live->secret_file);
  std::error_code ignored;
  std::filesystem::remove_all(settings_.data_dir / "artifacts" / std::to_string(session_id), ignored);
  // `live` and `process` are released here, outside the lock: the last owner of the process
  // joins its supervisor thread, which may be waiting for the lock in the exit callback.
  return Ok{};
}

Result<StatementRecord> SessionManager::submit_statement(int64_t session_id, std::string code,
                                                         std::string kind) {
  std::lock_guard lock(mutex_);
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  SessionState state = (*session)->state;
  if (!is_active(state) || state == SessionState::kError) {
    return make_error("session_not_active", "requirement failed: Session isn't active.");
  }
  auto id = store_.next_statement_id(session_id);
  if (!id) return id.error();
  StatementRecord statement;
  statement.session_id = session_id;
  statement.id = *id;
  statement.kind = std::move(kind);
  statement.code = std::move(code);
  statement.state = StatementState::kWaiting;
  if (auto put = save_statement(statement); !put) return put.error();

  auto it = live_.find(session_id);
  if (it != live_.end()) {
    LiveSession& live = *it->second;
    live.last_activity_ms = live.last_request_ms = now_ms();
    live.outstanding.insert(statement.id);
    if (live.opened) {
      dispatch_waiting(live);
      settle_idle_or_busy(live);
    }
  }
  evict_old_statements(session_id);
  return statement;
}

Result<StatementRecord> SessionManager::cancel_statement(int64_t session_id, int64_t statement_id) {
  std::lock_guard lock(mutex_);
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  auto found = store_.get_statement(session_id, statement_id);
  if (!found) return found.error();
  if (!found->has_value()) return make_error("statement_not_found", "Statement not found");
  StatementRecord& statement = **found;
  if (is_terminal(statement.state) || statement.state == StatementState::kCancelling) {
    return std::move(statement);
  }
  auto it = live_.find(session_id);
  LiveSession* live = it == live_.end() ? nullptr : it->second.get();
  if (live) live->last_activity_ms = live->last_request_ms = now_ms();
  if (statement.state == StatementState::kWaiting) {
    statement.state = StatementState::kCancelled;
    statement.progress = 1.0;
    statement.completed_ms = now_ms();
  } else {
    statement.state = StatementState::kCancelling;
  }
  if (auto put = save_statement(statement); !put) return put.error();
  if (live) {
    if (live->dispatched.count(statement_id)) {
      (void)channel_->send(live->driver_id, protocol::CancelStatement{session_id, statement_id});
    }
    if (is_terminal(statement.state)) {
      live->outstanding.erase(statement_id);
      settle_idle_or_busy(*live);
    }
  }
  return std::move(statement);
}

Result<std::vector<std::string>> SessionManager::complete(int64_t session_id, std::string kind,
                                                          std::string code, int64_t cursor) {
  std::unique_lock lock(mutex_);
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  auto it = live_.find(session_id);
  if (it != live_.end()) it->second->last_activity_ms = it->second->last_request_ms = now_ms();
  if (it == live_.end() || !it->second->opened) return std::vector<std::string>{};
  const int64_t request_id = next_request_id_++;
  protocol::Complete request{session_id, request_id, std::move(kind), std::move(code), cursor};
  if (!channel_->send(it->second->driver_id, std::move(request))) return std::vector<std::string>{};
  completions_[request_id] = std::nullopt;
  completion_cv_.wait_for(lock, settings_.completion_timeout,
                          [&] { return completions_[request_id].has_value(); });
  auto answer = std::move(completions_[request_id]);
  completions_.erase(request_id);
  return answer.value_or(std::vector<std::string>{});
}

Result<std::string> SessionManager::store_upload(int64_t session_id, std::string_view filename,
                                                 std::string_view data) {
  auto session = get_session(session_id);
  if (!session) return session.error();
  // Only the last path component of the client's name, so an upload cannot leave its directory.
  std::string name = std::filesystem::path(std::string(filename)).filename().string();
  if (name.empty() || name == "." || name == "..") name = "upload";
  auto dir = settings_.data_dir / "artifacts" / std::to_string(session_id) / new_driver_id();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("artifact_failed", "cannot create " + dir.string() + ": " + ec.message());
  auto path = dir / name;
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return make_error("artifact_failed", "cannot write " + path.string());
  return "file://" + path.string();
}

Result<void> SessionManager::add_artifact(int64_t session_id, std::string kind, std::string uri) {
  std::unique_lock lock(mutex_);
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  auto it = live_.find(session_id);
  if (it == live_.end() || !it->second->opened || !is_active((*session)->state) ||
      (*session)->state == SessionState::kError) {
    return make_error("session_not_active", "requirement failed: Session isn't active.");
  }
  it->second->last_activity_ms = it->second->last_request_ms = now_ms();
  const int64_t request_id = next_request_id_++;
  protocol::AddArtifact request{session_id, request_id, std::move(kind), std::move(uri)};
  if (auto sent = channel_->send(it->second->driver_id, std::move(request)); !sent) {
    return make_error("session_not_active", "the session's driver is not connected");
  }
  artifact_answers_[request_id] = std::nullopt;
  artifact_cv_.wait_for(lock, settings_.artifact_timeout,
                        [&] { return artifact_answers_[request_id].has_value(); });
  auto answer = std::move(artifact_answers_[request_id]);
  artifact_answers_.erase(request_id);
  if (!answer) return make_error("artifact_failed", "the driver did not confirm the artifact in time");
  if (*answer) return make_error("artifact_failed", **answer);
  return Ok{};
}

// Keeps the last `retained_statements` statements, as Livy's driver does; only finished ones
// are dropped, so nothing waiting or running ever disappears.
void SessionManager::evict_old_statements(int64_t session_id) {
  auto statements = store_.list_statements(session_id);
  if (!statements || statements->size() <= settings_.retained_statements) return;
  std::size_t excess = statements->size() - settings_.retained_statements;
  for (const auto& statement : *statements) {
    if (excess == 0) break;
    if (!is_terminal(statement.state)) continue;
    if (store_.delete_statement(session_id, statement.id)) --excess;
  }
}

Result<StatementRecord> SessionManager::get_statement(int64_t session_id, int64_t statement_id) {
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  auto statement = store_.get_statement(session_id, statement_id);
  if (!statement) return statement.error();
  if (!statement->has_value()) return make_error("statement_not_found", "Statement not found");
  return std::move(**statement);
}

Result<std::vector<StatementRecord>> SessionManager::list_statements(int64_t session_id) {
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  return store_.list_statements(session_id);
}

Result<void> SessionManager::save_statement(const StatementRecord& statement) {
  auto saved = store_.put_statement(statement);
  if (saved && statement_observer_) statement_observer_(statement.session_id, statement.id);
  return saved;
}

SessionManager::LiveSession* SessionManager::live_by_driver(const std::string& driver_id) {
  for (auto& [id, live] : live_) {
    if (live->driver_id == driver_id) return live.get();
  }
  return nullptr;
}

Result<void> SessionManager::set_state(int64_t session_id, SessionState to) {
  auto record = store_.get_session(session_id);
  if (!record) return record.error();
  if (!record->has_value()) return not_found(session_id);
  SessionRecord& session = **record;
  if (session.state == to) return Ok{};
  if (auto allowed = check_transition(session.state, to); !allowed) return allowed.error();
  session.state = to;
  return store_.put_session(session);
}

void SessionManager::dispatch_waiting(LiveSession& live) {
  // In id order, so the driver queues them in submission order.
  for (int64_t statement_id : live.outstanding) {
    if (live.dispatched.count(statement_id)) continue;
    auto statement = store_.get_statement(live.session_id, statement_id);
    if (!statement || !statement->has_value()) continue;
    protocol::Execute execute{live.session_id, statement_id, (*statement)->kind, (*statement)->code};
    if (auto sent = channel_->send(live.driver_id, std::move(execute)); !sent) {
      std::cerr << "[hearth] session " << live.session_id << ": cannot send statement "
                << statement_id << ": " << sent.error().message << "\n";
      return;  // retried at the next dispatch (e.g. when the driver reconnects)
    }
    live.dispatched.insert(statement_id);
  }
}

// The client-visible idle/busy state is derived from the server's own knowledge: busy while any
// accepted statement has not finished, so a client never sees "idle" with work still queued.
void SessionManager::settle_idle_or_busy(LiveSession& live) {
  auto record = store_.get_session(live.session_id);
  if (!record || !record->has_value()) return;
  SessionState current = (*record)->state;
  if (current != SessionState::kIdle && current != SessionState::kBusy &&
      current != SessionState::kStarting) {
    return;
  }
  SessionState want = live.outstanding.empty() ? SessionState::kIdle : SessionState::kBusy;
  if (current == SessionState::kBusy && want == SessionState::kIdle) live.last_activity_ms = now_ms();
  (void)set_state(live.session_id, want);
}

void SessionManager::fail_outstanding(LiveSession& live, const std::string& why) {
  for (int64_t statement_id : live.outstanding) {
    auto statement = store_.get_statement(live.session_id, statement_id);
    if (!statement || !statement->has_value()) continue;
    StatementRecord& s = **statement;
    if (is_terminal(s.state)) continue;
    s.state = StatementState::kAvailable;
    s.output_json = error_output(statement_id, why);
    s.progress = 1.0;
    s.completed_ms = now_ms();
    (void)save_statement(s);
  }
  live.outstanding.clear();
}

void SessionManager::on_driver_message(const std::string& driver_id, protocol::Message message) {
  std::lock_guard lock(mutex_);
  LiveSession* live = live_by_driver(driver_id);
  if (!live) return;
  const int64_t session_id = live->session_id;

  if (auto* status = std::get_if<protocol::DriverStatus>(&message)) {
    if (status->state == "ready") {
      if (auto record = store_.get_session(session_id); record && record->has_value()) {
        (*record)->app_id = status->app_id;
        (*record)->spark_ui_url = status->spark_ui_url;
        (void)store_.put_session(**record);
      }
      auto kind = store_.get_session(session_id);
      std::string session_kind =
          kind && kind->has_value() ? (*kind)->request.kind : std::string("shared");
      (void)channel_->send(driver_id, protocol::OpenSession{session_id, session_kind});
    } else if (status->state == "error") {
      std::cerr << "[hearth] session " << session_id << ": driver failed: "
                << status->message.value_or("") << "\n";
      (void)set_state(session_id, SessionState::kError);
    }
    return;
  }
  if (auto* status = std::get_if<protocol::SessionStatus>(&message)) {
    if (status->session_id != session_id) return;
    if (status->state == "idle" || status->state == "busy") {
      if (!live->opened) {
        live->opened = true;
        dispatch_waiting(*live);
      }
      settle_idle_or_busy(*live);
    } else if (status->state == "error") {
      std::cerr << "[hearth] session " << session_id << ": " << status->message.value_or("") << "\n";
      (void)set_state(session_id, SessionState::kError);
    }
    return;
  }
  if (auto* update = std::get_if<protocol::StatementUpdate>(&message)) {
    if (update->session_id != session_id) return;
    auto statement = store_.get_statement(session_id, update->statement_id);
    if (!statement || !statement->has_value()) return;
    StatementRecord& s = **statement;
    auto to = parse_statement_state(update->state);
    if (!to) return;
    // A statement cancelled while waiting may still be reported by a driver that had taken it.
    if (s.state == StatementState::kCancelled) return;
    // Progress of a statement being cancelled: keep "cancelling", take the progress.
    if (s.state == StatementState::kCancelling && *to == StatementState::kRunning) {
      s.progress = update->progress;
      (void)save_statement(s);
      return;
    }
    if (auto allowed = check_transition(s.state, *to); !allowed) {
      std::cerr << "[hearth] session " << session_id << " statement " << s.id << ": "
                << allowed.error().message << "\n";
      return;
    }
    s.state = *to;
    s.progress = update->progress;
    s.started_ms = update->started;
    s.completed_ms = update->completed;
    if (update->output_json) s.output_json = update->output_json;
    if (auto put = save_statement(s); !put) {
      std::cerr << "[hearth] cannot store statement update: " << put.error().message << "\n";
      return;
    }
    if (is_terminal(s.state)) {
      live->outstanding.erase(s.id);
      settle_idle_or_busy(*live);
    }
    return;
  }
  if (auto* completion = std::get_if<protocol::Completion>(&message)) {
    // Only a request still waiting takes an answer; a late one is dropped.
    if (auto it = completions_.find(completion->request_id); it != completions_.end()) {
      it->second = std::move(completion->candidates);
      completion_cv_.notify_all();
    }
    return;
  }
  if (auto* added = std::get_if<protocol::ArtifactAdded>(&message)) {
    if (auto it = artifact_answers_.find(added->request_id); it != artifact_answers_.end()) {
      it->second = std::move(added->error);
      artifact_cv_.notify_all();
    }
    return;
  }
  if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    std::cerr << "[hearth] driver " << driver_id << " answered error " << error->code << ": "
              << error->message << "\n";
  }
}

void SessionManager::on_driver_exit(int64_t session_id, int wait_status) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(session_id);
  if (it == live_.end()) return;
  LiveSession& live = *it->second;
  std::cerr << "[hearth] session " << session_id << ": driver exited (" << describe_exit(wait_status)
            << ")\n";
  fail_outstanding(live, "The session's driver exited before the statement finished (" +
                             describe_exit(wait_status) + ").");
  auto record = store_.get_session(session_id);
  if (!record || !record->has_value()) return;
  SessionState current = (*record)->state;
  if (is_finished(current) && current != SessionState::kError) return;
  if (current != SessionState::kDead) (void)set_state(session_id, SessionState::kDead);
  std::filesystem::remove(live.secret_file);
}

}  // namespace hearth::session
