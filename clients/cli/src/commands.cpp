#include "hearth/cli/commands.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "hearth/cli/render.hpp"
#include "hearth/clients/client.hpp"
#include "interrupts.hpp"
#include "json_tree.hpp"

namespace hearth::cli {
namespace {

using clients::Client;
using std::chrono::milliseconds;
using WaitResult = InterruptWatcher::WaitResult;

constexpr milliseconds kDefaultSessionStartTimeout = std::chrono::minutes(10);
constexpr milliseconds kDefaultRunTimeout = std::chrono::hours(24);
constexpr std::size_t kProgressBarWidth = 30;
constexpr int64_t kLogLinesOnFailure = 20;
constexpr std::string_view kDefaultExecKind = "pyspark";

bool is_final_session_state(std::string_view state) {
  return state == "error" || state == "dead" || state == "killed" || state == "success";
}

std::string or_dash(const std::optional<std::string>& value) {
  return value && !value->empty() ? *value : "-";
}

// Text as it is, ending with exactly the newlines it had, plus one when it had none.
void print_text(std::ostream& out, std::string_view text) {
  out << text;
  if (!text.empty() && text.back() != '\n') out << '\n';
}

Error error_of_reply(int status, const std::string& body_json) {
  std::string message = "the server answered " + std::to_string(status);
  if (auto body = parse_json(body_json); body.ok()) {
    if (const JsonNode* msg = body->find("msg"); msg != nullptr && msg->is_string()) {
      message = msg->text;
    }
  }
  std::string code = status == 400   ? "bad_request"
                     : status == 403 ? "forbidden"
                     : status == 404 ? "not_found"
                     : status == 409 ? "conflict"
                     : status == 413 ? "too_large"
                     : status == 501 ? "not_implemented"
                                     : "server_error";
  return make_error(std::move(code), std::move(message));
}

std::string state_of(const std::string& body_json) {
  auto body = parse_json(body_json);
  if (!body) return {};
  const JsonNode* state = body->find("state");
  return state != nullptr && state->is_string() ? state->text : std::string();
}

// The progress bar (and status lines) on stderr, drawn only when stderr is a terminal. The
// Client's callback thread redraws it while the main thread may clear it, hence the lock; it is
// shared with the callbacks (shared_ptr), which may outlive the command's stack frame.
class ProgressLine {
 public:
  ProgressLine(std::ostream& err, bool enabled, bool unicode)
      : err_(err), enabled_(enabled), unicode_(unicode) {}

  void show(const clients::Statement& statement) {
    std::lock_guard lock(mutex_);
    if (!enabled_ || closed_) return;
    err_ << '\r' << progress_bar(statement.progress, kProgressBarWidth, unicode_) << "  statement "
         << statement.id << ' ' << statement.state << "\x1b[K" << std::flush;
    drawn_ = true;
  }
  void status(std::string_view text) {
    std::lock_guard lock(mutex_);
    if (!enabled_ || closed_) return;
    err_ << '\r' << text << "\x1b[K" << std::flush;
    drawn_ = true;
  }
  // Erases the line; with `close`, later show() / status() calls draw nothing.
  void clear(bool close) {
    std::lock_guard lock(mutex_);
    if (drawn_) err_ << "\r\x1b[K" << std::flush;
    drawn_ = false;
    closed_ = closed_ || close;
  }

 private:
  std::mutex mutex_;
  std::ostream& err_;
  const bool enabled_;
  const bool unicode_;
  bool drawn_ = false;
  bool closed_ = false;
};

class CommandRunner {
 public:
  CommandRunner(Client& client, Console& console, InterruptWatcher& interrupts,
                const Invocation& inv)
      : client_(client), console_(console), interrupts_(interrupts), inv_(inv) {}

  int run() {
    switch (inv_.command) {
      case Command::kSessions:
        return sessions();
      case Command::kDrivers:
        return drivers();
      case Command::kSessionCreate:
        return session_create();
      case Command::kSessionRemove:
        return session_remove();
      case Command::kLogs:
        return inv_.follow ? follow_logs() : logs();
      case Command::kExec:
        return exec();
      case Command::kJarAdd:
        return jar_add();
      case Command::kJobStart:
        return job_start();
      case Command::kJobStatus:
        return job_status();
      case Command::kJobKill:
        return job_kill();
    }
    return kExitUsage;
  }

