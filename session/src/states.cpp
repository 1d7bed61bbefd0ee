#include "hearth/session/states.hpp"

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>

namespace hearth::session {
namespace {

constexpr std::size_t kSessionStateCount = 11;
constexpr std::size_t kStatementStateCount = 5;
constexpr std::size_t kDriverStateCount = 5;
constexpr std::size_t kJobStateCount = 6;

constexpr std::array<std::string_view, kDriverStateCount> kDriverStateNames = {
    "starting", "ready", "stopping", "dead", "error",
};

constexpr std::array<std::string_view, kJobStateCount> kJobStateNames = {
    "queued", "running", "succeeded", "failed", "cancelling", "cancelled",
};

constexpr std::array<std::string_view, kSessionStateCount> kSessionStateNames = {
    "not_started", "starting", "recovering",    "idle",  "running", "busy",
    "shutting_down", "error",  "dead",          "killed", "success",
};

constexpr std::array<std::string_view, kStatementStateCount> kStatementStateNames = {
    "waiting", "running", "available", "cancelling", "cancelled",
};

template <typename State, std::size_t N>
using TransitionTable = std::array<std::array<bool, N>, N>;

template <typename State, std::size_t N>
constexpr TransitionTable<State, N> make_table(
    std::initializer_list<std::pair<State, std::initializer_list<State>>> rows) {
  TransitionTable<State, N> table{};
  for (const auto& [from, targets] : rows) {
    for (State to : targets) {
      table[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)] = true;
    }
  }
  return table;
}

using S = SessionState;
// Interactive sessions (Livy's client-visible lifecycle; see livy-api.md 1.5). `running` is
// only used by batches, so it has no row here and no interactive state may move into it.
// killed is reachable from every state where a Spark application exists.
constexpr auto kSessionTransitions = make_table<SessionState, kSessionStateCount>({
    {S::kNotStarted, {S::kStarting, S::kShuttingDown, S::kDead, S::kError}},
    {S::kStarting, {S::kIdle, S::kBusy, S::kRecovering, S::kError, S::kShuttingDown, S::kDead, S::kKilled}},
    // recovering: the server restarted, or the driver fell silent; back to idle/busy when the
    // driver reconnects, dead when it does not come back in time.
    {S::kRecovering, {S::kIdle, S::kBusy, S::kError, S::kShuttingDown, S::kDead, S::kKilled}},
    {S::kIdle, {S::kBusy, S::kRecovering, S::kError, S::kShuttingDown, S::kDead, S::kKilled}},
    {S::kBusy, {S::kIdle, S::kRecovering, S::kError, S::kShuttingDown, S::kDead, S::kKilled}},
    {S::kError, {S::kShuttingDown, S::kDead, S::kKilled}},
    {S::kShuttingDown, {S::kDead, S::kKilled}},
    // kRunning, kDead, kKilled, kSuccess: no moves.
});

using T = StatementState;
constexpr auto kStatementTransitions = make_table<StatementState, kStatementStateCount>({
    {T::kWaiting, {T::kRunning, T::kCancelled, T::kAvailable}},
    {T::kRunning, {T::kAvailable, T::kCancelling, T::kCancelled}},
    {T::kCancelling, {T::kCancelled, T::kAvailable}},
    // kAvailable, kCancelled: terminal.
});

using D = DriverState;
// A driver that fails to start is "error"; a stopped or crashed process is "dead".
constexpr auto kDriverTransitions = make_table<DriverState, kDriverStateCount>({
    {D::kStarting, {D::kReady, D::kStopping, D::kDead, D::kError}},
    {D::kReady, {D::kStopping, D::kDead, D::kError}},
    {D::kStopping, {D::kDead}},
    {D::kError, {D::kStopping, D::kDead}},
    // kDead: no moves.
});

using J = JobState;
// A cancel asked for while queued or running passes through cancelling; a job whose driver died
// fails from any live state.
constexpr auto kJobTransitions = make_table<JobState, kJobStateCount>({
    {J::kQueued, {J::kRunning, J::kSucceeded, J::kFailed, J::kCancelling, J::kCancelled}},
    {J::kRunning, {J::kSucceeded, J::kFailed, J::kCancelling, J::kCancelled}},
    {J::kCancelling, {J::kCancelled, J::kFailed}},
    // kSucceeded, kFailed, kCancelled: terminal.
});

constexpr std::size_t state_index(auto state) { return static_cast<std::size_t>(state); }
static_assert(!kSessionTransitions[state_index(S::kIdle)][state_index(S::kStarting)]);
static_assert(kStatementTransitions[state_index(T::kWaiting)][state_index(T::kAvailable)]);

template <typename State, std::size_t N>
std::optional<State> parse(const std::array<std::string_view, N>& names, std::string_view text) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<State>(i);
  }
  return std::nullopt;
}

