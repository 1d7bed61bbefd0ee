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
  bool operator==(const SessionRequest&) const = default;
};

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

// A launched driver and the secret it authenticates with.
struct DriverRecord {
  std::string id, secret;
  int64_t pid = 0;
  int64_t created_ms = 0;
  bool operator==(const DriverRecord&) const = default;
};

}  // namespace hearth::session
