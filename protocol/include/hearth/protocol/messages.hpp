#pragma once

// The messages of the driver channel (protocol/PROTOCOL.md), as plain structs. Field names and
// meanings are those of the spec; the codec (codec.hpp) maps them to and from JSON frames.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hearth::protocol {

// The only protocol version this codec speaks; every encoded frame other than hello and reject
// carries it in "v", and a frame of any other version is refused (PROTOCOL.md "Versioning").
inline constexpr int64_t kVersion = 3;
// The "v" that hello and reject are always sent with, so that a peer of any version can read
// them. decode() accepts them with this version or kVersion.
inline constexpr int64_t kHandshakeVersion = 1;
// Frames larger than this are refused by decode() (PROTOCOL.md "Transport and framing").
inline constexpr std::size_t kMaxFrameBytes = 16u << 20;

// "hello" (agent to server): the agent's credentials and the versions it speaks.
struct Hello {
  std::string driver_id;
  std::string secret;
  std::vector<int64_t> versions;
  int64_t pid = 0;
  std::string spark_version;
  bool operator==(const Hello&) const = default;
};

// "welcome" (server to agent): the version both sides use from now on.
struct Welcome {
  int64_t version = kVersion;
  int64_t heartbeat_ms = 0;
  bool operator==(const Welcome&) const = default;
};

// "reject" (server to agent): the hello was refused; the agent logs the reason and exits.
struct Reject {
  std::string reason;
  bool operator==(const Reject&) const = default;
};

// "heartbeat" (both ways): empty body.
struct Heartbeat {
  bool operator==(const Heartbeat&) const = default;
};

// "driver_state" (agent to server). state is one of ready, stopping, error. sessions: the ids of
// the sessions the agent holds when it sends the frame (after a reconnect, the server closes those
// it no longer wants and re-opens the others; PROTOCOL.md "Reconnect and resynchronisation").
struct DriverStatus {
  std::string state;
  std::optional<std::string> app_id;
  std::optional<std::string> spark_ui_url;
  std::optional<std::string> message;
  std::vector<int64_t> sessions = {};
  bool operator==(const DriverStatus&) const = default;
};

// "open_session" (server to agent). kind: pyspark, spark, sql, sparkr or shared.
struct OpenSession {
  int64_t session_id = 0;
  std::string kind;
  bool operator==(const OpenSession&) const = default;
};

// "session_state" (agent to server). state is one of starting, idle, busy, error, dead.
struct SessionStatus {
  int64_t session_id = 0;
  std::string state;
  std::optional<std::string> message;
  bool operator==(const SessionStatus&) const = default;
};

// "execute" (server to agent): run `code` as statement `statement_id` of the session.
struct Execute {
  int64_t session_id = 0;
  int64_t statement_id = 0;
  std::string kind;
  std::string code;
  bool operator==(const Execute&) const = default;
};

// "statement_update" (agent to server). state is one of running, available, cancelled.
// output_json holds Livy's output object as JSON text; nullopt when the frame has no output (the
// key absent or null). decode() fills it with compact JSON (the form encode() writes), so a
// decoded message compares equal to the decode of its own encoding.
struct StatementUpdate {
  int64_t session_id = 0;
  int64_t statement_id = 0;
  std::string state;
  double progress = 0;
  int64_t started = 0;
  int64_t completed = 0;
  std::optional<std::string> output_json;
  bool operator==(const StatementUpdate&) const = default;
};

// "close_session" (server to agent): end the session's interpreters.
struct CloseSession {
  int64_t session_id = 0;
  bool operator==(const CloseSession&) const = default;
};

// "shutdown" (server to agent): close every session and end the driver. Empty body.
struct Shutdown {
  bool operator==(const Shutdown&) const = default;
};

// "error" (both ways). code: not_authenticated, unknown_session or bad_request.
struct ErrorReply {
  std::string code;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

// "cancel_statement" (server to agent): cancel a queued or running statement. The agent answers
// with the statement's final statement_update: cancelled, or available if it finished first.
struct CancelStatement {
  int64_t session_id = 0;
  int64_t statement_id = 0;
  bool operator==(const CancelStatement&) const = default;
};

// "complete" (server to agent): completion candidates for `code` at byte offset `cursor`, in the
// interpreter of `kind`. Answered by a "completion" with the same request_id.
struct Complete {
  int64_t session_id = 0;
  int64_t request_id = 0;
  std::string kind;
  std::string code;
  int64_t cursor = 0;
  bool operator==(const Complete&) const = default;
};

// "completion" (agent to server): the answer to a "complete".
struct Completion {
  int64_t session_id = 0;
  int64_t request_id = 0;
  std::vector<std::string> candidates;
  bool operator==(const Completion&) const = default;
};

// "add_artifact" (server to agent): make a jar, Python file, file or archive available to the
// session (kind: jar, pyfile, file, archive). Answered by "artifact_added" with the same id.
struct AddArtifact {
  int64_t session_id = 0;
  int64_t request_id = 0;
  std::string kind;
  std::string uri;
  bool operator==(const AddArtifact&) const = default;
};

// "artifact_added" (agent to server): the answer to an "add_artifact"; error is set when the
// artifact could not be added.
struct ArtifactAdded {
  int64_t session_id = 0;
  int64_t request_id = 0;
  std::optional<std::string> error;
  bool operator==(const ArtifactAdded&) const = default;
};

// "start_job" (server to agent): run class_name as job job_id of the session, beside its
// statements and other jobs. jar, when set, is added to the session first (as add_artifact kind
// jar). Answered by job_update messages, the first one "queued".
struct StartJob {
  int64_t session_id = 0;
  int64_t job_id = 0;
  std::string class_name;
  std::vector<std::string> args;
  std::map<std::string, std::string> conf;
  std::optional<std::string> jar;
  bool operator==(const StartJob&) const = default;
};

// "job_update" (agent to server). state is one of queued, running, succeeded, failed,
// cancelled. result_json holds the job's result as compact JSON text (any JSON value but null;
// nullopt when the frame has none), like StatementUpdate::output_json. error ("Class: message")
// and traceback are set when the job failed; an empty traceback is left out of the frame.
struct JobUpdate {
  int64_t session_id = 0;
  int64_t job_id = 0;
  std::string state;
  double progress = 0;
  int64_t started = 0;
  int64_t completed = 0;
  std::optional<std::string> result_json;
  std::optional<std::string> error;
  std::vector<std::string> traceback;
  bool operator==(const JobUpdate&) const = default;
};

// "cancel_job" (server to agent): cancel a queued or running job. The agent answers with the
// job's final job_update "cancelled"; a cancel for a finished or unknown job is ignored.
struct CancelJob {
  int64_t session_id = 0;
  int64_t job_id = 0;
  bool operator==(const CancelJob&) const = default;
};

using Message = std::variant<Hello, Welcome, Reject, Heartbeat, DriverStatus, OpenSession,
                             SessionStatus, Execute, StatementUpdate, CloseSession, Shutdown,
                             ErrorReply, CancelStatement, Complete, Completion, AddArtifact,
                             ArtifactAdded, StartJob, JobUpdate, CancelJob>;

// The wire "type" string of the message's alternative ("hello", "driver_state", "error", ...).
// The returned view refers to static storage.
std::string_view type_name(const Message& message);

// The "v" a frame of this message is sent with: kHandshakeVersion for hello and reject,
// kVersion for every other message.
int64_t wire_version(const Message& message);

}  // namespace hearth::protocol
