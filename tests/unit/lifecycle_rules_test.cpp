// Lifecycle rules (Livy's livy.server.session.*): which sessions and shared drivers go at a
// given time, with the clock given as plain numbers.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "hearth/session/lifecycle_rules.hpp"

namespace hearth::session {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kStart = 1'000'000;

SessionRecord session(int64_t id, SessionState state) {
  SessionRecord record;
  record.id = id;
  record.state = state;
  record.created_ms = kStart;
  return record;
}

std::vector<int64_t> ids(const LifecycleVerdict& verdict) {
  std::vector<int64_t> out;
  for (const auto& e : verdict.expired) out.push_back(e.session_id);
  return out;
}

const LifecycleSettings kSettings{60s, 10s};

TEST(LifecycleRulesTest, AFinishedSessionGoesStateRetainAfterItWasFirstSeenFinished) {
  std::vector sessions{session(1, SessionState::kDead)};
  auto first = expired_sessions(kStart, kSettings, sessions, {}, {});
  EXPECT_TRUE(first.expired.empty());
  EXPECT_EQ(first.finished_since_ms, (std::map<int64_t, int64_t>{{1, kStart}}));
  auto early = expired_sessions(kStart + 9'999, kSettings, sessions, {}, first.finished_since_ms);
  EXPECT_TRUE(early.expired.empty());
  auto due = expired_sessions(kStart + 10'000, kSettings, sessions, {}, early.finished_since_ms);
  ASSERT_EQ(ids(due), std::vector<int64_t>{1});
  EXPECT_EQ(due.expired[0].reason, "finished 10 s ago");
}

TEST(LifecycleRulesTest, FinishedTimesOfSessionsNoLongerListedAreForgotten) {
  auto verdict = expired_sessions(kStart, kSettings, {session(2, SessionState::kIdle)}, {},
                                  {{1, kStart - 5}});
  EXPECT_TRUE(verdict.finished_since_ms.empty());
}

TEST(LifecycleRulesTest, TtlCountsFromCreationWhateverTheActivity) {
  auto s = session(1, SessionState::kBusy);
  s.request.ttl = "30s";
  std::map<int64_t, SessionActivity> activity{{1, {kStart + 30'000, kStart + 30'000, true}}};
  EXPECT_TRUE(expired_sessions(kStart + 30'000, kSettings, {s}, activity, {}).expired.empty());
  auto due = expired_sessions(kStart + 30'001, kSettings, {s}, activity, {});
  ASSERT_EQ(ids(due), std::vector<int64_t>{1});
  EXPECT_EQ(due.expired[0].reason, "its ttl of 30s passed");
}

TEST(LifecycleRulesTest, HeartbeatTimeoutCountsAnyRequest) {
  auto s = session(1, SessionState::kIdle);
  s.request.heartbeat_timeout_s = 5;
  std::map<int64_t, SessionActivity> activity{{1, {kStart, kStart + 1'000, false}}};
  EXPECT_TRUE(expired_sessions(kStart + 6'000, kSettings, {s}, activity, {}).expired.empty());
  auto due = expired_sessions(kStart + 6'001, kSettings, {s}, activity, {});
  ASSERT_EQ(ids(due), std::vector<int64_t>{1});
  EXPECT_EQ(due.expired[0].reason, "no request for 5 s (heartbeatTimeoutInSecond)");
}

TEST(LifecycleRulesTest, IdleTimeoutNeedsNoWorkAndNoBusyState) {
  std::vector sessions{session(1, SessionState::kIdle), session(2, SessionState::kIdle),
                       session(3, SessionState::kBusy)};
  std::map<int64_t, SessionActivity> activity{{1, {kStart, kStart, false}},
                                              {2, {kStart, kStart, true}},
                                              {3, {kStart, kStart, false}}};
  EXPECT_TRUE(expired_sessions(kStart + 60'000, kSettings, sessions, activity, {}).expired.empty());
  auto due = expired_sessions(kStart + 60'001, kSettings, sessions, activity, {});
  ASSERT_EQ(ids(due), std::vector<int64_t>{1});
  EXPECT_EQ(due.expired[0].reason, "idle for longer than 60 s");
}

TEST(LifecycleRulesTest, TheSessionsIdleTimeoutOverridesTheServersAndZeroMeansNever) {
  auto own = session(1, SessionState::kIdle);
  own.request.idle_timeout = "2s";
  auto plain = session(2, SessionState::kIdle);
  std::map<int64_t, SessionActivity> activity{{1, {kStart, kStart, false}}, {2, {kStart, kStart, false}}};
  EXPECT_EQ(ids(expired_sessions(kStart + 2'001, kSettings, {own, plain}, activity, {})),
            std::vector<int64_t>{1});
  const LifecycleSettings never{0ms, 10s};
  EXPECT_TRUE(expired_sessions(kStart + 100'000'000, never, {plain}, activity, {}).expired.empty());
}

TEST(LifecycleRulesTest, ASessionTheServerDoesNotHoldOnlyGoesByTtl) {
  auto s = session(1, SessionState::kIdle);
  s.request.heartbeat_timeout_s = 1;
  EXPECT_TRUE(expired_sessions(kStart + 100'000'000, kSettings, {s}, {}, {}).expired.empty());
}

TEST(LifecycleRulesTest, OnlyUnusedSharedDriversWithoutSessionsGo) {
  const std::vector<DriverUse> drivers{
      {"shared", "user", false, false, false, false, kStart},
      {"own", "session", false, false, false, false, kStart},
      {"pooled", "user", true, false, false, false, kStart},
      {"busy", "user", false, true, false, false, kStart},
      {"stopping", "user", false, false, true, false, kStart},
      {"exited", "user", false, false, false, true, kStart},
      {"recent", "user", false, false, false, false, kStart + 1},
  };
  EXPECT_TRUE(unused_drivers(kStart + 10'000, 10s, drivers).empty());
  EXPECT_EQ(unused_drivers(kStart + 10'001, 10s, drivers), std::vector<std::string>{"shared"});
  EXPECT_TRUE(unused_drivers(kStart + 100'000'000, 0s, drivers).empty());
}

// Liveness: silent after five heartbeats of 2 s, lost after 60 s.
constexpr auto kSilentAfter = 10s;
constexpr auto kLostAfter = 60s;
const auto kNow = std::chrono::steady_clock::time_point{} + 1000h;

LivenessVerdict judge(const DriverSilence& driver, int64_t now_ms = kStart) {
  return judge_liveness(driver, kNow, now_ms, kSilentAfter, kLostAfter);
}

TEST(LivenessTest, AHeardDriverBecomesSilentOnceThenLost) {
  DriverSilence driver;
  driver.last_heard = kNow - 9'999ms;
  EXPECT_FALSE(judge(driver).becomes_silent);
  driver.last_heard = kNow - 10s;
  auto silent = judge(driver);
  EXPECT_TRUE(silent.becomes_silent);
  EXPECT_FALSE(silent.lost);
  EXPECT_EQ(silent.silent_for, 10s);
  driver.silent = true;  // judged so: not again
  EXPECT_FALSE(judge(driver).becomes_silent);
  driver.last_heard = kNow - 60s;
  EXPECT_TRUE(judge(driver).lost);
  EXPECT_FALSE(judge(driver).becomes_silent);
}

TEST(LivenessTest, ADriverSilentPastBothLimitsAtOnceIsSilentAndLost) {
  DriverSilence driver;
  driver.last_heard = kNow - 61s;
  auto verdict = judge(driver);
  EXPECT_TRUE(verdict.becomes_silent);
  EXPECT_TRUE(verdict.lost);
}

TEST(LivenessTest, AnAdoptedDriverCountsAsSilentSinceItWasAdopted) {
  DriverSilence driver;
  driver.adopted = true;
  driver.adopted_ms = kStart;
  EXPECT_FALSE(judge(driver, kStart + 9'999).becomes_silent);
  EXPECT_TRUE(judge(driver, kStart + 10'000).becomes_silent);
  EXPECT_TRUE(judge(driver, kStart + 60'000).lost);
  driver.last_heard = kNow - 1s;  // back: the channel's time counts
  EXPECT_FALSE(judge(driver, kStart + 60'000).lost);
}

TEST(LivenessTest, NotJudgedBeforeItsFirstConnectionOrWhileStopping) {
  DriverSilence launched;  // our own child, not connected yet: its process is watched
  EXPECT_FALSE(judge(launched, kStart + 100'000'000).lost);
  DriverSilence stopping;
  stopping.exited_or_stopping = true;
  stopping.last_heard = kNow - 100h;
  auto verdict = judge(stopping);
  EXPECT_FALSE(verdict.becomes_silent);
  EXPECT_FALSE(verdict.lost);
}

}  // namespace
}  // namespace hearth::session
