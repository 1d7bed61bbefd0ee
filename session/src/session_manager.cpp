#include "hearth/session/session_manager.hpp"

#include "hearth/session/driver_secret.hpp"
#include "hearth/session/lifecycle_rules.hpp"
#include "hearth/session/recovery.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <algorithm>
#include <cerrno>
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

// For writes whose failure has no caller to answer (driver updates, exits, sweeps): the failure
// is logged with what was being done; the next change of the record writes it again.
void report_failed_write(const Result<void>& written, const std::string& what) {
  if (!written) std::cerr << "[hearth] cannot " << what << ": " << written.error().message << "\n";
}

// Heartbeats a driver may miss before its sessions show `recovering`. The agent says hello again
// after three; a little more here keeps a loaded machine's pauses from flapping sessions.
constexpr int kSilentHeartbeats = 5;

// The driver channel's bound endpoint, kept for the next server process (SessionStore's
// server values).
constexpr std::string_view kDriverEndpointKey = "driver-endpoint";

// A move the code expected to be legal was refused by the transition table: a bug, logged.
template <typename Record>
void report_illegal(const Result<void>& moved, const Record& record) {
  if (!moved) {
    std::cerr << "[hearth] session " << record.session_id << " item " << record.id << ": "
              << moved.error().message << "\n";
  }
}

Error not_found(int64_t session_id) {
  return make_error("not_found", "Session '" + std::to_string(session_id) + "' not found.");
}

}  // namespace

SessionManager::SessionManager(SessionStore& store, SessionManagerSettings settings)
    : store_(store), settings_(std::move(settings)) {}

SessionManager::~SessionManager() { stop(); }

void SessionManager::start() {
  recover();
  start_driver_channel();
  sparkr_missing_ = find_sparkr(settings_.launch.spark_home);
  {
    std::lock_guard lock(mutex_);
    refill_pool();
  }
  gc_thread_ = std::thread([this] { collect_garbage_loop(); });
}

void SessionManager::start_driver_channel() {
  auto make_channel = [this](const std::string& endpoint) {
    DriverChannel::Options options;
    options.bind_endpoint = endpoint;
    options.heartbeat = settings_.heartbeat;
    return std::make_unique<DriverChannel>(
        options,
        [this](const std::string& driver_id, std::string_view secret) {
          std::lock_guard lock(mutex_);
          auto* driver = find_driver(driver_id);
          return driver != nullptr && secret_matches(driver->record.secret_sha256, secret);
        },
        static_cast<DriverChannel::Listener&>(*this));
  };
  // Drivers know the endpoint they were launched with, and reconnect to it: with port 0 (any
  // free port) a restarted server binds the port of its predecessor again if it is free.
  const std::string& configured = settings_.driver_bind_endpoint;
  const auto stored = store_.get_server_value(kDriverEndpointKey);
  if (!stored) throw std::runtime_error("cannot read the store: " + stored.error().message);
  if (configured.size() > 2 && configured.ends_with(":0") && stored->has_value() &&
      (*stored)->rfind(configured.substr(0, configured.size() - 1), 0) == 0) {
    channel_ = make_channel(**stored);
    if (auto started = channel_->start(); !started) {
      std::cerr << "[hearth] cannot bind the driver channel's previous endpoint " << **stored
                << " (" << started.error().message << "): drivers of the earlier server cannot reconnect\n";
      channel_.reset();
    }
  }
  if (!channel_) {
    channel_ = make_channel(configured);
    if (auto started = channel_->start(); !started) throw std::runtime_error(started.error().message);
  }
  if (auto put = store_.put_server_value(kDriverEndpointKey, channel_->endpoint()); !put) {
    throw std::runtime_error("cannot store the driver channel's endpoint: " + put.error().message);
  }
}

void SessionManager::recover() {
  auto plan = plan_recovery(store_);
  if (!plan) throw std::runtime_error("cannot read the store to recover sessions: " + plan.error().message);
  std::lock_guard lock(mutex_);
  const int64_t now = now_ms();
  for (const auto& driver_id : plan->finished_drivers) {
    report_failed_write(store_.delete_driver(driver_id), "forget finished driver " + driver_id);
  }
  // A driver whose JVM is gone (it exited by its idle timeout, or died, while no server ran)
  // will not reconnect: its sessions end now rather than after driver_lost_timeout. Drivers run
  // on this machine today (local and client mode), so their pid is checked here.
  std::set<std::string> gone;
  for (auto it = plan->drivers.begin(); it != plan->drivers.end();) {
    if (process_has_argument(static_cast<int>(it->record.pid), it->record.id)) {
      ++it;
      continue;
    }
    std::cerr << "[hearth] driver " << it->record.id << " (pid " << it->record.pid << ") is gone\n";
    gone.insert(it->record.id);
    report_failed_write(store_.delete_driver(it->record.id), "forget driver " + it->record.id);
    std::filesystem::remove(settings_.data_dir / "secrets" / it->record.id);
    it = plan->drivers.erase(it);
  }
  for (auto it = plan->sessions.begin(); it != plan->sessions.end();) {
    if (!gone.count(it->record.driver_id)) {
      ++it;
      continue;
    }
    plan->orphans.push_back(OrphanedSession{std::move(it->record),
                                            "The session's driver exited while the server was down.",
                                            std::move(it->unfinished_statements),
                                            std::move(it->unfinished_jobs)});
    it = plan->sessions.erase(it);
  }
  for (auto& orphan : plan->orphans) {
    std::cerr << "[hearth] session " << orphan.record.id << " ends: " << orphan.reason << "\n";
    LiveSession ended;  // only to end its unfinished work the one way that exists
    ended.session_id = orphan.record.id;
    for (int64_t id : orphan.unfinished_statements) ended.work.add({WorkKind::kStatement, id});
    for (int64_t id : orphan.unfinished_jobs) ended.work.add({WorkKind::kJob, id});
    fail_outstanding(ended, orphan.reason, /*cancelled=*/false);
    report_failed_write(set_state(orphan.record.id, SessionState::kDead),
                        "end session " + std::to_string(orphan.record.id));
  }
  for (auto& adopted : plan->drivers) {
    auto driver = std::make_unique<LiveDriver>();
    driver->record = std::move(adopted.record);
    driver->secret_file = settings_.data_dir / "secrets" / driver->record.id;
    driver->adopted = true;
    driver->adopted_ms = now;
    driver->sessions.insert(adopted.sessions.begin(), adopted.sessions.end());
    std::cerr << "[hearth] driver " << driver->record.id << " (pid " << driver->record.pid << ", "
              << adopted.sessions.size() << " sessions) adopted: waiting for it to reconnect\n";
    const std::string id = driver->record.id;
    drivers_[id] = std::move(driver);
  }
  for (auto& adopted : plan->sessions) {
    auto live = std::make_unique<LiveSession>();
    live->session_id = adopted.record.id;
    live->driver_id = adopted.record.driver_id;
    const LiveDriver* driver = find_driver(live->driver_id);
    live->own_driver = driver && driver->record.share_level == "session";
    for (int64_t id : adopted.unfinished_statements) live->work.add({WorkKind::kStatement, id});
    // Unfinished jobs count as handed over: a cancel goes to the driver, which may run them.
    for (int64_t id : adopted.unfinished_jobs) live->work.add_dispatched({WorkKind::kJob, id});
    live->work.resend_all();
    live->last_activity_ms = live->last_request_ms = now;
    live_[live->session_id] = std::move(live);
    move_session(adopted.record.id, SessionState::kRecovering);
  }
}

