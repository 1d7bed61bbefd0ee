#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hearth/session/states.hpp"

namespace hearth::session {
namespace {

using S = SessionState;
using T = StatementState;

const std::vector<std::pair<S, std::string>> kSessionNames = {
    {S::kNotStarted, "not_started"},     {S::kStarting, "starting"}, {S::kRecovering, "recovering"},
    {S::kIdle, "idle"},                  {S::kRunning, "running"},   {S::kBusy, "busy"},
    {S::kShuttingDown, "shutting_down"}, {S::kError, "error"},       {S::kDead, "dead"},
    {S::kKilled, "killed"},              {S::kSuccess, "success"},
};

const std::vector<std::pair<T, std::string>> kStatementNames = {
    {T::kWaiting, "waiting"},       {T::kRunning, "running"},     {T::kAvailable, "available"},
    {T::kCancelling, "cancelling"}, {T::kCancelled, "cancelled"},
};

// The allowed moves, written out independently of the table in states.cpp.
const std::set<std::pair<S, S>> kSessionMoves = {
    {S::kNotStarted, S::kStarting},   {S::kNotStarted, S::kShuttingDown},
    {S::kNotStarted, S::kDead},       {S::kNotStarted, S::kError},
    {S::kStarting, S::kIdle},         {S::kStarting, S::kBusy},
    {S::kStarting, S::kError},        {S::kStarting, S::kShuttingDown},
    {S::kStarting, S::kDead},         {S::kStarting, S::kKilled},
    {S::kStarting, S::kRecovering},   {S::kIdle, S::kRecovering},
    {S::kBusy, S::kRecovering},
    {S::kRecovering, S::kIdle},       {S::kRecovering, S::kBusy},
    {S::kRecovering, S::kError},      {S::kRecovering, S::kShuttingDown},
    {S::kRecovering, S::kDead},       {S::kRecovering, S::kKilled},
    {S::kIdle, S::kBusy},             {S::kIdle, S::kError},
    {S::kIdle, S::kShuttingDown},     {S::kIdle, S::kDead},
    {S::kIdle, S::kKilled},           {S::kBusy, S::kIdle},
    {S::kBusy, S::kError},            {S::kBusy, S::kShuttingDown},
    {S::kBusy, S::kDead},             {S::kBusy, S::kKilled},
    {S::kError, S::kShuttingDown},    {S::kError, S::kDead},
    {S::kError, S::kKilled},          {S::kShuttingDown, S::kDead},
    {S::kShuttingDown, S::kKilled},
};

const std::set<std::pair<T, T>> kStatementMoves = {
    {T::kWaiting, T::kRunning},     {T::kWaiting, T::kCancelled},  {T::kWaiting, T::kAvailable},
    {T::kRunning, T::kAvailable},   {T::kRunning, T::kCancelling}, {T::kRunning, T::kCancelled},
    {T::kCancelling, T::kCancelled}, {T::kCancelling, T::kAvailable},
};

TEST(SessionStateTest, EveryStateStringRoundTrips) {
  for (const auto& [state, name] : kSessionNames) {
    EXPECT_EQ(to_string(state), name);
    auto parsed = parse_session_state(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, state);
  }
}

TEST(SessionStateTest, UnknownStringsDoNotParse) {
  for (const char* text : {"", "IDLE", "Idle", "idle ", "notstarted", "not-started", "available"}) {
    EXPECT_FALSE(parse_session_state(text).has_value()) << text;
  }
}

TEST(SessionStateTest, EveryAllowedMovePasses) {
  for (const auto& [from, to] : kSessionMoves) {
    EXPECT_TRUE(can_transition(from, to)) << to_string(from) << "->" << to_string(to);
    EXPECT_TRUE(check_transition(from, to).ok()) << to_string(from) << "->" << to_string(to);
  }
}

TEST(SessionStateTest, SameStateIsANoOp) {
  for (const auto& [state, name] : kSessionNames) {
    EXPECT_TRUE(can_transition(state, state)) << name;
    EXPECT_TRUE(check_transition(state, state).ok()) << name;
  }
}

TEST(SessionStateTest, EveryIllegalMoveFails) {
  int illegal = 0;
  for (const auto& [from, from_name] : kSessionNames) {
    for (const auto& [to, to_name] : kSessionNames) {
      if (from == to || kSessionMoves.contains({from, to})) continue;
      ++illegal;
      EXPECT_FALSE(can_transition(from, to)) << from_name << "->" << to_name;
      auto result = check_transition(from, to);
      ASSERT_FALSE(result.ok()) << from_name << "->" << to_name;
      EXPECT_EQ(result.error().code, "illegal_transition");
      EXPECT_EQ(result.error().message,
                "session state " + from_name + " cannot become " + to_name);
    }
  }
  EXPECT_EQ(illegal, 11 * 10 - static_cast<int>(kSessionMoves.size()));
}

TEST(SessionStateTest, IllegalMoveMessageNamesBothStates) {
  auto result = check_transition(S::kIdle, S::kStarting);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "session state idle cannot become starting");
}

TEST(SessionStateTest, TerminalStatesHaveNoWayOut) {
  for (S terminal : {S::kDead, S::kKilled, S::kSuccess, S::kRunning}) {
    for (const auto& [to, name] : kSessionNames) {
      if (to != terminal) {
        EXPECT_FALSE(can_transition(terminal, to)) << name;
      }
    }
  }
  for (const auto& [from, name] : kSessionNames) {
    if (from != S::kRunning) {
      EXPECT_FALSE(can_transition(from, S::kRunning)) << name;
    }
  }
}

TEST(SessionStateTest, FinishedAndActive) {
  const std::set<S> finished = {S::kError, S::kDead, S::kKilled, S::kSuccess};
  const std::set<S> inactive = {S::kShuttingDown, S::kKilled, S::kDead, S::kSuccess};
  for (const auto& [state, name] : kSessionNames) {
    EXPECT_EQ(is_finished(state), finished.contains(state)) << name;
    EXPECT_EQ(is_active(state), !inactive.contains(state)) << name;
  }
  EXPECT_TRUE(is_active(S::kError));  // like Livy: error is finished but still active
  EXPECT_TRUE(is_finished(S::kError));
}

TEST(StatementStateTest, EveryStateStringRoundTrips) {
  for (const auto& [state, name] : kStatementNames) {
    EXPECT_EQ(to_string(state), name);
    auto parsed = parse_statement_state(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, state);
  }
  for (const char* text : {"", "error", "Waiting", "idle", "canceled"}) {
    EXPECT_FALSE(parse_statement_state(text).has_value()) << text;
  }
}

TEST(StatementStateTest, EveryAllowedMovePasses) {
  for (const auto& [from, to] : kStatementMoves) {
    EXPECT_TRUE(can_transition(from, to)) << to_string(from) << "->" << to_string(to);
    EXPECT_TRUE(check_transition(from, to).ok()) << to_string(from) << "->" << to_string(to);
  }
  for (const auto& [state, name] : kStatementNames) {
    EXPECT_TRUE(check_transition(state, state).ok()) << name;
  }
}

TEST(StatementStateTest, EveryIllegalMoveFails) {
  int illegal = 0;
  for (const auto& [from, from_name] : kStatementNames) {
    for (const auto& [to, to_name] : kStatementNames) {
      if (from == to || kStatementMoves.contains({from, to})) continue;
      ++illegal;
      EXPECT_FALSE(can_transition(from, to)) << from_name << "->" << to_name;
      auto result = check_transition(from, to);
      ASSERT_FALSE(result.ok()) << from_name << "->" << to_name;
      EXPECT_EQ(result.error().code, "illegal_transition");
      EXPECT_EQ(result.error().message,
                "statement state " + from_name + " cannot become " + to_name);
    }
  }
  EXPECT_EQ(illegal, 5 * 4 - static_cast<int>(kStatementMoves.size()));
}

TEST(StatementStateTest, Terminal) {
  for (const auto& [state, name] : kStatementNames) {
    EXPECT_EQ(is_terminal(state), state == T::kAvailable || state == T::kCancelled) << name;
  }
}

// Driver and job tables: every listed move passes, every other move fails.
const std::set<std::pair<DriverState, DriverState>> kDriverMoves = {
    {DriverState::kStarting, DriverState::kReady},   {DriverState::kStarting, DriverState::kStopping},
    {DriverState::kStarting, DriverState::kDead},    {DriverState::kStarting, DriverState::kError},
    {DriverState::kReady, DriverState::kStopping},   {DriverState::kReady, DriverState::kDead},
    {DriverState::kReady, DriverState::kError},      {DriverState::kStopping, DriverState::kDead},
    {DriverState::kError, DriverState::kStopping},   {DriverState::kError, DriverState::kDead},
};
const std::vector<std::pair<DriverState, std::string>> kDriverNames = {
    {DriverState::kStarting, "starting"}, {DriverState::kReady, "ready"},
    {DriverState::kStopping, "stopping"}, {DriverState::kDead, "dead"}, {DriverState::kError, "error"},
};

TEST(DriverStateTest, NamesAndTable) {
  for (const auto& [state, name] : kDriverNames) {
    EXPECT_EQ(to_string(state), name);
    EXPECT_EQ(parse_driver_state(name), state);
    EXPECT_EQ(is_finished(state), state == DriverState::kDead || state == DriverState::kError);
  }
  EXPECT_FALSE(parse_driver_state("idle").has_value());
  int illegal = 0;
  for (const auto& [from, from_name] : kDriverNames) {
    for (const auto& [to, to_name] : kDriverNames) {
      const bool allowed = from == to || kDriverMoves.contains({from, to});
      EXPECT_EQ(can_transition(from, to), allowed) << from_name << "->" << to_name;
      if (!allowed) {
        ++illegal;
        auto result = check_transition(from, to);
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error().message, "driver state " + from_name + " cannot become " + to_name);
      }
    }
  }
  EXPECT_EQ(illegal, 5 * 4 - static_cast<int>(kDriverMoves.size()));
}

