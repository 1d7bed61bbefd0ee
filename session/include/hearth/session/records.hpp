#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hearth/session/states.hpp"

namespace hearth::session {

// Livy's CreateInteractiveRequest, already validated by REST. Field meanings: livy-api.md 1.2.
struct SessionRequest {
  std::string kind = "shared";
  std::optional<std::string> proxy_user, name, driver_memory, executor_memory, queue, ttl,
      idle_timeout;
  std::optional<int64_t> driver_cores, executor_cores, num_executors;
  std::vector<std::string> jars, py_files, files, archives;
  std::map<std::string, std::string> conf;
  int64_t heartbeat_timeout_s = 0;
  // Hearth: "session" (own driver, Livy's behaviour) or "user" (attach to a shared driver of the
  // same user and profile); nullopt = the server's default.
  std::optional<std::string> share_level;
  bool operator==(const SessionRequest&) const = default;
};

// The launch-time settings of a driver: a session may attach to a running driver only when its
// request asks for exactly these. A session's jars, pyFiles, files and archives are not part of
// it (they are added to the session itself).
struct DriverProfile {
  std::optional<std::string> driver_memory, executor_memory, queue;
  std::optional<int64_t> driver_cores, executor_cores, num_executors;
  std::map<std::string, std::string> conf;
  bool operator==(const DriverProfile&) const = default;
};

DriverProfile profile_of(const SessionRequest& request);

// What the store keeps about one interactive session.
struct SessionRecord {
  int64_t id = 0;
  SessionRequest request;
  std::optional<std::string> owner;
  SessionState state = SessionState::kNotStarted;
  std::optional<std::string> app_id, spark_ui_url;
  std::string driver_id;
  int64_t created_ms = 0;
  bool operator==(const SessionRecord&) const = default;
};

// One statement of a session, with its result.
struct StatementRecord {
  int64_t session_id = 0, id = 0;
  std::string kind, code;
  StatementState state = StatementState::kWaiting;
  // Compact JSON text of Livy's output object; nullopt = null.
  std::optional<std::string> output_json;
  double progress = 0.0;
  int64_t started_ms = 0, completed_ms = 0;  // epoch ms, 0 until set
  bool operator==(const StatementRecord&) const = default;
};

// A launched driver: who it runs for, how it was launched, and how to check the secret it
// authenticates with. Which sessions it hosts is in each session's record (driver_id).
struct DriverRecord {
  std::string id;
  // secret_digest() of the driver's secret (driver_secret.hpp), never the secret itself: the
  // record lives in Redis, and the secret must not be recoverable from there.
  std::string secret_sha256;
  int64_t pid = 0;
  int64_t created_ms = 0;
  std::optional<std::string> user;      // the effective user; nullopt = anonymous or pooled
  std::string share_level = "session";  // "session" (one session's own) or "user" (shared)
  bool pooled = false;                  // waiting unused in the warm pool
  DriverProfile profile;
  DriverState state = DriverState::kStarting;
  std::optional<std::string> app_id, spark_ui_url;
  int64_t last_used_ms = 0;             // when a session last attached or detached
  bool operator==(const DriverRecord&) const = default;
};

// One job (a class from a jar run in a session's driver) and its result.
struct JobRecord {
  int64_t session_id = 0, id = 0;
  std::string class_name;
  std::optional<std::string> jar;
  std::vector<std::string> args;
  std::map<std::string, std::string> conf;
  JobState state = JobState::kQueued;
  double progress = 0.0;
  int64_t created_ms = 0, started_ms = 0, completed_ms = 0;
  std::optional<std::string> result_json;  // compact JSON text of the result; nullopt = null
  std::optional<std::string> error;
  std::vector<std::string> traceback;
  bool operator==(const JobRecord&) const = default;
};

// What a client asks for when it starts a job: a class from a jar added to the session (or
// from `jar`, added first), with arguments (main classes) and a configuration map.
struct JobRequest {
  std::string class_name;
  std::optional<std::string> jar;
  std::vector<std::string> args;
  std::map<std::string, std::string> conf;
};

// A driver as clients see it: its record, the sessions on it now and its load.
struct DriverView {
  DriverRecord record;
  std::string state;  // starting, idle, busy, stopping, dead, error
  std::vector<int64_t> sessions;
  int64_t busy_sessions = 0, running_statements = 0, running_jobs = 0;
};

// One stored client-channel event of a session.
struct StoredEvent {
  int64_t seq = 0;
  std::string kind;       // session, statement, job
  std::string body_json;  // the resource's JSON at the time of the event
  bool operator==(const StoredEvent&) const = default;
};

// What SessionStore::events_since returns.
struct EventLog {
  int64_t last_seq = 0;             // the newest seq given out (0: none yet)
  std::vector<StoredEvent> events;  // seq > since, ascending
};

}  // namespace hearth::session
