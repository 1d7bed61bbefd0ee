// WorkQueue: one session's unfinished statements and jobs, handed to its driver in order, again
// after a reconnect, and forgotten when they end.

#include <gtest/gtest.h>

#include <vector>

#include "hearth/session/work_queue.hpp"

namespace hearth::session {
namespace {

using Sent = WorkQueue::Sent;
using Place = WorkQueue::Place;

constexpr WorkItem statement(int64_t id) { return {WorkKind::kStatement, id}; }
constexpr WorkItem job(int64_t id) { return {WorkKind::kJob, id}; }

// What one dispatch() offered; every item is sent.
std::vector<WorkItem> dispatch_all(WorkQueue& queue) {
  std::vector<WorkItem> offered;
  EXPECT_TRUE(queue.dispatch([&](WorkItem item) {
    offered.push_back(item);
    return Sent::kSent;
  }));
  return offered;
}

TEST(WorkQueueTest, StatementsGoInIdOrderThenJobs) {
  WorkQueue queue;
  queue.add(job(2));
  queue.add(statement(3));
  queue.add(job(1));
  queue.add(statement(1));
  EXPECT_EQ(dispatch_all(queue), (std::vector{statement(1), statement(3), job(1), job(2)}));
  EXPECT_EQ(queue.place(statement(3)), Place::kDispatched);
  EXPECT_EQ(queue.place(job(1)), Place::kDispatched);
}

TEST(WorkQueueTest, AnItemIsSentOnceUntilResendAll) {
  WorkQueue queue;
  queue.add(statement(1));
  EXPECT_EQ(dispatch_all(queue), std::vector{statement(1)});
  queue.add(statement(2));
  EXPECT_EQ(dispatch_all(queue), std::vector{statement(2)});
  EXPECT_TRUE(dispatch_all(queue).empty());
  queue.add(statement(2));  // adding again does not make it waiting again
  EXPECT_EQ(queue.place(statement(2)), Place::kDispatched);
}

TEST(WorkQueueTest, ResendAllHandsEveryUnfinishedItemOverOnce) {
  WorkQueue queue;
  queue.add(statement(1));
  queue.add(job(1));
  dispatch_all(queue);
  queue.add(statement(2));
  queue.finish(statement(1));
  queue.resend_all();  // the driver reconnected
  EXPECT_EQ(dispatch_all(queue), (std::vector{statement(2), job(1)}));
  EXPECT_TRUE(dispatch_all(queue).empty());
}

TEST(WorkQueueTest, AFailedSendStopsAndIsRetriedWithAPendingResend) {
  WorkQueue queue;
  queue.add(statement(1));
  queue.add(statement(2));
  queue.add(job(1));
  queue.resend_all();
  std::vector<WorkItem> offered;
  EXPECT_FALSE(queue.dispatch([&](WorkItem item) {
    offered.push_back(item);
    return item == statement(2) ? Sent::kFailed : Sent::kSent;
  }));
  EXPECT_EQ(offered, (std::vector{statement(1), statement(2)}));
  EXPECT_EQ(queue.place(statement(1)), Place::kDispatched);
  EXPECT_EQ(queue.place(statement(2)), Place::kWaiting);
  EXPECT_EQ(queue.place(job(1)), Place::kWaiting);
  // The resend asked for before the failure still holds: statement 1 goes again too.
  EXPECT_EQ(dispatch_all(queue), (std::vector{statement(1), statement(2), job(1)}));
}

TEST(WorkQueueTest, ASkippedItemStaysWaiting) {
  WorkQueue queue;
  queue.add(statement(1));
  queue.add(statement(2));
  EXPECT_TRUE(queue.dispatch([](WorkItem item) { return item.id == 1 ? Sent::kSkipped : Sent::kSent; }));
  EXPECT_EQ(queue.place(statement(1)), Place::kWaiting);
  EXPECT_EQ(queue.place(statement(2)), Place::kDispatched);
  EXPECT_EQ(dispatch_all(queue), std::vector{statement(1)});
}

TEST(WorkQueueTest, CancelTellsWaitingFromDispatched) {
  // The manager cancels a waiting item at once and asks the driver about a dispatched one.
  WorkQueue queue;
  queue.add(job(1));
  dispatch_all(queue);
  queue.add(job(2));
  EXPECT_EQ(queue.place(job(1)), Place::kDispatched);
  EXPECT_EQ(queue.place(job(2)), Place::kWaiting);
  EXPECT_EQ(queue.place(job(3)), Place::kAbsent);
  EXPECT_EQ(queue.place(statement(1)), Place::kAbsent);  // kinds are apart
  queue.finish(job(2));  // cancelled while waiting: never offered
  EXPECT_TRUE(dispatch_all(queue).empty());
  EXPECT_EQ(queue.count(WorkKind::kJob), 1u);
}

TEST(WorkQueueTest, AdoptedWorkCountsAsHandedOver) {
  WorkQueue queue;
  queue.add_dispatched(job(4));
  EXPECT_EQ(queue.place(job(4)), Place::kDispatched);
  EXPECT_TRUE(dispatch_all(queue).empty());
  queue.resend_all();
  EXPECT_EQ(dispatch_all(queue), std::vector{job(4)});
}

TEST(WorkQueueTest, BoundedByUnfinishedWork) {
  WorkQueue queue;
  for (int64_t id = 1; id <= 1000; ++id) {
    queue.add(statement(id));
    dispatch_all(queue);
    queue.finish(statement(id));
  }
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.any_dispatched(WorkKind::kStatement));
  queue.resend_all();
  EXPECT_TRUE(dispatch_all(queue).empty());
}

TEST(WorkQueueTest, TakeAllEndsEverythingInOrder) {
  WorkQueue queue;
  queue.add(job(1));
  queue.add(statement(2));
  queue.add(statement(1));
  dispatch_all(queue);
  EXPECT_EQ(queue.count(WorkKind::kStatement), 2u);
  EXPECT_TRUE(queue.any_dispatched(WorkKind::kStatement));
  EXPECT_EQ(queue.take_all(), (std::vector{statement(1), statement(2), job(1)}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.place(statement(1)), Place::kAbsent);
}

}  // namespace
}  // namespace hearth::session