 private:
  std::ostream& out() { return console_.out; }
  std::ostream& err() { return console_.err; }
  TableStyle out_style() const { return TableStyle{console_.out_width, console_.out_unicode}; }
  milliseconds timeout_or(milliseconds fallback) const { return inv_.global.timeout.value_or(fallback); }
  int64_t session_id() const { return inv_.session_id.value_or(0); }

  int fail(const Error& error) {
    err() << "hearth: " << (error.message.empty() ? error.code : error.message) << '\n';
    return kExitServer;
  }
  int usage(const std::string& message) {
    err() << "hearth: " << message << '\n';
    return kExitUsage;
  }

  // A REST operation whose JSON answer is printed as it is (--json); an error status is an Error.
  Result<std::string> raw(std::string_view method, const std::string& path,
                          std::optional<std::string> body = std::nullopt) {
    auto response = client_.call(method, path, std::move(body));
    if (!response) return response.error();
    if (response->status >= 400) return error_of_reply(response->status, response->body_json);
    return std::move(response->body_json);
  }
  int print_raw(std::string_view method, const std::string& path,
                std::optional<std::string> body = std::nullopt) {
    auto json = raw(method, path, std::move(body));
    if (!json) return fail(json.error());
    out() << *json << '\n';
    return kExitOk;
  }

  // ---- sessions, drivers ----

  int sessions() {
    auto listed = client_.list_sessions();
    if (!listed) return fail(listed.error());
    if (inv_.global.json) {
      out() << "{\"from\":0,\"total\":" << listed->size() << ",\"sessions\":[";
      for (std::size_t i = 0; i < listed->size(); ++i) out() << (i ? "," : "") << (*listed)[i].json;
      out() << "]}\n";
      return kExitOk;
    }
    Table table{{"id", "name", "kind", "state", "owner", "appId"}, {}, {Align::kRight}};
    for (const auto& s : *listed) {
      table.rows.push_back({std::to_string(s.id), or_dash(s.name), s.kind, s.state, or_dash(s.owner),
                            or_dash(s.app_id)});
    }
    out() << render_table(table, out_style());
    return kExitOk;
  }

  int drivers() {
    auto listed = client_.list_drivers();
    if (!listed) return fail(listed.error());
    if (inv_.global.json) {
      out() << "{\"total\":" << listed->size() << ",\"drivers\":[";
      for (std::size_t i = 0; i < listed->size(); ++i) out() << (i ? "," : "") << (*listed)[i].json;
      out() << "]}\n";
      return kExitOk;
    }
    Table table{{"id", "state", "user", "shareLevel", "pooled", "sessions", "appId"}, {}, {}};
    for (const auto& d : *listed) {
      std::string ids;
      for (auto id : d.sessions) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      table.rows.push_back({d.id, d.state, d.user.empty() ? "-" : d.user, d.share_level,
                            d.pooled ? "yes" : "no", ids.empty() ? "-" : ids, or_dash(d.app_id)});
    }
    out() << render_table(table, out_style());
    return kExitOk;
  }

  // ---- session create / rm ----

  // Waits until the session is up (idle, or already busy with a statement) on its pushed
  // session events: subscribed before its state is read, so no change falls in between.
  // Error "session_failed" when it ends instead, "timeout"; `interrupted` on Ctrl-C.
  Result<clients::Session> wait_until_up(int64_t id, milliseconds timeout, bool& interrupted) {
    interrupted = false;
    auto up = [](std::string_view state) {
      return state == "idle" || state == "busy" || is_final_session_state(state);
    };
    // The first state that ends the wait, from an event or from the read below. Locked inside
    // the watcher's lock by the wait predicate; the callback never holds both.
    struct Seen {
      std::mutex mutex;
      std::string state;
    };
    auto seen = std::make_shared<Seen>();
    InterruptWatcher* watcher = &interrupts_;
    auto subscription = client_.subscribe(id, [seen, watcher, up](const clients::Event& event) {
      if (event.kind != "session") return;
      std::string state = state_of(event.body_json);
      {
        std::lock_guard lock(seen->mutex);
        if (!up(seen->state)) seen->state = state;
      }
      watcher->notify();
    });
    if (!subscription) return subscription.error();
    auto current = client_.get_session(id);
    if (!current) return current.error();
    {
      std::lock_guard lock(seen->mutex);
      if (!up(seen->state)) seen->state = current->state;
    }
    auto result = interrupts_.wait_until(
        [&] {
          std::lock_guard lock(seen->mutex);
          return up(seen->state);
        },
        std::chrono::steady_clock::now() + timeout);
    subscription->cancel();
    if (result == WaitResult::kInterrupted) {
      interrupted = true;
      return make_error("interrupted", "interrupted");
    }
    if (result == WaitResult::kTimedOut) {
      return make_error("timeout", "session " + std::to_string(id) + " did not start within " +
                                       std::to_string(timeout.count() / 1000) + "s");
    }
    std::string state;
    {
      std::lock_guard lock(seen->mutex);
      state = seen->state;
    }
    if (is_final_session_state(state)) {
      return make_error("session_failed",
                        "session " + std::to_string(id) + " ended in state " + state);
    }
    return client_.get_session(id);
  }

