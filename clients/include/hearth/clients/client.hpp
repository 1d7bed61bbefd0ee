#pragma once

// The C++ client library of Hearth: sessions, statements, artifacts, jobs and drivers over the
// server's ZeroMQ client channel (protocol/PROTOCOL.md, "The client channel"), with results and
// progress pushed by the server instead of polled. No ZeroMQ or RapidJSON type appears here.
//
// Thread safety: a Client may be used from any number of threads at once (a web server's
// workers can share one); many Clients may live in one process. Each Client owns one I/O thread
// (which owns its socket) and one callback thread (which runs on_update / on_event callbacks in
// the order events arrived). Callbacks may call the Client, but a callback that blocks delays
// the callbacks after it.
//
// Errors: every operation returns hearth::Result. Error::code is one of
//   "bad_request" (400), "forbidden" (403), "not_found" (404), "conflict" (409),
//   "too_large" (413), "server_error" (5xx or another status), "not_implemented" (501),
//   "timeout" (no answer within ClientOptions::request_timeout or the call's own timeout),
//   "disconnected" (the Client is closing), "statement_failed"/"session_failed" (see the calls);
// Error::message carries the server's {"msg": …} or a description.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/clients/submit_param.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::clients {

struct ClientOptions {
  // The server's client channel: "HOST:PORT" or "tcp://HOST:PORT".
  std::string server = "127.0.0.1:8999";
  // The principal the client acts for (hello.user); none when unset.
  std::optional<std::string> user;
  // Sent in hello, for the server log.
  std::string client_name = "hearth-clients/0.1.0";
  // How long a call waits for its reply.
  std::chrono::milliseconds request_timeout{60'000};
};

// Livy's statement output.
struct StatementOutput {
  std::string status;               // "ok" or "error"
  int64_t execution_count = 0;
  std::string data_json = "{}";     // the "data" object (mime type → value) as JSON text
  std::optional<std::string> text;  // data["text/plain"], when it is there
  // data["application/json"] as JSON text (SQL results: {"schema": …, "data": […]}).
  std::optional<std::string> table_json;
  std::string ename;                // for "error"
  std::string evalue;
  std::vector<std::string> traceback;
};

struct Statement {
  int64_t session_id = 0;
  int64_t id = 0;
  std::string code;
  std::string state;  // waiting, running, available, error, cancelling, cancelled
  double progress = 0;
  int64_t started = 0;
  int64_t completed = 0;
  std::optional<StatementOutput> output;
  // available, error or cancelled.
  bool finished() const;
  // finished with an output of status "ok".
  bool succeeded() const;
};

struct Session {
  int64_t id = 0;
  std::optional<std::string> name;
  std::string kind;
  std::string state;  // not_started, starting, idle, busy, shutting_down, error, dead, killed, success
  std::optional<std::string> owner;
  std::optional<std::string> proxy_user;
  std::optional<std::string> app_id;
  std::vector<std::string> log;
  std::string json;   // the whole session JSON as the server sent it
};

// MaxCompute client-mode job status: kStart while queued, running or cancelling.
enum class JobStatus { kStart, kSuccess, kFailed, kKilled };
std::string_view to_string(JobStatus status);

struct Job {
  int64_t session_id = 0;
  int64_t id = 0;
  std::string class_name;
  std::string state;  // queued, running, succeeded, failed, cancelling, cancelled
  double progress = 0;
  int64_t created = 0;
  int64_t started = 0;
  int64_t completed = 0;
  std::optional<std::string> result_json;  // the job's result as JSON text
  std::optional<std::string> error;
  std::vector<std::string> traceback;
  JobStatus status() const;
};

// What start_job runs: a class from a jar of the session (added before, or `jar`).
struct JobSpec {
  std::string class_name;
  std::optional<std::string> jar;  // a URI the driver adds first (file:, hdfs:, …)
  std::vector<std::string> args;
  std::map<std::string, std::string> conf;
};

struct Driver {
  std::string id;
  std::string state;  // starting, idle, busy, stopping
  std::string user;
  std::string share_level;
  bool pooled = false;
  std::vector<int64_t> sessions;
  std::optional<std::string> app_id;
  std::optional<std::string> spark_ui_url;
  int64_t pid = 0;
  std::string json;
};

// A pushed change (PROTOCOL.md "event"). kind: session, statement, job, log, gap.
struct Event {
  int64_t session_id = 0;
  int64_t seq = 0;
  std::string kind;
  std::string body_json;
};

class Client;

// Ends its subscription when destroyed (or on cancel()). Move-only.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();
  void cancel();