template <typename State, std::size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, State state) {
  const auto index = static_cast<std::size_t>(state);
  return index < N ? names[index] : std::string_view("unknown");
}

template <typename State, std::size_t N>
bool allowed(const TransitionTable<State, N>& table, State from, State to) {
  if (from == to) return true;
  const auto f = static_cast<std::size_t>(from);
  const auto t = static_cast<std::size_t>(to);
  return f < N && t < N && table[f][t];
}

Error illegal(std::string_view what, std::string_view from, std::string_view to) {
  std::string message;
  message.append(what).append(" state ").append(from).append(" cannot become ").append(to);
  return make_error("illegal_transition", std::move(message));
}

}  // namespace

std::string_view to_string(SessionState state) { return name_of(kSessionStateNames, state); }

std::optional<SessionState> parse_session_state(std::string_view text) {
  return parse<SessionState>(kSessionStateNames, text);
}

bool is_finished(SessionState state) {
  switch (state) {
    case S::kError:
    case S::kDead:
    case S::kKilled:
    case S::kSuccess:
      return true;
    default:
      return false;
  }
}

bool is_active(SessionState state) {
  switch (state) {
    case S::kShuttingDown:
    case S::kKilled:
    case S::kDead:
    case S::kSuccess:
      return false;
    default:
      return true;
  }
}

bool can_transition(SessionState from, SessionState to) {
  return allowed(kSessionTransitions, from, to);
}

Result<void> check_transition(SessionState from, SessionState to) {
  if (can_transition(from, to)) return Ok{};
  return illegal("session", to_string(from), to_string(to));
}

std::string_view to_string(StatementState state) { return name_of(kStatementStateNames, state); }

std::optional<StatementState> parse_statement_state(std::string_view text) {
  return parse<StatementState>(kStatementStateNames, text);
}

bool can_transition(StatementState from, StatementState to) {
  return allowed(kStatementTransitions, from, to);
}

Result<void> check_transition(StatementState from, StatementState to) {
  if (can_transition(from, to)) return Ok{};
  return illegal("statement", to_string(from), to_string(to));
}

bool is_terminal(StatementState state) {
  return state == T::kAvailable || state == T::kCancelled;
}

std::string_view to_string(DriverState state) { return name_of(kDriverStateNames, state); }

std::optional<DriverState> parse_driver_state(std::string_view text) {
  return parse<DriverState>(kDriverStateNames, text);
}

bool can_transition(DriverState from, DriverState to) { return allowed(kDriverTransitions, from, to); }

Result<void> check_transition(DriverState from, DriverState to) {
  if (can_transition(from, to)) return Ok{};
  return illegal("driver", to_string(from), to_string(to));
}

bool is_finished(DriverState state) { return state == D::kDead || state == D::kError; }

std::string_view to_string(JobState state) { return name_of(kJobStateNames, state); }

std::optional<JobState> parse_job_state(std::string_view text) {
  return parse<JobState>(kJobStateNames, text);
}

bool can_transition(JobState from, JobState to) { return allowed(kJobTransitions, from, to); }

Result<void> check_transition(JobState from, JobState to) {
  if (can_transition(from, to)) return Ok{};
  return illegal("job", to_string(from), to_string(to));
}

bool is_terminal(JobState state) {
  return state == J::kSucceeded || state == J::kFailed || state == J::kCancelled;
}

}  // namespace hearth::session