  // Prints why a session failed to start: the error and the last lines of its driver log.
  int session_failed(int64_t id, const Error& error) {
    err() << "hearth: " << error.message << '\n';
    if (error.code == "session_failed") {
      if (auto log = client_.session_log(id, kLogLinesOnFailure); log.ok() && !log->empty()) {
        err() << "--- the last lines of its log ---\n";
        for (const auto& line : *log) err() << line << '\n';
      }
    }
    return kExitServer;
  }

  int session_create() {
    clients::SubmitParam param = inv_.session_flags;
    if (inv_.properties_file) {
      auto loaded = clients::SubmitParam::load_properties(*inv_.properties_file);
      if (!loaded) return usage(inv_.properties_file->string() + ": " + loaded.error().message);
      param = merge_submit_params(std::move(*loaded), inv_.session_flags);
    }
    auto created = client_.create_session(param);
    if (!created) return fail(created.error());
    int64_t id = created->id;
    if (!inv_.global.json) out() << id << std::endl;  // at once, so a script has it on failure
    if (!inv_.wait) {
      if (inv_.global.json) out() << created->json << '\n';
      return kExitOk;
    }
    ProgressLine line(err(), console_.err_is_terminal, console_.err_unicode);
    line.status("waiting for session " + std::to_string(id) + " to start...");
    bool interrupted = false;
    auto session = wait_until_up(id, timeout_or(kDefaultSessionStartTimeout), interrupted);
    line.clear(true);
    if (interrupted) {
      err() << "hearth: interrupted; session " << id << " goes on starting (remove it with "
            << "`hearth session rm " << id << "`)\n";
      return kExitInterrupted;
    }
    if (!session) return session_failed(id, session.error());
    if (inv_.global.json) out() << session->json << '\n';
    return kExitOk;
  }

  int session_remove() {
    if (inv_.global.json) return print_raw("DELETE", "/sessions/" + std::to_string(session_id()));
    if (auto removed = client_.delete_session(session_id()); !removed) return fail(removed.error());
    return kExitOk;
  }

  // ---- logs ----

  int logs() {
    if (inv_.global.json) {
      return print_raw("GET", "/sessions/" + std::to_string(session_id()) +
                                  "/log?size=" + std::to_string(inv_.log_lines));
    }
    auto lines = client_.session_log(session_id(), inv_.log_lines);
    if (!lines) return fail(lines.error());
    for (const auto& line : *lines) out() << line << '\n';
    return kExitOk;
  }