std::string SessionManager::driver_endpoint() const { return channel_->endpoint(); }

void SessionManager::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  gc_cv_.notify_all();
  if (gc_thread_.joinable()) gc_thread_.join();
  if (!settings_.stop_drivers_on_shutdown) {
    leave_drivers_running();
    return;
  }
  std::vector<std::shared_ptr<ChildProcess>> processes;
  std::vector<std::string> adopted;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, driver] : drivers_) {
      if (driver->adopted && !driver->exited) adopted.push_back(id);
      if (!driver->process || !driver->process->running()) continue;
      driver->stopping = true;
      for (int64_t session_id : driver->sessions) move_session(session_id, SessionState::kShuttingDown);
      if (channel_) (void)channel_->send(id, protocol::Shutdown{});
      processes.push_back(driver->process);
    }
  }
  // Wait without the lock: exit callbacks take it to record the final states.
  for (auto& process : processes) process->stop(settings_.stop_grace);
  for (const auto& id : adopted) stop_adopted_driver(id);
  std::vector<std::unique_ptr<LiveDriver>> drivers;
  std::vector<std::unique_ptr<LiveSession>> sessions;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, live] : live_) {
      if (auto record = store_.get_session(id); record && record->has_value() &&
                                                !is_finished((*record)->state)) {
        report_failed_write(set_state(id, SessionState::kDead), "end session " + std::to_string(id));
      }
      sessions.push_back(std::move(live));
    }
    live_.clear();
    for (auto& [id, driver] : drivers_) {
      std::filesystem::remove(driver->secret_file);
      report_failed_write(store_.delete_driver(id), "forget driver " + id);
      drivers.push_back(std::move(driver));
    }
    drivers_.clear();
  }
  processes.clear();
  sessions.clear();  // joins the supervisors, outside the lock
  drivers.clear();
  if (channel_) channel_->stop();
}

void SessionManager::leave_drivers_running() {
  // Drivers, sessions and their records stay as they are: the next server process adopts them
  // (recover()). Our children are released, not killed; the channel closes, and the agents say
  // hello again until a server answers (or their idle timeout ends them).
  std::vector<std::shared_ptr<ChildProcess>> processes;
  std::vector<std::unique_ptr<LiveDriver>> drivers;
  std::vector<std::unique_ptr<LiveSession>> sessions;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, driver] : drivers_) {
      if (driver->process) processes.push_back(driver->process);
      drivers.push_back(std::move(driver));
    }
    drivers_.clear();
    for (auto& [id, live] : live_) sessions.push_back(std::move(live));
    live_.clear();
  }
  // Outside the lock: release() joins the supervisor, which may wait for the lock in a callback.
  for (auto& process : processes) process->release();
  std::cerr << "[hearth] " << drivers.size() << " drivers left running for the next server\n";
  processes.clear();
  sessions.clear();
  drivers.clear();
  if (channel_) channel_->stop();
}

SessionManager::LiveDriver* SessionManager::find_driver(const std::string& driver_id) {
  auto it = drivers_.find(driver_id);
  return it == drivers_.end() ? nullptr : it->second.get();
}

SessionManager::LiveSession* SessionManager::live_session(int64_t session_id,
                                                          const std::string& driver_id) {
  auto it = live_.find(session_id);
  if (it == live_.end() || it->second->driver_id != driver_id) return nullptr;
  return it->second.get();
}

SessionManager::LiveDriver* SessionManager::find_attachable(const std::string& share_level,
                                                            const std::optional<std::string>& user,
                                                            const DriverProfile& profile) {
  auto usable = [this](const LiveDriver& d) {
    // An adopted driver counts once it is back; a silent one not until it speaks.
    return !d.stopping && !d.exited && !d.silent && (!d.adopted || channel_->connected(d.record.id)) &&
           (d.record.state == DriverState::kStarting || d.record.state == DriverState::kReady);
  };
  if (share_level == "user") {
    for (auto& [id, d] : drivers_) {
      if (usable(*d) && !d->record.pooled && d->record.share_level == "user" &&
          d->record.user == user && d->record.profile == profile) {
        return d.get();
      }
    }
  }
  // A pooled driver of this user first, else an anonymous one (without impersonation every
  // driver runs as the server's own OS user, so an anonymous one serves anybody). Ready ones
  // before starting ones.
  LiveDriver* best = nullptr;
  auto rank = [&](const LiveDriver& d) {
    return (d.record.user == user ? 2 : 0) + (d.record.state == DriverState::kReady ? 1 : 0);
  };
  for (auto& [id, d] : drivers_) {
    if (!usable(*d) || !d->record.pooled || !(d->record.profile == profile)) continue;
    if (d->record.user && d->record.user != user) continue;
    if (!best || rank(*d) > rank(*best)) best = d.get();
  }
  return best;
}

Result<SessionManager::LiveDriver*> SessionManager::launch_driver(
    const SessionRequest& request, const std::string& share_level,
    const std::optional<std::string>& user, bool pooled, std::string app_name) {
  auto driver = std::make_unique<LiveDriver>();
  DriverRecord& record = driver->record;
  record.id = new_driver_id();
  // The secret itself goes only into the file; the record (stored in Redis) keeps its digest.
  const std::string secret = random_secret();
  record.secret_sha256 = secret_digest(secret);
  record.created_ms = record.last_used_ms = now_ms();
  record.user = user;
  record.share_level = share_level;
  record.pooled = pooled;
  record.profile = profile_of(request);
  record.state = DriverState::kStarting;
  driver->secret_file = settings_.data_dir / "secrets" / record.id;
  if (auto put = store_.put_driver(record); !put) return put.error();
  if (auto written = write_secret_file(driver->secret_file, secret); !written) {
    report_failed_write(store_.delete_driver(record.id), "forget driver " + record.id);
    return written.error();
  }
  DriverLaunch launch{std::move(app_name), record.id, channel_->endpoint(),
                      driver->secret_file.string()};
  ChildProcess::Options options;
  options.argv = spark_submit_command(settings_.launch, request, launch);
  options.max_log_lines = settings_.max_log_lines;
  if (!settings_.launch.python.empty()) options.env["PYSPARK_PYTHON"] = settings_.launch.python;
  options.env["SPARK_HOME"] = settings_.launch.spark_home;
  // A local driver talks to nothing but this machine: keep Spark off the network interfaces.
  if (settings_.launch.master.rfind("local", 0) == 0 && std::getenv("SPARK_LOCAL_IP") == nullptr) {
    options.env["SPARK_LOCAL_IP"] = "127.0.0.1";
  }
  const std::string driver_id = record.id;
  options.on_exit = [this, driver_id](int status) { on_driver_exit(driver_id, status); };
  options.on_lines = [this, driver_id](std::vector<std::string> lines) {
    notify(Change{Change::Kind::kDriverLog, 0, 0, driver_id, std::move(lines)});
  };
  auto process = ChildProcess::start(std::move(options));
  if (!process) {
    std::filesystem::remove(driver->secret_file);
    report_failed_write(store_.delete_driver(record.id), "forget driver " + record.id);
    return make_error("launch_failed", process.error().message);
  }
  driver->process = std::move(process).value();
  record.pid = driver->process->pid();
  report_failed_write(store_.put_driver(record), "store driver " + record.id);
  LiveDriver* raw = driver.get();
  drivers_[driver_id] = std::move(driver);
  return raw;
}

