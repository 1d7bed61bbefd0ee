#include "hearth/session/work_queue.hpp"

namespace hearth::session {

void WorkQueue::add(WorkItem item) { items_.try_emplace(item, false); }

void WorkQueue::add_dispatched(WorkItem item) { items_[item] = true; }

bool WorkQueue::dispatch(const std::function<Sent(WorkItem)>& send) {
  const bool again = resend_all_;
  for (auto& [item, dispatched] : items_) {
    if (dispatched && !again) continue;
    switch (send(item)) {
      case Sent::kSent:
        dispatched = true;
        break;
      case Sent::kSkipped:
        break;
      case Sent::kFailed:
        return false;  // resend_all_ stays set: the next dispatch starts over
    }
  }
  resend_all_ = false;
  return true;
}

WorkQueue::Place WorkQueue::place(WorkItem item) const {
  auto it = items_.find(item);
  if (it == items_.end()) return Place::kAbsent;
  return it->second ? Place::kDispatched : Place::kWaiting;
}

void WorkQueue::finish(WorkItem item) { items_.erase(item); }

std::vector<WorkItem> WorkQueue::take_all() {
  std::vector<WorkItem> all;
  all.reserve(items_.size());
  for (const auto& [item, dispatched] : items_) all.push_back(item);
  items_.clear();
  return all;
}

std::size_t WorkQueue::count(WorkKind kind) const {
  std::size_t n = 0;
  for (const auto& [item, dispatched] : items_) n += item.kind == kind ? 1 : 0;
  return n;
}

bool WorkQueue::any_dispatched(WorkKind kind) const {
  for (const auto& [item, dispatched] : items_) {
    if (item.kind == kind && dispatched) return true;
  }
  return false;
}

}  // namespace hearth::session