  // Prints the retained log, then every log event until the session ends or Ctrl-C. Subscribes
  // first and holds the events back until the retained lines are out, then skips the buffered
  // lines that the retained log already ended with, so no line shows twice or goes missing.
  int follow_logs() {
    struct Follow {
      std::mutex mutex;
      bool holding = true;                // until the retained log is printed
      std::vector<std::string> held;      // lines that arrived meanwhile
      std::string final_state;            // set when the session ended
    };
    auto follow = std::make_shared<Follow>();
    InterruptWatcher* watcher = &interrupts_;
    std::ostream* output = &out();
    bool json = inv_.global.json;
    auto print_lines = [output, json](const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      if (json) {
        JsonNode body;
        body.kind = JsonNode::Kind::kObject;
        JsonNode array;
        array.kind = JsonNode::Kind::kArray;
        for (const auto& line : lines) array.items.push_back({JsonNode::Kind::kString, line, {}, {}});
        body.members.emplace_back("lines", std::move(array));
        *output << to_json(body) << '\n';
      } else {
        for (const auto& line : lines) *output << line << '\n';
      }
      output->flush();
    };
    auto subscription = client_.subscribe(
        session_id(), [follow, watcher, print_lines](const clients::Event& event) {
          if (event.kind == "log") {
            std::vector<std::string> lines;
            if (auto body = parse_json(event.body_json); body.ok()) {
              if (const JsonNode* array = body->find("lines"); array != nullptr && array->is_array()) {
                for (const auto& line : array->items) lines.push_back(display_text(line));
              }
            }
            std::lock_guard lock(follow->mutex);
            if (follow->holding) {
              follow->held.insert(follow->held.end(), lines.begin(), lines.end());
            } else {
              print_lines(lines);
            }
          } else if (event.kind == "session") {
            std::string state = state_of(event.body_json);
            if (is_final_session_state(state)) {
              {
                std::lock_guard lock(follow->mutex);
                follow->final_state = state;
              }
              watcher->notify();
            }
          }
        });
    if (!subscription) return fail(subscription.error());
    auto retained = client_.session_log(session_id(), inv_.log_lines);
    if (!retained) return fail(retained.error());
    auto session = client_.get_session(session_id());
    if (!session) return fail(session.error());
    {
      std::lock_guard lock(follow->mutex);
      print_lines(*retained);
      std::size_t overlap = std::min(retained->size(), follow->held.size());
      for (; overlap > 0; --overlap) {
        if (std::equal(retained->end() - static_cast<std::ptrdiff_t>(overlap), retained->end(),
                       follow->held.begin())) {
          break;
        }
      }
      print_lines(std::vector<std::string>(follow->held.begin() + static_cast<std::ptrdiff_t>(overlap),
                                           follow->held.end()));
      follow->held.clear();
      follow->holding = false;
      if (is_final_session_state(session->state) && follow->final_state.empty()) {
        follow->final_state = session->state;
      }
    }
    interrupts_.wait_until(
        [&] {
          std::lock_guard lock(follow->mutex);
          return !follow->final_state.empty();
        },
        std::chrono::steady_clock::now() + timeout_or(kDefaultRunTimeout));
    subscription->cancel();
    std::lock_guard lock(follow->mutex);
    if (!follow->final_state.empty() && !json) {
      err() << "hearth: session " << session_id() << " is " << follow->final_state << '\n';
    }
    return kExitOk;  // Ctrl-C is the ordinary way to stop following
  }

  // ---- exec / sql ----

  Result<std::string> read_code() {
    if (inv_.code) return *inv_.code;
    std::ostringstream text;
    if (*inv_.code_file == "-") {
      text << std::cin.rdbuf();
      return text.str();
    }
    std::ifstream in(*inv_.code_file, std::ios::binary);
    if (!in) return make_error("bad_request", "cannot read " + inv_.code_file->string());
    text << in.rdbuf();
    return text.str();
  }

  // Deletes the session exec created, whichever way exec ends.
  class TemporarySession {
   public:
    TemporarySession(Client& client, std::ostream& err, int64_t id)
        : client_(client), err_(err), id_(id) {}
    ~TemporarySession() {
      if (auto removed = client_.delete_session(id_); !removed) {
        err_ << "hearth: could not delete session " << id_ << ": " << removed.error().message << '\n';
      }
    }
    TemporarySession(const TemporarySession&) = delete;
    TemporarySession& operator=(const TemporarySession&) = delete;

   private:
    Client& client_;
    std::ostream& err_;
    int64_t id_;
  };

  int exec() {
    auto code = read_code();
    if (!code) return usage(code.error().message);
    std::optional<std::string> kind = inv_.kind;
    std::unique_ptr<TemporarySession> temporary;
    int64_t id = 0;
    if (inv_.session_id) {
      id = *inv_.session_id;
    } else {
      if (!kind) kind = std::string(kDefaultExecKind);
      clients::SubmitParam param;
      param.kind = kind;
      auto created = client_.create_session(param);
      if (!created) return fail(created.error());
      id = created->id;
      temporary = std::make_unique<TemporarySession>(client_, err(), id);
      ProgressLine line(err(), console_.err_is_terminal, console_.err_unicode);
      line.status("starting a " + *kind + " session (" + std::to_string(id) + ")...");
      bool interrupted = false;
      auto session = wait_until_up(id, timeout_or(kDefaultSessionStartTimeout), interrupted);
      line.clear(true);
      if (interrupted) return kExitInterrupted;
      if (!session) return session_failed(id, session.error());
    }
    return run_statement(id, std::move(*code), kind);
  }