void SessionManager::refill_pool() {
  if (stopped_ || settings_.pool_size == 0 || !channel_) return;
  std::vector<std::optional<std::string>> users = {std::nullopt};
  for (const auto& user : settings_.pool_users) users.emplace_back(user);
  for (const auto& user : users) {
    std::size_t pooled = 0;
    for (const auto& [id, d] : drivers_) {
      if (d->record.pooled && !d->stopping && !d->exited && !is_finished(d->record.state) &&
          d->record.user == user) {
        ++pooled;
      }
    }
    for (; pooled < settings_.pool_size; ++pooled) {
      SessionRequest defaults;
      auto launched = launch_driver(defaults, "session", user, /*pooled=*/true,
                                    "hearth-pool-" + user.value_or("any"));
      if (!launched) {
        std::cerr << "[hearth] cannot start a pooled driver: " << launched.error().message << "\n";
        return;  // tried again at the next lifecycle check
      }
      std::cerr << "[hearth] pooled driver " << (*launched)->record.id << " starting\n";
    }
  }
}

void SessionManager::save_driver(LiveDriver& driver) {
  if (auto put = store_.put_driver(driver.record); !put) {
    std::cerr << "[hearth] cannot store driver " << driver.record.id << ": " << put.error().message << "\n";
  }
}

