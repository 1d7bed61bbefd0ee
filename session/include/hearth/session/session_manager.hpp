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
#include "hearth/session/work_queue.hpp"

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
  // Shared drivers: a request without shareLevel gets this one ("session" or "user").
  std::string default_share_level = "session";
  // Warm pool: this many idle pre-started drivers of the default profile for anonymous users,
  // and as many for each user in pool_users.
  std::size_t pool_size = 0;
  std::vector<std::string> pool_users;
  // A shared driver with no session for this long is stopped (0 = never). Pooled drivers stay.
  std::chrono::milliseconds driver_unused_timeout{600'000};
  // A driver silent for three heartbeats puts its sessions in `recovering`; silent this long (or,
  // adopted at start-up, not back this long) it is lost: its sessions end dead with the reason.
  std::chrono::milliseconds driver_lost_timeout{60'000};
  // stop(): false (the default) leaves drivers running for the next server process to adopt, so
  // a restart or an upgrade ends nobody's session; true shuts every driver down.
  bool stop_drivers_on_shutdown = false;
};

// Owns the life of sessions and drivers. A session with share level "session" gets a driver of
// its own (launched for it, or taken from the warm pool), which stops with it; a session with
// share level "user" attaches to a running driver of the same user and profile (launching one if
// there is none), and leaving it closes only the session. Talks to drivers over the driver
// channel, queues statements and jobs until their session is open on its driver, keeps the
// warm pool filled, and writes every change to the store before it is reported. All public
// methods are thread-safe.
//
// Expected failures use these Error codes: "not_found" (no such session, statement, job or
// driver), "session_not_active" (the session is shutting down or finished), "bad_request",
// "driver_timeout" (the driver did not answer a request in time),
// plus the store's "store_unavailable" / "store_error" / "corrupt_record".
class SessionManager : private DriverChannel::Listener {
 public:
  SessionManager(SessionStore& store, SessionManagerSettings settings);
  ~SessionManager() override;  // calls stop()

  // Called after every change of a stored statement, possibly with the manager's lock held: it
  // must not block and must not call back into the manager. Set before start().
  using StatementObserver = std::function<void(int64_t session_id, int64_t statement_id)>;
  void set_statement_observer(StatementObserver observer) { statement_observer_ = std::move(observer); }

  // A change the client channel pushes as an event.
  struct Change {
    enum class Kind { kSession, kStatement, kJob, kDriverLog };
    Kind kind = Kind::kSession;
    int64_t session_id = 0;          // kSession, kStatement, kJob
    int64_t item_id = 0;             // the statement or job id
    std::string driver_id;           // kDriverLog
    std::vector<std::string> lines;  // kDriverLog: lines the driver printed
  };
  // Called after every stored change of a session, statement or job, and with the lines each
  // driver prints; possibly with the manager's lock held and from any thread: it must not
  // block and must not call back into the manager. Set before start().
  using ChangeObserver = std::function<void(Change)>;
  void set_change_observer(ChangeObserver observer) { change_observer_ = std::move(observer); }

  // The client channel's event log (SessionStore::append_event / events_since).
  Result<int64_t> append_event(int64_t session_id, std::string_view kind, std::string_view body_json);
  Result<EventLog> events_since(int64_t session_id, int64_t since);

  // Recovers what an earlier server process left (recovery.hpp): drivers on record are adopted
  // and their sessions become `recovering` until the driver reconnects (then they go on, their
  // unfinished work handed over again, run once by the agent) or is declared lost; active
  // sessions without a driver end dead. Then starts the driver channel. Throws
  // std::runtime_error when the store cannot be read or the channel cannot bind.
  void start();
  // With stop_drivers_on_shutdown: shuts every driver down (bounded by stop_grace, then killed)
  // and marks their sessions dead. Without: leaves drivers and sessions as they are, for the
  // next server process.
  void stop();

  std::string driver_endpoint() const;

  // Stores the session (state "starting") and attaches it to a driver (a running shared one, a
  // pooled one, or one launched now); returns at once.
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
  // Ends the session and removes it, its statements and jobs. Its own driver is stopped (blocks
  // until it has exited, at most about stop_grace); on a shared driver only the session is
  // closed (blocks until the driver confirms, at most about stop_grace).
  Result<void> delete_session(int64_t session_id);
  // Ends the session like delete_session but keeps it (state dead), its statements and jobs
  // readable.
  Result<void> stop_session(int64_t session_id);

  // Drivers: the live ones (starting, ready, stopping), oldest first.
  std::vector<DriverView> list_drivers() const;
  // "not_found" when no live driver has this id.
  Result<DriverView> get_driver(const std::string& driver_id) const;
  // The driver the session is on; "not_found" when the session or its driver is gone.
  Result<DriverView> session_driver(int64_t session_id) const;
  // Stops a driver: its sessions end (state dead, unfinished statements and jobs end), the
  // process is stopped (blocks until it has exited, at most about stop_grace) and forgotten.
  Result<void> delete_driver(const std::string& driver_id);

  // Jobs: stores the job (state "queued") and hands it to the driver when the session is open.
  Result<JobRecord> start_job(int64_t session_id, JobRequest request);
  Result<JobRecord> get_job(int64_t session_id, int64_t job_id);
  Result<std::vector<JobRecord>> list_jobs(int64_t session_id);
  // Queued and not yet handed over: cancelled at once. Otherwise "cancelling" until the driver
  // answers. A finished job is left as it is. Returns the job as it is now.
  Result<JobRecord> cancel_job(int64_t session_id, int64_t job_id);

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
  // driver; "driver_timeout" when the driver does not answer in time.
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
  struct LiveDriver {
    DriverRecord record;  // what the store has; kept in step with it
    std::filesystem::path secret_file;
    // Shared with the sessions on it (for their log) and with a DELETE waiting for the exit.
    std::shared_ptr<ChildProcess> process;
    std::set<int64_t> sessions;  // sessions attached now
    bool stopping = false;       // shutdown sent; nothing more attaches
    bool exited = false;
    // Taken over at start-up from an earlier server process: no ChildProcess (process is null),
    // the JVM's pid is record.pid. Until it reconnects it counts as silent since adopted_ms.
    bool adopted = false;
    int64_t adopted_ms = 0;
    // Silent for kSilentHeartbeats heartbeats: its sessions show `recovering` until it speaks.
    bool silent = false;
    // Set when the server gives up on a silent driver, for the sessions' reason.
    std::string lost_reason;
    // Upload directories of sessions deleted while the driver ran: Spark keeps serving what they
    // added, so they go when the driver exits.
    std::vector<std::filesystem::path> leftover_artifacts;
  };

  struct LiveSession {
    int64_t session_id = 0;
    std::string driver_id;
    bool own_driver = false;   // the driver stops when this session ends
    std::shared_ptr<ChildProcess> process;  // the driver's, for the session's log
    bool open_sent = false;    // open_session sent
    bool opened = false;       // open, and its create-time artifacts added: statements may go
    bool closed = false;       // the driver answered session_state dead
    bool failed = false;       // its create-time artifacts could not be added
    // Create-time jars/pyFiles/files/archives of a session attached to a running driver: added
    // with add_artifact once the driver opened it; `pending_artifacts` answers still due.
    std::vector<std::pair<std::string, std::string>> artifacts;  // (kind, uri)
    std::size_t pending_artifacts = 0;
    // Its unfinished statements and jobs, and which of them the driver has.
    WorkQueue work;
    int64_t last_activity_ms = 0;       // see touch()
    int64_t last_request_ms = 0;
  };

  void on_driver_message(const std::string& driver_id, protocol::Message message) override;
  void on_driver_exit(const std::string& driver_id, int wait_status);
  // The driver is gone (`how`: "exit code 1", "lost: …"): its sessions end, its record goes.
  // Expects mutex_ held.
  void driver_gone(LiveDriver& driver, const std::string& how);
  // Applies plan_recovery's plan. Called by start() before the channel runs.
  void recover();
  // Binds the driver channel (the predecessor's endpoint when the port is 0 and it is free) and
  // stores the endpoint. Throws when it cannot.
  void start_driver_channel();
  // stop() without stop_drivers_on_shutdown.
  void leave_drivers_running();
  // Drivers silent too long: sessions to `recovering` after three heartbeats, the driver lost
  // after driver_lost_timeout. Takes the lock.
  void check_driver_liveness();

  // The helpers below expect mutex_ to be held.
  LiveSession* live_session(int64_t session_id, const std::string& driver_id);
  LiveDriver* find_driver(const std::string& driver_id);
  // A driver this request may attach to: a shared one of the same user and profile, or a
  // pooled one with the request's profile (taken out of the pool). nullptr if there is none.
  LiveDriver* find_attachable(const std::string& share_level, const std::optional<std::string>& user,
                              const DriverProfile& profile);
  // Launches a driver. `request` carries the launching session's own artifacts (spark-submit
  // ships them); the profile alone for shared and pooled drivers.
  Result<LiveDriver*> launch_driver(const SessionRequest& request, const std::string& share_level,
                                    const std::optional<std::string>& user, bool pooled,
                                    std::string app_name);
  void refill_pool();
  void open_session(LiveDriver& driver, LiveSession& live);
  void session_opened(LiveSession& live);
  DriverView view_of(const LiveDriver& driver) const;
  // The one way a session's state changes: checked against the transition table, then stored.
  Result<void> set_state(int64_t session_id, SessionState to);
  // set_state where no caller waits for the answer: a failure is logged.
  void move_session(int64_t session_id, SessionState to);
  void save_driver(LiveDriver& driver);
  void dispatch_waiting(LiveSession& live);
  void settle_idle_or_busy(LiveSession& live);
  // Ends the unfinished statements (with an error output) and jobs (failed, or cancelled when
  // `cancelled`) of a session that lost its driver or was closed.
  void fail_outstanding(LiveSession& live, const std::string& why, bool cancelled);
  // Ends the session's unfinished work (cancelled, or failed with `why`) and moves it to `to`.
  void end_session_on_driver(LiveSession& live, SessionState to, const std::string& why,
                             bool cancelled);
  void evict_old_statements(int64_t session_id);
  Result<void> save_statement(const StatementRecord& statement);
  Result<void> save_job(const JobRecord& job);
  // Writes the session record and reports the change.
  Result<void> save_session(const SessionRecord& session);
  void notify(Change change) const;
  void handle_job_update(LiveSession& live, const protocol::JobUpdate& update);
  Result<void> end_session(int64_t session_id, bool remove);
  // Stops a driver process: shutdown, wait (without the lock), kill after stop_grace. Blocks.
  // An adopted driver (not our child) is watched through /proc and signalled by pid.
  void stop_driver_process(const std::string& driver_id);
  void stop_adopted_driver(const std::string& driver_id);
  void collect_garbage_loop();
  // The sessions the lifecycle rules say must go now, with the reason. Takes the lock.
  std::vector<std::pair<int64_t, std::string>> expired_sessions();
  // Shared drivers unused longer than driver_unused_timeout. Takes the lock.
  std::vector<std::string> unused_drivers();
  // Drops exited drivers from drivers_; the caller releases them without the lock.
  std::vector<std::unique_ptr<LiveDriver>> take_exited_drivers();

  SessionStore& store_;
  const SessionManagerSettings settings_;
  std::unique_ptr<DriverChannel> channel_;
  StatementObserver statement_observer_;
  ChangeObserver change_observer_;

  // Guards drivers_, live_ and every read-modify-write of session, statement, job and driver
  // records, so updates from REST threads, the channel thread and process supervisors apply one
  // at a time. Never held while waiting for a process to exit (exit callbacks take it), and a
  // ChildProcess is never released under it (its destructor joins the supervisor thread, which
  // may be waiting for this lock in an exit callback).
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<LiveDriver>> drivers_;
  std::map<int64_t, std::unique_ptr<LiveSession>> live_;
  bool stopped_ = false;

  // Completion requests waiting for the driver's answer, by request id. Guarded by mutex_;
  // completion_cv_ is notified when an answer arrives.
  std::condition_variable completion_cv_;
  std::condition_variable artifact_cv_;
  // Notified when a session is closed on its driver or a driver exits.
  std::condition_variable closed_cv_;
  int64_t next_request_id_ = 1;
  std::map<int64_t, std::optional<std::vector<std::string>>> completions_;
  // add_artifact requests waiting for the driver: request id → (answered, error).
  std::map<int64_t, std::optional<std::optional<std::string>>> artifact_answers_;
  // add_artifact requests of sessions' create-time artifacts: request id → session id.
  std::map<int64_t, int64_t> attach_artifacts_;

  // Since when each finished session has been seen finished (for state_retain). Guarded by mutex_.
  std::map<int64_t, int64_t> finished_since_ms_;
  // The lifecycle thread; gc_cv_ (with mutex_) wakes it early to stop.
  std::condition_variable gc_cv_;
  std::thread gc_thread_;
  // Whether R and SparkR exist for drivers (checked once at start); sparkr sessions need both.
  std::optional<std::string> sparkr_missing_;
};

}  // namespace hearth::session