  int run_statement(int64_t id, std::string code, const std::optional<std::string>& kind) {
    auto progress = std::make_shared<ProgressLine>(err(), console_.err_is_terminal, console_.err_unicode);
    // The statement's id, known from its first update; Ctrl-C cancels it.
    auto statement_id = std::make_shared<std::atomic<int64_t>>(-1);
    std::string submitted = code;
    auto future = client_.run_async(id, std::move(code), kind,
                                    [progress, statement_id](const clients::Statement& statement) {
                                      statement_id->store(statement.id);
                                      progress->show(statement);
                                    });
    bool interrupted = !interrupts_.wait_ready(future);
    if (interrupted) {
      progress->clear(true);
      err() << "hearth: interrupted, cancelling the statement\n";
      cancel_statement(id, statement_id->load(), submitted);
      future.wait();
    }
    auto statement = future.get();
    progress->clear(true);
    if (!statement) return fail(statement.error());
    if (inv_.global.json) {
      int printed = print_raw("GET", "/sessions/" + std::to_string(id) + "/statements/" +
                                         std::to_string(statement->id));
      if (printed != kExitOk) return printed;
    }
    if (statement->state == "cancelled") {
      err() << "hearth: statement " << statement->id << " was cancelled\n";
      return interrupted ? kExitInterrupted : kExitStatementFailed;
    }
    if (!statement->output) {
      err() << "hearth: statement " << statement->id << " ended " << statement->state
            << " without an output\n";
      return kExitServer;
    }
    const auto& output = *statement->output;
    if (output.status == "error") {
      err() << output.ename << ": " << output.evalue << '\n';
      for (const auto& line : output.traceback) print_text(err(), line);
      return kExitStatementFailed;
    }
    if (!inv_.global.json) print_output(output);
    return interrupted ? kExitInterrupted : kExitOk;
  }

  // Cancels the statement; when no update named it yet, the newest unfinished statement of the
  // session with this code is the one.
  void cancel_statement(int64_t session, int64_t statement, const std::string& code) {
    if (statement < 0) {
      if (auto listed = client_.list_statements(session); listed.ok()) {
        for (const auto& s : *listed) {
          if (!s.finished() && s.code == code) statement = std::max(statement, s.id);
        }
      }
    }
    if (statement < 0) return;
    if (auto cancelled = client_.cancel(session, statement); !cancelled) {
      err() << "hearth: could not cancel statement " << statement << ": "
            << cancelled.error().message << '\n';
    }
  }

  // An "ok" output: a SQL result or a Livy table as a table, else the text; other data (an
  // image) is only named, --json has it.
  void print_output(const clients::StatementOutput& output) {
    if (output.table_json) {
      if (auto table = table_from_sql_json(*output.table_json); table.ok()) {
        out() << render_table(*table, out_style());
      } else {
        out() << *output.table_json << '\n';  // %json: any JSON value
      }
      return;
    }
    std::vector<std::string> other_types;
    if (auto data = parse_json(output.data_json); data.ok()) {
      for (const auto& [type, value] : data->members) {
        if (type == "application/vnd.livy.table.v1+json") {
          if (auto table = table_from_livy_table_json(to_json(value)); table.ok()) {
            out() << render_table(*table, out_style());
            return;
          }
        }
        if (type != "text/plain") other_types.push_back(type);
      }
    }
    if (output.text && !output.text->empty()) {
      print_text(out(), *output.text);
    } else if (!other_types.empty()) {
      std::string types;
      for (const auto& type : other_types) types += (types.empty() ? "" : ", ") + type;
      err() << "hearth: the output is " << types << " (use --json to get it)\n";
    }
  }

  // ---- jar add ----

  // A local file must exist before anything is sent.
  std::optional<std::string> missing_local_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    return "no such file: " + path;
  }

  int jar_add() {
    if (has_uri_scheme(inv_.jar)) {
      if (auto added = client_.add_jar_uri(session_id(), inv_.jar); !added) return fail(added.error());
      return kExitOk;
    }
    if (auto missing = missing_local_file(inv_.jar)) return usage(*missing);
    if (auto added = client_.add_jar(session_id(), inv_.jar); !added) return fail(added.error());
    return kExitOk;
  }

  // ---- jobs ----

  std::string job_path(int64_t job_id) const {
    return "/sessions/" + std::to_string(session_id()) + "/jobs/" + std::to_string(job_id);
  }