Result<SessionRecord> SessionManager::create_session(SessionRequest request,
                                                     std::optional<std::string> owner) {
  if (request.kind == "sparkr" && sparkr_missing_) {
    return make_error("bad_request", "Rejected, Reason: sparkr sessions need R and SparkR: " +
                                         *sparkr_missing_);
  }
  const std::string share_level = request.share_level.value_or(settings_.default_share_level);
  if (share_level != "session" && share_level != "user") {
    return make_error("bad_request", "shareLevel must be \"session\" or \"user\", not \"" + share_level + "\"");
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

  // The Spark identity: the proxy user asked for, else the authenticated owner.
  const std::optional<std::string> user = request.proxy_user ? request.proxy_user : owner;
  SessionRecord record;
  record.id = *id;
  record.request = std::move(request);
  record.owner = std::move(owner);
  record.state = SessionState::kStarting;
  record.created_ms = now_ms();

  std::lock_guard lock(mutex_);
  if (stopped_) return make_error("session_not_active", "the server is shutting down");
  std::size_t starting = 0;
  for (const auto& [other_id, other] : live_) {
    if (!other->opened && other->process && other->process->running()) ++starting;
  }
  if (starting >= settings_.max_starting) {
    return make_error("bad_request", "Rejected, too many sessions are being created!");
  }

  auto live = std::make_unique<LiveSession>();
  live->session_id = record.id;
  live->own_driver = share_level == "session";
  live->last_activity_ms = live->last_request_ms = record.created_ms;

  LiveDriver* driver = find_attachable(share_level, user, profile_of(record.request));
  if (driver) {
    // Attached to a running driver: its create-time artifacts are added to the session there.
    for (const auto& uri : record.request.jars) live->artifacts.emplace_back("jar", uri);
    for (const auto& uri : record.request.py_files) live->artifacts.emplace_back("pyfile", uri);
    for (const auto& uri : record.request.files) live->artifacts.emplace_back("file", uri);
    for (const auto& uri : record.request.archives) live->artifacts.emplace_back("archive", uri);
    if (driver->record.pooled) {
      driver->record.pooled = false;
      driver->record.share_level = share_level;
      driver->record.user = user;
      std::cerr << "[hearth] session " << record.id << " takes pooled driver " << driver->record.id << "\n";
    }
  } else {
    std::string app_name = share_level == "session"
                               ? record.request.name.value_or("hearth-session-" + std::to_string(record.id))
                               : "hearth-shared-" + user.value_or("anonymous");
    auto launched = launch_driver(record.request, share_level, user, /*pooled=*/false, app_name);
    if (!launched) {
      std::cerr << "[hearth] session " << record.id << ": " << launched.error().message << "\n";
      if (launched.error().code == "store_unavailable" || launched.error().code == "store_error") {
        return launched.error();
      }
      record.state = SessionState::kError;
      if (auto put = save_session(record); !put) return put.error();
      live_[record.id] = std::move(live);
      return record;
    }
    driver = *launched;
  }
  record.driver_id = driver->record.id;
  record.app_id = driver->record.app_id;
  record.spark_ui_url = driver->record.spark_ui_url;
  if (auto put = save_session(record); !put) return put.error();
  driver->sessions.insert(record.id);
  driver->record.last_used_ms = std::max(driver->record.last_used_ms, now_ms());
  save_driver(*driver);
  live->driver_id = driver->record.id;
  live->process = driver->process;
  LiveSession& attached = *live;
  live_[record.id] = std::move(live);
  if (driver->record.state == DriverState::kReady) open_session(*driver, attached);
  refill_pool();
  return record;
}

Result<SessionRecord> SessionManager::get_session(int64_t session_id) {
  auto record = store_.get_session(session_id);
  if (!record) return record.error();
  if (!record->has_value()) return not_found(session_id);
  return std::move(**record);
}

void SessionManager::open_session(LiveDriver& driver, LiveSession& live) {
  auto record = store_.get_session(live.session_id);
  std::string kind = record && record->has_value() ? (*record)->request.kind : std::string("shared");
  if (auto sent = channel_->send(driver.record.id, protocol::OpenSession{live.session_id, kind}); sent) {
    live.open_sent = true;
  }
}

// The driver opened the session: add its create-time artifacts first, then let statements go.
void SessionManager::session_opened(LiveSession& live) {
  if (live.opened || live.failed) return;
  if (!live.artifacts.empty()) {
    for (auto& [kind, uri] : live.artifacts) {
      const int64_t request_id = next_request_id_++;
      if (channel_->send(live.driver_id, protocol::AddArtifact{live.session_id, request_id, kind, uri})) {
        attach_artifacts_[request_id] = live.session_id;
        ++live.pending_artifacts;
      }
    }
    live.artifacts.clear();
    if (live.pending_artifacts > 0) return;
  }
  if (live.pending_artifacts > 0) return;
  live.opened = true;
  dispatch_waiting(live);
  settle_idle_or_busy(live);
}

DriverView SessionManager::view_of(const LiveDriver& driver) const {
  DriverView view;
  view.record = driver.record;
  for (int64_t session_id : driver.sessions) {
    view.sessions.push_back(session_id);
    auto it = live_.find(session_id);
    if (it == live_.end()) continue;
    const LiveSession& live = *it->second;
    if (live.work.count(WorkKind::kStatement) > 0) ++view.busy_sessions;
    // One statement of a session runs at a time; the others wait behind it.
    if (live.work.any_dispatched(WorkKind::kStatement)) ++view.running_statements;
    view.running_jobs += static_cast<int64_t>(live.work.count(WorkKind::kJob));
  }
  if (driver.exited) {
    view.state = driver.record.state == DriverState::kError ? "error" : "dead";
  } else if (driver.stopping) {
    view.state = "stopping";
  } else if (driver.silent || (driver.adopted && !channel_->connected(driver.record.id))) {
    view.state = "recovering";
  } else if (driver.record.state == DriverState::kReady) {
    view.state = view.busy_sessions > 0 || view.running_jobs > 0 ? "busy" : "idle";
  } else {
    view.state = std::string(to_string(driver.record.state));
  }
  return view;
}

std::vector<DriverView> SessionManager::list_drivers() const {
  std::lock_guard lock(mutex_);
  std::vector<const LiveDriver*> drivers;
  for (const auto& [id, d] : drivers_) {
    if (!d->exited) drivers.push_back(d.get());
  }
  std::sort(drivers.begin(), drivers.end(), [](const LiveDriver* a, const LiveDriver* b) {
    return a->record.created_ms < b->record.created_ms;
  });
  std::vector<DriverView> views;
  for (const LiveDriver* d : drivers) views.push_back(view_of(*d));
  return views;
}

Result<DriverView> SessionManager::get_driver(const std::string& driver_id) const {
  std::lock_guard lock(mutex_);
  auto it = drivers_.find(driver_id);
  if (it == drivers_.end() || it->second->exited) {
    return make_error("not_found", "Driver '" + driver_id + "' not found.");
  }
  return view_of(*it->second);
}

Result<DriverView> SessionManager::session_driver(int64_t session_id) const {
  auto record = store_.get_session(session_id);
  if (!record) return record.error();
  if (!record->has_value()) return not_found(session_id);
  if ((*record)->driver_id.empty()) {
    return make_error("not_found", "Session '" + std::to_string(session_id) + "' has no driver.");
  }
  auto driver = get_driver((*record)->driver_id);
  if (!driver) {
    return make_error("not_found", "The driver of session '" + std::to_string(session_id) + "' is gone.");
  }
  return driver;
}

Result<void> SessionManager::delete_driver(const std::string& driver_id) {
  {
    std::lock_guard lock(mutex_);
    auto* driver = find_driver(driver_id);
    if (!driver || driver->exited) return make_error("not_found", "Driver '" + driver_id + "' not found.");
  }
  stop_driver_process(driver_id);
  std::unique_ptr<LiveDriver> gone;
  {
    std::lock_guard lock(mutex_);
    if (auto it = drivers_.find(driver_id); it != drivers_.end()) {
      gone = std::move(it->second);
      drivers_.erase(it);
    }
    report_failed_write(store_.delete_driver(driver_id), "forget driver " + driver_id);
    refill_pool();
  }
  return Ok{};  // `gone` is released here, outside the lock
}

void SessionManager::stop_driver_process(const std::string& driver_id) {
  std::shared_ptr<ChildProcess> process;
  {
    std::lock_guard lock(mutex_);
    auto* driver = find_driver(driver_id);
    if (!driver) return;
    process = driver->process;
    if (process && process->running() && !driver->exited) {
      driver->stopping = true;
      for (int64_t session_id : driver->sessions) move_session(session_id, SessionState::kShuttingDown);
      save_driver(*driver);
      (void)channel_->send(driver_id, protocol::Shutdown{});
    }
  }
  // Wait for the driver to stop by itself, without the lock (the exit callback needs it).
  if (process) {
    process->stop(settings_.stop_grace);
    return;
  }
  stop_adopted_driver(driver_id);
}

void SessionManager::stop_adopted_driver(const std::string& driver_id) {
  int64_t pid = 0;
  {
    std::lock_guard lock(mutex_);
    auto* driver = find_driver(driver_id);
    if (!driver || driver->exited || !driver->adopted) return;
    pid = driver->record.pid;
    driver->stopping = true;
    for (int64_t session_id : driver->sessions) {
      move_session(session_id, SessionState::kShuttingDown);
    }
    save_driver(*driver);
    (void)channel_->send(driver_id, protocol::Shutdown{});  // not connected: it is killed below
  }
  // Not our child: the pid counts only while its command line still names this driver.
  std::string how = "stopped";
  if (!wait_until_gone(static_cast<int>(pid), driver_id, settings_.stop_grace)) {
    kill_process_tree(static_cast<int>(pid), driver_id);
    wait_until_gone(static_cast<int>(pid), driver_id, std::chrono::seconds(10));
    how = "killed after " + std::to_string(settings_.stop_grace.count() / 1000) + " s";
  }
  std::lock_guard lock(mutex_);
  if (auto* driver = find_driver(driver_id); driver && !driver->exited) driver_gone(*driver, how);
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
  std::map<int64_t, SessionActivity> activity;
  for (const auto& [id, live] : live_) {
    activity[id] = SessionActivity{live->last_activity_ms, live->last_request_ms, !live->work.empty()};
  }
  auto verdict = session::expired_sessions(
      now_ms(), LifecycleSettings{settings_.session_timeout, settings_.state_retain}, *sessions,
      activity, std::move(finished_since_ms_));
  finished_since_ms_ = std::move(verdict.finished_since_ms);
  for (auto& session : verdict.expired) expired.emplace_back(session.session_id, std::move(session.reason));
  return expired;
}

std::vector<std::string> SessionManager::unused_drivers() {
  std::lock_guard lock(mutex_);
  std::vector<DriverUse> drivers;
  for (const auto& [id, d] : drivers_) {
    drivers.push_back(DriverUse{id, d->record.share_level, d->record.pooled, !d->sessions.empty(),
                                d->stopping, d->exited, d->record.last_used_ms});
  }
  return session::unused_drivers(now_ms(), settings_.driver_unused_timeout, drivers);
}

std::vector<std::unique_ptr<SessionManager::LiveDriver>> SessionManager::take_exited_drivers() {
  std::vector<std::unique_ptr<LiveDriver>> gone;
  for (auto it = drivers_.begin(); it != drivers_.end();) {
    if (it->second->exited && it->second->sessions.empty()) {
      report_failed_write(store_.delete_driver(it->first), "forget driver " + it->first);
      gone.push_back(std::move(it->second));
      it = drivers_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

void SessionManager::collect_garbage_loop() {
  auto next_sweep = std::chrono::steady_clock::now() + settings_.gc_interval;
  for (;;) {
    std::vector<std::unique_ptr<LiveDriver>> gone;
    {
      std::unique_lock lock(mutex_);
      // Liveness is checked every heartbeat; the lifecycle rules every gc_interval.
      gc_cv_.wait_for(lock, std::min(settings_.heartbeat, settings_.gc_interval), [this] { return stopped_; });
      if (stopped_) return;
    }
    check_driver_liveness();
    if (std::chrono::steady_clock::now() < next_sweep) continue;
    next_sweep = std::chrono::steady_clock::now() + settings_.gc_interval;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      gone = take_exited_drivers();
      refill_pool();
    }
    gone.clear();  // outside the lock: see mutex_
    // Deleting blocks until the driver has stopped; done here, never under the lock.
    for (const auto& [session_id, reason] : expired_sessions()) {
      std::cerr << "[hearth] session " << session_id << " deleted: " << reason << "\n";
      if (auto deleted = delete_session(session_id); !deleted) {
        std::cerr << "[hearth] cannot delete session " << session_id << ": " << deleted.error().message << "\n";
      }
    }
    for (const auto& driver_id : unused_drivers()) {
      std::cerr << "[hearth] driver " << driver_id << " stopped: no session for "
                << settings_.driver_unused_timeout.count() / 1000 << " s\n";
      if (auto deleted = delete_driver(driver_id); !deleted) {
        std::cerr << "[hearth] cannot stop driver " << driver_id << ": " << deleted.error().message << "\n";
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

Result<void> SessionManager::delete_session(int64_t session_id) { return end_session(session_id, true); }

Result<void> SessionManager::stop_session(int64_t session_id) { return end_session(session_id, false); }

Result<void> SessionManager::end_session(int64_t session_id, bool remove) {
  std::string driver_id;
  bool own_driver = false;
  {
    std::unique_lock lock(mutex_);
    auto record = store_.get_session(session_id);
    if (!record) return record.error();
    if (!record->has_value()) return not_found(session_id);
    auto it = live_.find(session_id);
    LiveSession* live = it == live_.end() ? nullptr : it->second.get();
    LiveDriver* driver = live ? find_driver(live->driver_id) : nullptr;
    if (live && driver && !driver->exited) {
      driver_id = driver->record.id;
      own_driver = live->own_driver;
      if (!own_driver && driver->sessions.count(session_id)) {
        // On a shared driver only the session closes; wait (bounded) for the driver to confirm.
        if (!is_finished((*record)->state)) move_session(session_id, SessionState::kShuttingDown);
        if (live->open_sent) {
          (void)channel_->send(driver_id, protocol::CloseSession{session_id});
          closed_cv_.wait_for(lock, settings_.stop_grace, [&] {
            auto again = live_.find(session_id);
            LiveDriver* d = find_driver(driver_id);
            return again == live_.end() || again->second->closed || !d || d->exited;
          });
        }
        // The session may have been removed by a concurrent DELETE while the lock was released.
        if (auto again = live_.find(session_id); again != live_.end()) {
          end_session_on_driver(*again->second, SessionState::kDead, "The session was closed.",
                                /*cancelled=*/true);
        }
        // Detached now, so that a driver_state ready arriving later does not open it again.
        if (LiveDriver* d = find_driver(driver_id)) {
          d->sessions.erase(session_id);
          d->record.last_used_ms = now_ms();
          if (!d->exited) save_driver(*d);
        }
      }
    }
  }
  if (own_driver) stop_driver_process(driver_id);

  std::unique_ptr<LiveSession> live;
  std::vector<std::unique_ptr<LiveDriver>> gone;
  const std::filesystem::path artifacts_dir = settings_.data_dir / "artifacts" / std::to_string(session_id);
  bool keep_artifacts = false;
  {
    std::lock_guard lock(mutex_);
    auto record = store_.get_session(session_id);
    if (!record) return record.error();
    if (!record->has_value()) return Ok{};  // a concurrent DELETE finished first
    if (auto it = live_.find(session_id); it != live_.end()) {
      if (auto* driver = find_driver(it->second->driver_id)) {
        driver->sessions.erase(session_id);
        driver->record.last_used_ms = now_ms();
        if (!driver->exited) save_driver(*driver);
      }
    }
    if (!remove) {
      // The exit or close has marked it dead if it had a driver; a session without one (from an
      // earlier server process, or whose launch failed) is marked here.
      if (!is_finished((*record)->state) || (*record)->state == SessionState::kError) {
        if (auto moved = set_state(session_id, SessionState::kDead); !moved) return moved.error();
      }
      gone = take_exited_drivers();
      return Ok{};  // the live entry stays: its log remains readable
    }
    if (auto it = live_.find(session_id); it != live_.end()) {
      // Spark cannot unregister what a session added to the SparkContext: a driver that lives on
      // keeps serving the session's uploaded jars and files to new executors and tasks of every
      // session, so they are deleted with the driver, not with the session.
      // Only a session that uploaded something has a directory to keep (most have none, and
      // a long-lived driver would otherwise collect an entry per session it ever served).
      std::error_code no_dir;
      auto* driver = find_driver(it->second->driver_id);
      if (driver && !driver->exited && std::filesystem::exists(artifacts_dir, no_dir)) {
        driver->leftover_artifacts.push_back(artifacts_dir);
        keep_artifacts = true;
      }
      live = std::move(it->second);
      live_.erase(it);
    }
    if (auto removed = store_.delete_session(session_id); !removed) return removed.error();
    gone = take_exited_drivers();
  }
  std::error_code ignored;
  if (!keep_artifacts) std::filesystem::remove_all(artifacts_dir, ignored);
  // `live`, `gone` and their processes are released here, outside the lock: the last owner of a
  // process joins its supervisor thread, which may be waiting for the lock in the exit callback.
  return Ok{};
}

// Detaches a session from its driver's work: unfinished statements and jobs end, the session
// takes state `to` (unless it already finished).
void SessionManager::end_session_on_driver(LiveSession& live, SessionState to, const std::string& why,
                                           bool cancelled) {
  fail_outstanding(live, why, cancelled);
  live.opened = false;
  auto record = store_.get_session(live.session_id);
  if (!record || !record->has_value()) return;
  SessionState current = (*record)->state;
  if (is_finished(current) && current != SessionState::kError) return;
  if (current != to) move_session(live.session_id, to);
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
    live.work.add({WorkKind::kStatement, statement.id});
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
    report_illegal(advance(statement.state, StatementState::kCancelled), statement);
    statement.progress = 1.0;
    statement.completed_ms = now_ms();
  } else {
    report_illegal(advance(statement.state, StatementState::kCancelling), statement);
  }
  if (auto put = save_statement(statement); !put) return put.error();
  if (live) {
    const WorkItem item{WorkKind::kStatement, statement_id};
    if (live->work.place(item) == WorkQueue::Place::kDispatched) {
      (void)channel_->send(live->driver_id, protocol::CancelStatement{session_id, statement_id});
    }
    if (is_terminal(statement.state)) {
      live->work.finish(item);
      settle_idle_or_busy(*live);
    }
  }
  return std::move(statement);
}

// ---- jobs --------------------------------------------------------------------------------

Result<JobRecord> SessionManager::start_job(int64_t session_id, JobRequest request) {
  std::lock_guard lock(mutex_);
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  SessionState state = (*session)->state;
  if (!is_active(state) || state == SessionState::kError) {
    return make_error("session_not_active", "requirement failed: Session isn't active.");
  }
  auto id = store_.next_job_id(session_id);
  if (!id) return id.error();
  JobRecord job;
  job.session_id = session_id;
  job.id = *id;
  job.class_name = std::move(request.class_name);
  job.jar = std::move(request.jar);
  job.args = std::move(request.args);
  job.conf = std::move(request.conf);
  job.state = JobState::kQueued;
  job.created_ms = now_ms();
  if (auto put = save_job(job); !put) return put.error();
  if (auto it = live_.find(session_id); it != live_.end()) {
    LiveSession& live = *it->second;
    live.last_activity_ms = live.last_request_ms = now_ms();
    live.work.add({WorkKind::kJob, job.id});
    if (live.opened) dispatch_waiting(live);
  }
  return job;
}

Result<JobRecord> SessionManager::get_job(int64_t session_id, int64_t job_id) {
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  auto job = store_.get_job(session_id, job_id);
  if (!job) return job.error();
  if (!job->has_value()) return make_error("not_found", "Job '" + std::to_string(job_id) + "' not found.");
  return std::move(**job);
}

Result<std::vector<JobRecord>> SessionManager::list_jobs(int64_t session_id) {
  auto session = store_.get_session(session_id);
  if (!session) return session.error();
  if (!session->has_value()) return not_found(session_id);
  return store_.list_jobs(session_id);
}

Result<JobRecord> SessionManager::cancel_job(int64_t session_id, int64_t job_id) {
  std::lock_guard lock(mutex_);
  auto found = get_job(session_id, job_id);
  if (!found) return found.error();
  JobRecord& job = *found;
  if (is_terminal(job.state) || job.state == JobState::kCancelling) return std::move(job);
  auto it = live_.find(session_id);
  LiveSession* live = it == live_.end() ? nullptr : it->second.get();
  if (live) live->last_activity_ms = live->last_request_ms = now_ms();
  const WorkItem item{WorkKind::kJob, job_id};
  const bool handed_over = live && live->work.place(item) == WorkQueue::Place::kDispatched;
  if (!handed_over) {
    report_illegal(advance(job.state, JobState::kCancelled), job);
    job.completed_ms = now_ms();
  } else {
    report_illegal(advance(job.state, JobState::kCancelling), job);
  }
  if (auto put = save_job(job); !put) return put.error();
  if (live) {
    if (handed_over) (void)channel_->send(live->driver_id, protocol::CancelJob{session_id, job_id});
    if (is_terminal(job.state)) {
      live->work.finish(item);
    }
  }
  return std::move(job);
}

Result<void> SessionManager::save_job(const JobRecord& job) {
  auto saved = store_.put_job(job);
  if (saved) notify(Change{Change::Kind::kJob, job.session_id, job.id, {}, {}});
  return saved;
}

Result<void> SessionManager::save_session(const SessionRecord& session) {
  auto saved = store_.put_session(session);
  if (saved) notify(Change{Change::Kind::kSession, session.id, 0, {}, {}});
  return saved;
}

void SessionManager::notify(Change change) const {
  if (change_observer_) change_observer_(std::move(change));
}

Result<int64_t> SessionManager::append_event(int64_t session_id, std::string_view kind,
                                             std::string_view body_json) {
  return store_.append_event(session_id, kind, body_json);
}

Result<EventLog> SessionManager::events_since(int64_t session_id, int64_t since) {
  return store_.events_since(session_id, since);
}

void SessionManager::handle_job_update(LiveSession& live, const protocol::JobUpdate& update) {
  auto found = store_.get_job(live.session_id, update.job_id);
  if (!found || !found->has_value()) return;
  JobRecord& job = **found;
  auto to = parse_job_state(update.state);
  if (!to || is_terminal(job.state)) return;
  if (*to == JobState::kQueued) return;  // the driver accepted it; nothing new for clients
  if (job.state == JobState::kCancelling && *to == JobState::kRunning) {
    job.progress = update.progress;
    report_failed_write(save_job(job), "store job " + std::to_string(job.id));
    return;
  }
  if (auto allowed = advance(job.state, *to); !allowed) {
    std::cerr << "[hearth] session " << live.session_id << " job " << job.id << ": "
              << allowed.error().message << "\n";
    return;
  }
  job.progress = update.progress;
  job.started_ms = update.started;
  job.completed_ms = update.completed;
  if (update.result_json) job.result_json = update.result_json;
  if (update.error) job.error = update.error;
  if (!update.traceback.empty()) job.traceback = update.traceback;
  if (auto put = save_job(job); !put) {
    std::cerr << "[hearth] cannot store job update: " << put.error().message << "\n";
    return;
  }
  if (is_terminal(job.state)) {
    live.work.finish({WorkKind::kJob, job.id});
  }
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
  if (!answer) {
    return make_error("driver_timeout", "the session's driver did not answer the completion request within " +
                                            std::to_string(settings_.completion_timeout.count()) + " ms");
  }
  return std::move(*answer);
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
  // Close-on-exec (an ofstream cannot be): a large upload is still open while drivers start.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return make_error("artifact_failed", "cannot write " + path.string());
  bool ok = true;
  for (std::size_t written = 0; ok && written < data.size();) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n > 0) written += static_cast<std::size_t>(n);
    ok = n > 0 || (n < 0 && errno == EINTR);
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok) return make_error("artifact_failed", "cannot write " + path.string());
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
// Runs on every submit: below the limit it costs one round trip, at the limit it reads only
// the oldest statements (usually one).
void SessionManager::evict_old_statements(int64_t session_id) {
  auto count = store_.count_statements(session_id);
  if (!count || *count <= static_cast<int64_t>(settings_.retained_statements)) return;
  int64_t excess = *count - static_cast<int64_t>(settings_.retained_statements);
  int64_t kept = 0;  // unfinished ones among the oldest: they stay, and stay in front
  while (excess > 0) {
    auto oldest = store_.list_statements(session_id, kept, kept + excess - 1);
    if (!oldest || oldest->empty()) return;
    for (const auto& statement : *oldest) {
      if (!is_terminal(statement.state)) {
        ++kept;
      } else if (store_.delete_statement(session_id, statement.id)) {
        --excess;
      } else {
        return;  // the store failed: try again at the next submit
      }
    }
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
  if (saved) notify(Change{Change::Kind::kStatement, statement.session_id, statement.id, {}, {}});
  return saved;
}

void SessionManager::move_session(int64_t session_id, SessionState to) {
  report_failed_write(set_state(session_id, to),
                      "move session " + std::to_string(session_id) + " to " + std::string(to_string(to)));
}

Result<void> SessionManager::set_state(int64_t session_id, SessionState to) {
  auto record = store_.get_session(session_id);
  if (!record) return record.error();
  if (!record->has_value()) return not_found(session_id);
  SessionRecord& session = **record;
  if (session.state == to) return Ok{};
  if (auto allowed = check_transition(session.state, to); !allowed) return allowed.error();
  session.state = to;
  return save_session(session);
}

// The client-visible idle/busy state is derived from the server's own knowledge: busy while any
// accepted statement has not finished, so a client never sees "idle" with work still queued.
void SessionManager::settle_idle_or_busy(LiveSession& live) {
  auto record = store_.get_session(live.session_id);
  if (!record || !record->has_value()) return;
  SessionState current = (*record)->state;
  if (current != SessionState::kIdle && current != SessionState::kBusy &&
      current != SessionState::kStarting && current != SessionState::kRecovering) {
    return;
  }
  // Recovering lasts while the driver is silent or not yet back.
  if (const LiveDriver* driver = find_driver(live.driver_id);
      current == SessionState::kRecovering && (!driver || driver->silent || !live.opened)) {
    return;
  }
  SessionState want = live.work.count(WorkKind::kStatement) == 0 ? SessionState::kIdle : SessionState::kBusy;
  if (current == SessionState::kBusy && want == SessionState::kIdle) live.last_activity_ms = now_ms();
  move_session(live.session_id, want);
}

void SessionManager::dispatch_waiting(LiveSession& live) {
  using Sent = WorkQueue::Sent;
  // A failed send stops the dispatch: retried at the next one (e.g. when the driver reconnects).
  live.work.dispatch([&](WorkItem item) {
    if (item.kind == WorkKind::kStatement) {
      auto statement = store_.get_statement(live.session_id, item.id);
      if (!statement || !statement->has_value()) return Sent::kSkipped;
      protocol::Execute execute{live.session_id, item.id, (*statement)->kind, (*statement)->code};
      if (auto sent = channel_->send(live.driver_id, std::move(execute)); !sent) {
        std::cerr << "[hearth] session " << live.session_id << ": cannot send statement "
                  << item.id << ": " << sent.error().message << "\n";
        return Sent::kFailed;
      }
      // A cancel asked for while the driver was away goes right behind the statement.
      if ((*statement)->state == StatementState::kCancelling) {
        (void)channel_->send(live.driver_id, protocol::CancelStatement{live.session_id, item.id});
      }
      return Sent::kSent;
    }
    auto job = store_.get_job(live.session_id, item.id);
    if (!job || !job->has_value()) return Sent::kSkipped;
    const JobRecord& j = **job;
    protocol::StartJob start{live.session_id, item.id, j.class_name, j.args, j.conf, j.jar};
    if (auto sent = channel_->send(live.driver_id, std::move(start)); !sent) {
      std::cerr << "[hearth] session " << live.session_id << ": cannot send job " << item.id << ": "
                << sent.error().message << "\n";
      return Sent::kFailed;
    }
    if (j.state == JobState::kCancelling) {
      (void)channel_->send(live.driver_id, protocol::CancelJob{live.session_id, item.id});
    }
    return Sent::kSent;
  });
}

void SessionManager::fail_outstanding(LiveSession& live, const std::string& why, bool cancelled) {
  const int64_t now = now_ms();
  for (const WorkItem& item : live.work.take_all()) {
    if (item.kind == WorkKind::kStatement) {
      auto statement = store_.get_statement(live.session_id, item.id);
      if (!statement || !statement->has_value()) continue;
      StatementRecord& s = **statement;
      if (is_terminal(s.state)) continue;
      if (cancelled) {
        report_illegal(advance(s.state, StatementState::kCancelled), s);
      } else {
        report_illegal(advance(s.state, StatementState::kAvailable), s);
        s.output_json = error_output(item.id, why);
      }
      s.progress = 1.0;
      s.completed_ms = now;
      report_failed_write(save_statement(s), "store statement " + std::to_string(s.id));
      continue;
    }
    auto job = store_.get_job(live.session_id, item.id);
    if (!job || !job->has_value()) continue;
    JobRecord& j = **job;
    if (is_terminal(j.state)) continue;
    if (cancelled || j.state == JobState::kCancelling) {
      report_illegal(advance(j.state, JobState::kCancelled), j);
    } else {
      report_illegal(advance(j.state, JobState::kFailed), j);
      j.error = why;
    }
    j.completed_ms = now;
    report_failed_write(save_job(j), "store job " + std::to_string(j.id));
  }
}

void SessionManager::on_driver_message(const std::string& driver_id, protocol::Message message) {
  std::lock_guard lock(mutex_);
  LiveDriver* driver = find_driver(driver_id);
  if (!driver || driver->exited) return;
  if (driver->silent) {
    // It speaks again: sessions that went `recovering` while it was silent settle once more.
    driver->silent = false;
    std::cerr << "[hearth] driver " << driver_id << " is back\n";
    for (int64_t session_id : driver->sessions) {
      if (auto* live = live_session(session_id, driver_id); live && live->opened) settle_idle_or_busy(*live);
    }
  }

  if (auto* hello = std::get_if<protocol::Hello>(&message)) {
    // Welcomed (again). An adopted driver tells its JVM's pid, which signals go to.
    if (driver->adopted && hello->pid != driver->record.pid) {
      driver->record.pid = hello->pid;
      save_driver(*driver);
    }
    std::cerr << "[hearth] driver " << driver_id << " connected (pid " << hello->pid << ")\n";
    return;
  }
  if (auto* status = std::get_if<protocol::DriverStatus>(&message)) {
    if (status->state == "ready") {
      if (driver->record.state == DriverState::kStarting) {
        driver->record.state = DriverState::kReady;
        driver->record.app_id = status->app_id;
        driver->record.spark_ui_url = status->spark_ui_url;
        save_driver(*driver);
        std::cerr << "[hearth] driver " << driver_id << " ready (" << status->app_id.value_or("")
                  << ")\n";
      }
      for (int64_t session_id : driver->sessions) {
        if (auto record = store_.get_session(session_id); record && record->has_value() &&
            ((*record)->app_id != status->app_id || (*record)->spark_ui_url != status->spark_ui_url)) {
          (*record)->app_id = status->app_id;
          (*record)->spark_ui_url = status->spark_ui_url;
          report_failed_write(save_session(**record), "store session " + std::to_string(session_id));
        }
        // The agent re-sends driver_state after every welcome: (re-)open each session (it
        // answers with the session's state) and hand its unfinished work over again, since
        // frames of an earlier connection may be lost. The agent runs each id once.
        if (auto* live = live_session(session_id, driver_id)) {
          live->work.resend_all();
          open_session(*driver, *live);
        }
      }
      // Sessions the agent holds that the server no longer wants (deleted, or ended, while it
      // was away) are closed: their interpreters and namespaces would otherwise live on.
      for (int64_t held : status->sessions) {
        if (driver->sessions.count(held) == 0) {
          std::cerr << "[hearth] driver " << driver_id << ": closing session " << held
                    << ", which the server no longer has\n";
          (void)channel_->send(driver_id, protocol::CloseSession{held});
        }
      }
    } else if (status->state == "error") {
      std::cerr << "[hearth] driver " << driver_id << " failed: " << status->message.value_or("") << "\n";
      if (can_transition(driver->record.state, DriverState::kError)) {
        driver->record.state = DriverState::kError;
        save_driver(*driver);
      }
      for (int64_t session_id : driver->sessions) move_session(session_id, SessionState::kError);
    }
    return;
  }
  if (auto* status = std::get_if<protocol::SessionStatus>(&message)) {
    LiveSession* live = live_session(status->session_id, driver_id);
    if (!live) return;
    if (status->state == "idle" || status->state == "busy") {
      if (!live->opened) {
        session_opened(*live);
      } else {
        dispatch_waiting(*live);  // after a reconnect: resend_all
        settle_idle_or_busy(*live);
      }
    } else if (status->state == "error") {
      std::cerr << "[hearth] session " << live->session_id << ": " << status->message.value_or("") << "\n";
      move_session(live->session_id, SessionState::kError);
    } else if (status->state == "dead") {
      live->closed = true;
      closed_cv_.notify_all();
    }
    return;
  }
  if (auto* update = std::get_if<protocol::StatementUpdate>(&message)) {
    LiveSession* live = live_session(update->session_id, driver_id);
    if (!live) return;
    const int64_t session_id = live->session_id;
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
      report_failed_write(save_statement(s), "store statement " + std::to_string(s.id));
      return;
    }
    if (auto allowed = advance(s.state, *to); !allowed) {
      std::cerr << "[hearth] session " << session_id << " statement " << s.id << ": "
                << allowed.error().message << "\n";
      return;
    }
    s.progress = update->progress;
    s.started_ms = update->started;
    s.completed_ms = update->completed;
    if (update->output_json) s.output_json = update->output_json;
    if (auto put = save_statement(s); !put) {
      std::cerr << "[hearth] cannot store statement update: " << put.error().message << "\n";
      return;
    }
    if (is_terminal(s.state)) {
      live->work.finish({WorkKind::kStatement, s.id});
      settle_idle_or_busy(*live);
    }
    return;
  }
  if (auto* update = std::get_if<protocol::JobUpdate>(&message)) {
    if (LiveSession* live = live_session(update->session_id, driver_id)) handle_job_update(*live, *update);
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
      return;
    }
    if (auto it = attach_artifacts_.find(added->request_id); it != attach_artifacts_.end()) {
      const int64_t session_id = it->second;
      attach_artifacts_.erase(it);
      LiveSession* live = live_session(session_id, driver_id);
      if (!live || live->pending_artifacts == 0) return;
      --live->pending_artifacts;
      if (added->error && !live->failed) {
        // As a Livy session whose jars cannot be loaded: it fails to start.
        live->failed = true;
        std::cerr << "[hearth] session " << session_id << ": " << *added->error << "\n";
        move_session(session_id, SessionState::kError);
        fail_outstanding(*live, "The session's artifacts could not be added: " + *added->error, false);
        return;
      }
      if (live->pending_artifacts == 0) session_opened(*live);
    }
    return;
  }
  if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    std::cerr << "[hearth] driver " << driver_id << " answered error " << error->code << ": "
              << error->message << "\n";
  }
}

void SessionManager::on_driver_exit(const std::string& driver_id, int wait_status) {
  std::lock_guard lock(mutex_);
  LiveDriver* driver = find_driver(driver_id);
  if (!driver) return;
  driver_gone(*driver, describe_exit(wait_status));
}

void SessionManager::driver_gone(LiveDriver& driver, const std::string& how) {
  const std::string driver_id = driver.record.id;
  std::cerr << "[hearth] driver " << driver_id << " exited (" << how << ")\n";
  driver.exited = true;
  if (driver.record.state != DriverState::kError) (void)advance(driver.record.state, DriverState::kDead);
  report_failed_write(store_.delete_driver(driver_id), "forget driver " + driver_id);
  std::filesystem::remove(driver.secret_file);
  for (const auto& dir : driver.leftover_artifacts) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  driver.leftover_artifacts.clear();
  const std::string why = driver.lost_reason.empty()
                              ? "The session's driver exited before it finished (" + how + ")."
                              : driver.lost_reason;
  for (int64_t session_id : driver.sessions) {
    auto it = live_.find(session_id);
    if (it != live_.end() && it->second->driver_id == driver_id) {
      // Work of a driver stopped on request is cancelled; a driver that died fails it.
      end_session_on_driver(*it->second, SessionState::kDead, why, /*cancelled=*/driver.stopping);
    }
  }
  driver.sessions.clear();
  closed_cv_.notify_all();
  gc_cv_.notify_all();
}

void SessionManager::check_driver_liveness() {
  std::lock_guard lock(mutex_);
  if (stopped_ || !channel_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto silent_after = kSilentHeartbeats * settings_.heartbeat;
  for (auto& [id, d] : drivers_) {
    LiveDriver& driver = *d;
    const auto verdict = judge_liveness(
        DriverSilence{driver.exited || driver.stopping, channel_->last_heard(id), driver.adopted,
                      driver.adopted_ms, driver.silent},
        now, now_ms(), silent_after, settings_.driver_lost_timeout);
    const std::chrono::milliseconds silent = verdict.silent_for;
    if (verdict.becomes_silent) {
      driver.silent = true;
      std::cerr << "[hearth] driver " << id << " silent for " << silent.count() << " ms: its sessions are recovering\n";
      for (int64_t session_id : driver.sessions) {
        auto record = store_.get_session(session_id);
        if (!record || !record->has_value()) continue;
        SessionState state = (*record)->state;
        if (state == SessionState::kIdle || state == SessionState::kBusy || state == SessionState::kStarting) {
          move_session(session_id, SessionState::kRecovering);
        }
      }
    }
    if (!verdict.lost) continue;
    driver.lost_reason = "The session's driver was lost: nothing heard from it for " +
                         std::to_string(silent.count() / 1000) + " s.";
    std::cerr << "[hearth] driver " << id << " lost (silent " << silent.count() << " ms)\n";
    if (driver.process) {
      driver.process->kill();  // the exit callback ends its sessions with lost_reason
    } else {
      kill_process_tree(static_cast<int>(driver.record.pid), id);
      driver_gone(driver, "lost");
    }
  }
}

}  // namespace hearth::session
