// StatementWaits (REST long-poll): parked requests are answered when their statement is done,
// at their deadline, or at stop — and a notification that arrives while the waits' thread is
// looking at a parked request is not lost.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "hearth/server/statement_waits.hpp"

namespace hearth::server {
namespace {

using namespace std::chrono_literals;
using session::StatementRecord;
using session::StatementState;
using Clock = std::chrono::steady_clock;

// One statement whose state a test changes, and the replies a parked request got.
class StatementWaitsTest : public ::testing::Test {
 protected:
  Result<StatementRecord> fetch() {
    std::lock_guard lock(mutex_);
    if (!exists_) return make_error("statement_not_found", "no statement");
    StatementRecord record;
    record.session_id = 1;
    record.id = 2;
    record.state = state_;
    return record;
  }

  void set_state(StatementState state) {
    std::lock_guard lock(mutex_);
    state_ = state;
  }

  StatementWaits::Reply recorder() {
    return [this](const Result<StatementRecord>& statement) {
      std::lock_guard lock(mutex_);
      ++replies_;
      last_ = statement ? std::optional(statement->state) : std::nullopt;
      replied_.notify_all();
    };
  }

  // Waits (bounded) for the n-th reply; false if it did not come within `within`.
  bool replied(int n, std::chrono::milliseconds within) {
    std::unique_lock lock(mutex_);
    return replied_.wait_for(lock, within, [&] { return replies_ >= n; });
  }

  std::mutex mutex_;
  std::condition_variable replied_;
  StatementState state_ = StatementState::kRunning;
  bool exists_ = true;
  int replies_ = 0;
  std::optional<StatementState> last_;
};

TEST_F(StatementWaitsTest, ARequestIsAnsweredWhenItsStatementIsDone) {
  StatementWaits waits([this](int64_t, int64_t) { return fetch(); }, 10);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  waits.notify(1, 2);  // still running: stays parked
  waits.notify(1, 3);  // another statement
  set_state(StatementState::kAvailable);
  waits.notify(1, 2);
  ASSERT_TRUE(replied(1, 20s));
  EXPECT_EQ(last_, StatementState::kAvailable);
  EXPECT_EQ(replies_, 1);
}

TEST_F(StatementWaitsTest, AStatementDoneBeforeTheParkIsAnsweredAtOnce) {
  // The handler read it running, it finished (notification before the park), then it parked.
  StatementWaits waits([this](int64_t, int64_t) { return fetch(); }, 10);
  set_state(StatementState::kAvailable);
  waits.notify(1, 2);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  ASSERT_TRUE(replied(1, 20s));
  EXPECT_EQ(last_, StatementState::kAvailable);
}

TEST_F(StatementWaitsTest, TheDeadlineAnswersWithTheStatementAsItIs) {
  StatementWaits waits([this](int64_t, int64_t) { return fetch(); }, 10);
  waits.park(1, 2, Clock::now() + 50ms, recorder());
  ASSERT_TRUE(replied(1, 20s));
  EXPECT_EQ(last_, StatementState::kRunning);
}

TEST_F(StatementWaitsTest, PastTheLimitAndAfterStopRequestsAreAnsweredAtOnce) {
  StatementWaits waits([this](int64_t, int64_t) { return fetch(); }, 1);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  waits.park(1, 2, Clock::now() + 60s, recorder());  // over max_parked
  ASSERT_TRUE(replied(1, 20s));
  waits.stop();  // answers the parked one
  EXPECT_EQ(replies_, 2);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  EXPECT_EQ(replies_, 3);
  EXPECT_EQ(last_, StatementState::kRunning);
}

TEST_F(StatementWaitsTest, AnErrorIsTheAnswer) {
  StatementWaits waits([this](int64_t, int64_t) { return fetch(); }, 10);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  {
    std::lock_guard lock(mutex_);
    exists_ = false;
  }
  waits.notify(1, 2);
  ASSERT_TRUE(replied(1, 20s));
  EXPECT_EQ(last_, std::nullopt);
}

TEST_F(StatementWaitsTest, ANotificationWhileTheThreadLooksAtTheRequestIsNotLost) {
  // The waits' thread takes a parked request out and fetches its statement without its lock.
  // The statement finishes during that fetch (which still saw it running): the notification
  // must bring the request back for another look, not be dropped until the deadline.
  std::mutex gate_mutex;
  std::condition_variable gate;
  bool in_fetch = false, released = false;
  std::atomic<int> fetches{0};
  StatementWaits waits(
      [&](int64_t, int64_t) {
        auto seen = fetch();
        if (fetches.fetch_add(1) == 0) {  // the thread's first look after the park
          std::unique_lock lock(gate_mutex);
          in_fetch = true;
          gate.notify_all();
          gate.wait(lock, [&] { return released; });
        }
        return seen;
      },
      10);
  waits.park(1, 2, Clock::now() + 60s, recorder());
  {
    std::unique_lock lock(gate_mutex);
    ASSERT_TRUE(gate.wait_for(lock, 20s, [&] { return in_fetch; }));
  }
  set_state(StatementState::kAvailable);
  waits.notify(1, 2);
  {
    std::lock_guard lock(gate_mutex);
    released = true;
  }
  gate.notify_all();
  // Well before the 60 s deadline: the notification was kept.
  ASSERT_TRUE(replied(1, 20s)) << "the notification was lost; the request waits for its deadline";
  EXPECT_EQ(last_, StatementState::kAvailable);
}

}  // namespace
}  // namespace hearth::server