  int job_start() {
    clients::JobSpec spec = inv_.job;
    if (spec.jar && !has_uri_scheme(*spec.jar)) {
      // A local jar: uploaded to the session first, as `hearth jar add` does.
      if (auto missing = missing_local_file(*spec.jar)) return usage(*missing);
      if (auto added = client_.add_jar(session_id(), *spec.jar); !added) return fail(added.error());
      spec.jar.reset();
    }
    auto started = client_.start_job(session_id(), spec);
    if (!started) return fail(started.error());
    int64_t job_id = *started;
    if (!inv_.wait) {
      if (inv_.global.json) return print_raw("GET", job_path(job_id));
      out() << job_id << '\n';
      return kExitOk;
    }
    if (!inv_.global.json) out() << job_id << std::endl;

    auto future = std::async(std::launch::async, [this, job_id] {
      return client_.wait_job(session_id(), job_id, timeout_or(kDefaultRunTimeout));
    });
    bool interrupted = !interrupts_.wait_ready(future);
    if (interrupted) {
      err() << "hearth: interrupted, killing job " << job_id << '\n';
      if (auto killed = client_.kill_job(session_id(), job_id); !killed) {
        err() << "hearth: could not kill job " << job_id << ": " << killed.error().message << '\n';
      }
    }
    auto job = future.get();
    if (!job) return fail(job.error());
    if (inv_.global.json) {
      if (int printed = print_raw("GET", job_path(job_id)); printed != kExitOk) return printed;
    }
    switch (job->status()) {
      case clients::JobStatus::kSuccess:
        if (!inv_.global.json) out() << job->result_json.value_or("null") << '\n';
        return interrupted ? kExitInterrupted : kExitOk;
      case clients::JobStatus::kFailed:
        print_job_error(err(), *job);
        return kExitStatementFailed;
      case clients::JobStatus::kKilled:
        err() << "hearth: job " << job_id << " was cancelled\n";
        return interrupted ? kExitInterrupted : kExitStatementFailed;
      case clients::JobStatus::kStart:
        break;
    }
    err() << "hearth: job " << job_id << " is still " << job->state << '\n';
    return kExitServer;
  }

  static void print_job_error(std::ostream& stream, const clients::Job& job) {
    stream << job.error.value_or("failed") << '\n';
    // The traceback's first line repeats the error (docs/jobs.md).
    std::size_t first =
        !job.traceback.empty() && job.error && job.traceback.front() == *job.error ? 1 : 0;
    for (std::size_t i = first; i < job.traceback.size(); ++i) print_text(stream, job.traceback[i]);
  }

  int job_status() {
    if (inv_.global.json) return print_raw("GET", job_path(inv_.job_id));
    auto job = client_.job_status(session_id(), inv_.job_id);
    if (!job) return fail(job.error());
    Table table{{"field", "value"}, {}, {}};
    auto add = [&](std::string field, std::string value) {
      table.rows.push_back({std::move(field), std::move(value)});
    };
    add("id", std::to_string(job->id));
    add("class", job->class_name);
    add("state", job->state);
    add("status", std::string(clients::to_string(job->status())));
    // Rounded down like the progress bar: 100% only when done.
    add("progress", std::to_string(static_cast<int>(std::floor(job->progress * 100 + 1e-9))) + "%");
    if (job->result_json) add("result", *job->result_json);
    if (job->error) add("error", *job->error);
    out() << render_table(table, out_style());
    if (!job->traceback.empty()) {
      out() << "traceback:\n";
      for (const auto& line : job->traceback) print_text(out(), "  " + line);
    }
    return kExitOk;
  }

  int job_kill() {
    if (inv_.global.json) return print_raw("POST", job_path(inv_.job_id) + "/cancel", "{}");
    auto job = client_.kill_job(session_id(), inv_.job_id);
    if (!job) return fail(job.error());
    out() << "job " << job->id << ' ' << job->state << '\n';
    return kExitOk;
  }

  Client& client_;
  Console& console_;
  InterruptWatcher& interrupts_;
  const Invocation& inv_;
};

}  // namespace

int run(const Invocation& invocation, Console& console) {
  // Before the Client: its threads must inherit the blocked signals (see InterruptWatcher).
  InterruptWatcher interrupts;
  clients::ClientOptions options;
  options.server = invocation.global.server;
  options.user = invocation.global.user;
  options.client_name = "hearth-cli/" HEARTH_VERSION;
  if (invocation.global.timeout) options.request_timeout = *invocation.global.timeout;
  std::unique_ptr<Client> client;
  try {
    client = std::make_unique<Client>(options);
  } catch (const std::invalid_argument& e) {
    console.err << "hearth: invalid server address '" << options.server << "': " << e.what()
                << '\n';
    return kExitUsage;
  }
  return CommandRunner(*client, console, interrupts, invocation).run();
}

}  // namespace hearth::cli