 private:
  friend class Client;
  struct State;
  std::shared_ptr<State> state_;
};

class Client {
 public:
  // Connects (ZeroMQ connects in the background; the first call waits for the server up to
  // request_timeout). Throws std::invalid_argument for a malformed options.server.
  explicit Client(ClientOptions options = {});
  ~Client();  // stops both threads; outstanding calls end with "disconnected"
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any REST operation (docs/rest-api.md) over the channel: status and body as REST answers
  // them. A reply with a status >= 400 is still a Response here (only transport failures are
  // errors), so callers can pass REST's answers on unchanged.
  struct Response {
    int status = 0;
    std::string body_json;
  };
  Result<Response> call(std::string_view method, std::string_view path,
                        std::optional<std::string> body_json = std::nullopt);

  // ---- sessions ----
  // POST /sessions with the param's fields (see SubmitParam::to_session_json).
  Result<Session> create_session(const SubmitParam& param);
  Result<Session> get_session(int64_t session_id);
  Result<std::vector<Session>> list_sessions();
  Result<void> delete_session(int64_t session_id);
  // Waits (on pushed session events, no polling) until the session is idle. Error
  // "session_failed" when it ends (error, dead, killed) instead; "timeout".
  Result<Session> wait_for_idle(int64_t session_id, std::chrono::milliseconds timeout);
  // The last `size` lines of the session's log.
  Result<std::vector<std::string>> session_log(int64_t session_id, int64_t size = 100);

  // ---- statements ----
  // Submits and returns the statement as accepted (state waiting) at once.
  Result<Statement> submit(int64_t session_id, std::string code,
                           std::optional<std::string> kind = std::nullopt);
  // Submits and completes the future with the finished statement (available / cancelled; an
  // output of status "error" is still a value). on_update, when set, sees every pushed state
  // and progress change before that, on the callback thread.
  std::future<Result<Statement>> run_async(
      int64_t session_id, std::string code, std::optional<std::string> kind = std::nullopt,
      std::function<void(const Statement&)> on_update = {});
  // run_async and wait, up to `timeout` ("timeout" error after it; the statement keeps running).
  Result<Statement> run(int64_t session_id, std::string code,
                        std::optional<std::string> kind = std::nullopt,
                        std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Waits for an already submitted statement to finish (on pushed events).
  Result<Statement> wait_statement(int64_t session_id, int64_t statement_id,
                                   std::chrono::milliseconds timeout);
  Result<Statement> get_statement(int64_t session_id, int64_t statement_id);
  Result<std::vector<Statement>> list_statements(int64_t session_id);
  Result<void> cancel(int64_t session_id, int64_t statement_id);
  Result<std::vector<std::string>> complete(int64_t session_id, std::string code, int64_t cursor,
                                            std::string kind = "pyspark");

  // ---- artifacts and jobs (MaxCompute client mode) ----
  // Uploads a local file in parts and adds it to the session (upload-jar / -pyfile / -file).
  Result<void> add_jar(int64_t session_id, const std::filesystem::path& local_file);
  Result<void> add_pyfile(int64_t session_id, const std::filesystem::path& local_file);
  Result<void> add_file(int64_t session_id, const std::filesystem::path& local_file);
  // Adds a jar the driver can reach by URI (add-jar).
  Result<void> add_jar_uri(int64_t session_id, const std::string& uri);
  // Starts a job; returns its id.
  Result<int64_t> start_job(int64_t session_id, const JobSpec& spec);
  Result<Job> job_status(int64_t session_id, int64_t job_id);
  Result<std::vector<Job>> list_jobs(int64_t session_id);
  // Asks the job to stop; returns it as it is now (cancelling, or already finished).
  Result<Job> kill_job(int64_t session_id, int64_t job_id);
  // Waits (on pushed job events) until the job has finished.
  Result<Job> wait_job(int64_t session_id, int64_t job_id, std::chrono::milliseconds timeout);
  // Stops the remote driver the session runs on (its sessions end).
  Result<void> stop_driver(int64_t session_id);
  Result<std::vector<Driver>> list_drivers();

  // ---- events ----
  // Pushes the session's events (every session's, without session_id) to on_event, on the
  // callback thread, from now on. After a reconnect or server restart the client resubscribes
  // by itself with the last sequence number it delivered, so no stored event is missed.
  Result<Subscription> subscribe(std::optional<int64_t> session_id,
                                 std::function<void(const Event&)> on_event);

 private:
  friend class Subscription;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace hearth::clients
