#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hearth/session/kv_store.hpp"
#include "hearth/session/recovery.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::session {
namespace {

SessionRecord session(int64_t id, SessionState state, std::string driver_id) {
  SessionRecord r;
  r.id = id;
  r.state = state;
  r.driver_id = std::move(driver_id);
  r.request.kind = "pyspark";
  return r;
}

DriverRecord driver(std::string id, DriverState state) {
  DriverRecord r;
  r.id = std::move(id);
  r.state = state;
  r.pid = 4242;
  return r;
}

StatementRecord statement(int64_t session_id, int64_t id, StatementState state) {
  StatementRecord r;
  r.session_id = session_id;
  r.id = id;
  r.kind = "pyspark";
  r.code = "1";
  r.state = state;
  return r;
}

JobRecord job(int64_t session_id, int64_t id, JobState state) {
  JobRecord r;
  r.session_id = session_id;
  r.id = id;
  r.class_name = "a.B";
  r.state = state;
  return r;
}

class RecoveryPlanTest : public ::testing::Test {
 protected:
  std::unique_ptr<KeyValueStore> kv = make_in_memory_kv_store();
  SessionStore store{*kv};
  void put(const SessionRecord& r) { ASSERT_TRUE(store.put_session(r).ok()); }
  void put(const DriverRecord& r) { ASSERT_TRUE(store.put_driver(r).ok()); }
  void put(const StatementRecord& r) { ASSERT_TRUE(store.put_statement(r).ok()); }
  void put(const JobRecord& r) { ASSERT_TRUE(store.put_job(r).ok()); }
};

TEST_F(RecoveryPlanTest, AnEmptyStorePlansNothing) {
  auto plan = plan_recovery(store);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->drivers.empty() && plan->sessions.empty() && plan->orphans.empty() &&
              plan->finished_drivers.empty());
}

TEST_F(RecoveryPlanTest, SessionsOnALiveDriverAreAdoptedWithTheirUnfinishedWorkInIdOrder) {
  put(driver("d1", DriverState::kReady));
  put(session(0, SessionState::kBusy, "d1"));
  put(session(1, SessionState::kIdle, "d1"));
  for (auto [id, state] : {std::pair{0, StatementState::kAvailable}, {1, StatementState::kRunning},
                           {2, StatementState::kWaiting}, {3, StatementState::kCancelled},
                           {4, StatementState::kCancelling}}) {
    put(statement(0, id, state));
  }
  put(job(0, 0, JobState::kSucceeded));
  put(job(0, 1, JobState::kRunning));
  put(job(0, 2, JobState::kQueued));

  auto plan = plan_recovery(store);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->drivers.size(), 1u);
  EXPECT_EQ(plan->drivers[0].record.id, "d1");
  EXPECT_EQ(plan->drivers[0].sessions, (std::vector<int64_t>{0, 1}));
  ASSERT_EQ(plan->sessions.size(), 2u);
  EXPECT_EQ(plan->sessions[0].record.id, 0);
  EXPECT_EQ(plan->sessions[0].unfinished_statements, (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(plan->sessions[0].unfinished_jobs, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(plan->sessions[1].unfinished_statements.empty());
  EXPECT_TRUE(plan->orphans.empty());
}

TEST_F(RecoveryPlanTest, ActiveSessionsWithoutALiveDriverAreOrphansFinishedOnesAreLeftAlone) {
  put(driver("gone", DriverState::kDead));
  put(driver("alive", DriverState::kStarting));
  put(session(0, SessionState::kIdle, "gone"));           // its driver finished
  put(session(1, SessionState::kStarting, ""));           // never got a driver
  put(session(2, SessionState::kIdle, "unknown"));        // no record of its driver
  put(session(3, SessionState::kShuttingDown, "alive"));  // was being stopped
  put(session(4, SessionState::kDead, "gone"));           // finished: nothing to do
  put(session(5, SessionState::kRecovering, "alive"));    // a crash during a recovery
  put(statement(0, 0, StatementState::kWaiting));

  auto plan = plan_recovery(store);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->finished_drivers, std::vector<std::string>{"gone"});
  ASSERT_EQ(plan->drivers.size(), 1u);
  EXPECT_EQ(plan->drivers[0].sessions, std::vector<int64_t>{5});
  ASSERT_EQ(plan->sessions.size(), 1u);
  EXPECT_EQ(plan->sessions[0].record.id, 5);
  std::vector<int64_t> orphans;
  for (const auto& o : plan->orphans) {
    orphans.push_back(o.record.id);
    EXPECT_FALSE(o.reason.empty());
  }
  EXPECT_EQ(orphans, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(plan->orphans[0].unfinished_statements, std::vector<int64_t>{0});
}

TEST_F(RecoveryPlanTest, ACorruptSessionRecordIsSkippedNotFatal) {
  put(driver("d1", DriverState::kReady));
  put(session(0, SessionState::kIdle, "d1"));
  ASSERT_TRUE(kv->set(store.prefix() + "session:1", "{not json").ok());
  ASSERT_TRUE(kv->zadd(store.prefix() + "sessions", 1, "1").ok());
  auto plan = plan_recovery(store);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->sessions.size(), 1u);
  EXPECT_EQ(plan->sessions[0].record.id, 0);
}

}  // namespace
}  // namespace hearth::session