const std::set<std::pair<JobState, JobState>> kJobMoves = {
    {JobState::kQueued, JobState::kRunning},        {JobState::kQueued, JobState::kSucceeded},
    {JobState::kQueued, JobState::kFailed},         {JobState::kQueued, JobState::kCancelling},
    {JobState::kQueued, JobState::kCancelled},      {JobState::kRunning, JobState::kSucceeded},
    {JobState::kRunning, JobState::kFailed},        {JobState::kRunning, JobState::kCancelling},
    {JobState::kRunning, JobState::kCancelled},     {JobState::kCancelling, JobState::kCancelled},
    {JobState::kCancelling, JobState::kFailed},
};
const std::vector<std::pair<JobState, std::string>> kJobNames = {
    {JobState::kQueued, "queued"},         {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},   {JobState::kFailed, "failed"},
    {JobState::kCancelling, "cancelling"}, {JobState::kCancelled, "cancelled"},
};

TEST(JobStateTest, NamesTableAndTerminal) {
  for (const auto& [state, name] : kJobNames) {
    EXPECT_EQ(to_string(state), name);
    EXPECT_EQ(parse_job_state(name), state);
    EXPECT_EQ(is_terminal(state), state == JobState::kSucceeded || state == JobState::kFailed ||
                                      state == JobState::kCancelled);
  }
  EXPECT_FALSE(parse_job_state("SUCCEEDED").has_value());
  int illegal = 0;
  for (const auto& [from, from_name] : kJobNames) {
    for (const auto& [to, to_name] : kJobNames) {
      const bool allowed = from == to || kJobMoves.contains({from, to});
      EXPECT_EQ(can_transition(from, to), allowed) << from_name << "->" << to_name;
      if (!allowed) {
        ++illegal;
        auto result = check_transition(from, to);
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error().message, "job state " + from_name + " cannot become " + to_name);
      }
    }
  }
  EXPECT_EQ(illegal, 6 * 5 - static_cast<int>(kJobMoves.size()));
}

TEST(AdvanceTest, ALegalMoveChangesTheStateAnIllegalOneLeavesIt) {
  StatementState state = StatementState::kRunning;
  ASSERT_TRUE(advance(state, StatementState::kAvailable).ok());
  EXPECT_EQ(state, StatementState::kAvailable);
  auto refused = advance(state, StatementState::kRunning);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "illegal_transition");
  EXPECT_EQ(state, StatementState::kAvailable);

  SessionState session = SessionState::kIdle;
  ASSERT_TRUE(advance(session, SessionState::kRecovering).ok());
  ASSERT_TRUE(advance(session, SessionState::kBusy).ok());
  EXPECT_FALSE(advance(session, SessionState::kStarting).ok());
  EXPECT_EQ(session, SessionState::kBusy);
}

}  // namespace
}  // namespace hearth::session
