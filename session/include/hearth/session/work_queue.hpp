#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace hearth::session {

// What a session hands to its driver: statements and jobs, both numbered per session.
enum class WorkKind { kStatement, kJob };

struct WorkItem {
  WorkKind kind = WorkKind::kStatement;
  int64_t id = 0;
  auto operator<=>(const WorkItem&) const = default;
};

// One session's unfinished work on its driver: every statement and job that was accepted and
// has not ended, and whether it was handed to the driver. Items go out in order (statements in
// id order, then jobs in id order), so the driver queues statements as they were submitted.
// Holds only unfinished items: an item leaves when it ends, so the queue is bounded by the
// session's unfinished work, not by its age. Not thread-safe: the owner's lock guards it.
class WorkQueue {
 public:
  // Where an item stands.
  enum class Place { kAbsent, kWaiting, kDispatched };
  // What the sender did with an item dispatch() offered.
  enum class Sent { kSent, kSkipped, kFailed };

  // Accepted work, not yet handed over.
  void add(WorkItem item);
  // Work taken over from an earlier server process that counts as already handed over (a cancel
  // must go to the driver, which may be running it).
  void add_dispatched(WorkItem item);
  // Hand every unfinished item over again at the next dispatch(), dispatched ones too: the
  // driver (re)connected and frames of the old connection may be lost.
  void resend_all() { resend_all_ = true; }

  // Offers the items due, in order, to `send`: every unfinished one after resend_all(), else
  // those never handed over. kSent marks an item dispatched; kSkipped leaves it as it was;
  // kFailed stops (the rest, and a pending resend_all, wait for the next dispatch). Returns
  // false when stopped by kFailed.
  bool dispatch(const std::function<Sent(WorkItem)>& send);

  Place place(WorkItem item) const;
  // The item ended (finished, failed or cancelled): forgotten.
  void finish(WorkItem item);
  // Ends everything: the unfinished items, in order, for the caller to record as ended.
  std::vector<WorkItem> take_all();

  bool empty() const { return items_.empty(); }
  // Unfinished items of a kind, and whether one of them was handed over.
  std::size_t count(WorkKind kind) const;
  bool any_dispatched(WorkKind kind) const;

 private:
  std::map<WorkItem, bool> items_;  // unfinished item → dispatched
  bool resend_all_ = false;
};

}  // namespace hearth::session
