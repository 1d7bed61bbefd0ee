#pragma once

#include <optional>
#include <string_view>

#include "hearth/protocol/result.hpp"

namespace hearth::session {

// Session states. The public names (to_string) are Livy's strings, so REST answers and the
// records in Redis use exactly what Livy clients expect.
enum class SessionState {
  kNotStarted,
  kStarting,
  kRecovering,
  kIdle,
  kRunning,
  kBusy,
  kShuttingDown,
  kError,
  kDead,
  kKilled,
  kSuccess,
};

// not_started, starting, recovering, idle, running, busy, shutting_down, error, dead, killed,
// success.
std::string_view to_string(SessionState state);
// Exact (case-sensitive) Livy string; nullopt for anything else.
std::optional<SessionState> parse_session_state(std::string_view text);

// Finished = may be garbage-collected: error, dead, killed, success.
bool is_finished(SessionState state);
// Livy's isActive: false for shutting_down, killed, dead, success. error counts as active.
bool is_active(SessionState state);

// The interactive-session transition table (a constexpr table in states.cpp). from == to is
// always allowed (a no-op). `running` is a batch-only state: no interactive move in or out.
bool can_transition(SessionState from, SessionState to);
// Ok if can_transition; otherwise Error{"illegal_transition",
// "session state idle cannot become starting"}.
Result<void> check_transition(SessionState from, SessionState to);

// Statement states (Livy's StatementState strings).
enum class StatementState {
  kWaiting,
  kRunning,
  kAvailable,
  kCancelling,
  kCancelled,
};

// waiting, running, available, cancelling, cancelled.
std::string_view to_string(StatementState state);
std::optional<StatementState> parse_statement_state(std::string_view text);

// Livy's table plus two Hearth moves: waiting→available (failed before it could run, e.g. the
// driver died) and cancelling→available (it finished before the cancel took effect).
// from == to is allowed (a no-op).
bool can_transition(StatementState from, StatementState to);
// Ok or Error{"illegal_transition", "statement state available cannot become running"}.
Result<void> check_transition(StatementState from, StatementState to);

// No further move: available, cancelled.
bool is_terminal(StatementState state);

// Driver states as stored. REST shows a ready driver as "idle" or "busy" (from its load).
enum class DriverState {
  kStarting,
  kReady,
  kStopping,
  kDead,
  kError,
};

// starting, ready, stopping, dead, error.
std::string_view to_string(DriverState state);
std::optional<DriverState> parse_driver_state(std::string_view text);
// from == to is allowed (a no-op).
bool can_transition(DriverState from, DriverState to);
Result<void> check_transition(DriverState from, DriverState to);
// dead or error: the process is gone or useless.
bool is_finished(DriverState state);

// Job states: queued → running → succeeded | failed; cancelling → cancelled while a kill is
// under way; a job whose driver died fails.
enum class JobState {
  kQueued,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelling,
  kCancelled,
};

// queued, running, succeeded, failed, cancelling, cancelled.
std::string_view to_string(JobState state);
std::optional<JobState> parse_job_state(std::string_view text);
bool can_transition(JobState from, JobState to);
Result<void> check_transition(JobState from, JobState to);
// No further move: succeeded, failed, cancelled.
bool is_terminal(JobState state);

// The one way code changes a state it holds: `state` becomes `to` if the table allows the move
// (check_transition), else it is left as it is and the illegal_transition error returned.
template <typename State>
Result<void> advance(State& state, State to) {
  if (auto allowed = check_transition(state, to); !allowed) return allowed;
  state = to;
  return Ok{};
}

}  // namespace hearth::session
