#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/child_process.hpp"
#include "hearth/session/driver_channel.hpp"
#include "hearth/session/records.hpp"
#include "hearth/session/session_store.hpp"
#include "hearth/session/spark_submit.hpp"

namespace hearth::session {

struct SessionManagerSettings {
  LaunchSettings launch;
  std::filesystem::path data_dir;                  // secrets/ lives below it
  std::string driver_bind_endpoint = "tcp://127.0.0.1:0";
  std::chrono::milliseconds heartbeat{2000};
  std::size_t max_log_lines = 200;
  std::chrono::milliseconds stop_grace{15000};     // how long a driver may take to stop by itself
  std::size_t retained_statements = 100;          // finished statements kept per session
  std::chrono::milliseconds completion_timeout{10000};
  // Lifecycle (Livy's livy.server.session.*): a session is deleted when it has been idle longer
  // than its idleTimeout or session_timeout (0 = never), when it is older than its ttl, when no
  // request about it came within its heartbeatTimeoutInSecond; a finished session is deleted
  // state_retain after it finished. Checked every gc_interval.
  std::chrono::milliseconds session_timeout{3'600'000};
  std::chrono::milliseconds state_retain{600'000};
  std::chrono::milliseconds gc_interval{10'000};
  std::size_t max_starting = 100;                 // sessions starting at once
  std::chrono::milliseconds artifact_timeout{120'000};  // how long adding an artifact may take
};

// Owns the life of sessions: launches one driver per session, talks to drivers over the driver
// channel, queues statements until their session's driver is ready, and writes every change to
// the store before it is reported. All public methods are thread-safe.
//
// Expected failures use these Error codes: "not_found" (no such session or statement),
// "session_not_active" (the session is shutting down or finished), plus the store's
// "store_unavailable" / "store_error" / "corrupt_record".
class SessionManager : private DriverChannel::Listener {
 public:
  SessionManager(SessionStore& store, SessionManagerSettings settings);
  ~SessionManager() override;  // calls stop()

  // Called after every change of a stored statement, possibly with the manager's lock held: it
  // must not block and must not call back into the manager. Set before start().
  using StatementObserver = std::function<void(int64_t session_id, int64_t statement_id)>;
  void set_statement_observer(StatementObserver observer) { statement_observer_ = std::move(observer); }

  // Marks sessions left active by an earlier server process as dead (their drivers are not
  // ours), then starts the driver channel. Throws std::runtime_error when the channel cannot bind.
  void start();
  // Shuts every driver down (bounded by stop_grace, then killed) and marks their sessions dead.
  void stop();

  std::string driver_endpoint() const;

  // Stores the session (state "starting") and launches its driver; returns at once.
  Result<SessionRecord> create_session(SessionRequest request, std::optional<std::string> owner);
  Result<SessionRecord> get_session(int64_t session_id);
  // Records use of a session: kActivity (statements, cancel, completion, connect) keeps it from
  // the idle timeout and the heartbeat timeout; kRequest (any other request about it) only
  // from the heartbeat timeout. GET polling is a kRequest, so it does not keep a session alive.
  enum class Touch { kActivity, kRequest };
  void touch(int64_t session_id, Touch what);

  // The session with this name; "not_found" when there is none.
  Result<SessionRecord> find_session_by_name(std::string_view name);
  Result<std::vector<SessionRecord>> list_sessions();
  // The driver's last output lines (empty once the session is deleted or for a session of an
  // earlier server process).
  std::vector<std::string> session_log(int64_t session_id) const;
  // Stops the session's driver (blocks until it has exited, at most about stop_grace) and
  // removes the session and its statements.
  Result<void> delete_session(int64_t session_id);
  // Stops the session's driver like delete_session but keeps the session (state dead) and its
  // statements readable.
  Result<void> stop_session(int64_t session_id);

  // Stores the statement (state "waiting") and hands it to the driver when the session is ready.
  // `kind` must already be resolved and valid.
  Result<StatementRecord> submit_statement(int64_t session_id, std::string code, std::string kind);
  Result<StatementRecord> get_statement(int64_t session_id, int64_t statement_id);
  // Cancels a statement. Waiting: cancelled at once (the driver is told, in case it already took
  // it). Running: "cancelling" until the driver answers cancelled (or available, if it finished
  // first). A finished statement is left as it is. Returns the statement as it is now.
  Result<StatementRecord> cancel_statement(int64_t session_id, int64_t statement_id);
  // Completion candidates from the session's interpreter of `kind`. Blocks up to
  // settings.completion_timeout for the driver's answer; empty when the session has no running
  // driver or the driver does not answer in time.
  Result<std::vector<std::string>> complete(int64_t session_id, std::string kind, std::string code,
                                            int64_t cursor);

  // Stores an uploaded artifact under <data_dir>/artifacts/<session>/ and returns its file: URI.
  // The directory goes with the session.
  Result<std::string> store_upload(int64_t session_id, std::string_view filename,
                                   std::string_view data);
  // Adds an artifact (kind: jar, pyfile, file, archive) to the session's driver and waits for
  // it (up to settings.artifact_timeout). "session_not_active" when the session has no running
  // driver; "artifact_failed" with the driver's reason when Spark refused it.
  Result<void> add_artifact(int64_t session_id, std::string kind, std::string uri);
  Result<std::vector<StatementRecord>> list_statements(int64_t session_id);

 private:
  struct LiveSession {
    int64_t session_id = 0;
    std::string driver_id;
    std::string secret;
    std::filesystem::path secret_file;
    // Shared so that a DELETE waiting for the exit keeps the process alive even when another
    // DELETE of the same session finishes first and drops the session.
    std::shared_ptr<ChildProcess> process;
    bool opened = false;                // the driver answered open_session
    std::set<int64_t> dispatched;       // statement ids sent to the driver
    std::set<int64_t> outstanding;      // statement ids not yet available/cancelled
    int64_t last_activity_ms = 0;       // see touch()
    int64_t last_request_ms = 0;
  };

  void on_driver_message(const std::string& driver_id, protocol::Message message) override;
  void on_driver_exit(int64_t session_id, int wait_status);

  // The helpers below expect mutex_ to be held.
  LiveSession* live_by_driver(const std::string& driver_id);
  Result<void> set_state(int64_t session_id, SessionState to);
  void dispatch_waiting(LiveSession& live);
  void settle_idle_or_busy(LiveSession& live);
  void fail_outstanding(LiveSession& live, const std::string& why);
  void evict_old_statements(int64_t session_id);
  Result<void> save_statement(const StatementRecord& statement);
  Result<void> stop_driver(int64_t session_id, bool remove);
  void collect_garbage_loop();
  // The sessions the lifecycle rules say must go now, with the reason. Takes the lock.
  std::vector<std::pair<int64_t, std::string>> expired_sessions();

  SessionStore& store_;
  const SessionManagerSettings settings_;
  std::unique_ptr<DriverChannel> channel_;
  StatementObserver statement_observer_;

  // Guards live_ and every read-modify-write of session and statement records, so updates
  // from REST threads, the channel thread and process supervisors apply one at a time.
  // Never held while waiting for a process to exit (exit callbacks take it).
  mutable std::mutex mutex_;
  std::map<int64_t, std::unique_ptr<LiveSession>> live_;
  bool stopped_ = false;

  // Completion requests waiting for the driver's answer, by request id. Guarded by mutex_;
  // completion_cv_ is notified when an answer arrives.
  std::condition_variable completion_cv_;
  std::condition_variable artifact_cv_;
  int64_t next_request_id_ = 1;
  std::map<int64_t, std::optional<std::vector<std::string>>> completions_;
  // add_artifact requests waiting for the driver: request id → (answered, error).
  std::map<int64_t, std::optional<std::optional<std::string>>> artifact_answers_;

  // Since when each finished session has been seen finished (for state_retain). Guarded by mutex_.
  std::map<int64_t, int64_t> finished_since_ms_;
  // The lifecycle thread; gc_cv_ (with mutex_) wakes it early to stop.
  std::condition_variable gc_cv_;
  std::thread gc_thread_;
  // Whether R and SparkR exist for drivers (checked once at start); sparkr sessions need both.
  std::optional<std::string> sparkr_missing_;
};

}  // namespace hearth::session
