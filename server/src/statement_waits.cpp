#include "hearth/server/statement_waits.hpp"

namespace hearth::server {

StatementWaits::StatementWaits(Fetch fetch, std::size_t max_parked)
    : fetch_(std::move(fetch)), max_parked_(max_parked) {
  thread_ = std::thread([this] { run(); });
}

StatementWaits::~StatementWaits() { stop(); }

void StatementWaits::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool StatementWaits::done(const session::StatementRecord& statement) {
  return statement.state != session::StatementState::kWaiting &&
         statement.state != session::StatementState::kRunning;
}

void StatementWaits::park(int64_t session_id, int64_t statement_id,
                          std::chrono::steady_clock::time_point deadline,
                          Reply reply) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && parked_.size() < max_parked_) {
      parked_.push_back({session_id, statement_id, deadline, std::move(reply)});
      // Checked once more by the thread: the statement may have finished between the handler's
      // read and this park, and that notification would otherwise be missed.
      changed_.insert({session_id, statement_id});
      wake_.notify_all();
      return;
    }
  }
  reply(fetch_(session_id, statement_id));
}

void StatementWaits::notify(int64_t session_id, int64_t statement_id) {
  {
    std::lock_guard lock(mutex_);
    if ((parked_.empty() && checking_ == 0) || stopping_) return;
    changed_.insert({session_id, statement_id});
  }
  wake_.notify_all();
}

void StatementWaits::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto next_deadline = std::chrono::steady_clock::time_point::max();
    for (const auto& p : parked_) next_deadline = std::min(next_deadline, p.deadline);
    wake_.wait_until(lock, next_deadline, [&] { return stopping_ || !changed_.empty() ||
                                                       std::chrono::steady_clock::now() >= next_deadline; });
    const auto now = std::chrono::steady_clock::now();
    // Take out the requests to look at; answer them without the lock.
    std::vector<Parked> due;
    std::set<Key> changed;
    changed.swap(changed_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (stopping_ || it->deadline <= now || changed.count({it->session_id, it->statement_id})) {
        due.push_back(std::move(*it));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
    const bool stopping = stopping_;
    checking_ = due.size();
    lock.unlock();
    std::vector<Parked> still_waiting;
    for (auto& p : due) {
      auto statement = fetch_(p.session_id, p.statement_id);
      if (!stopping && p.deadline > now && statement && !done(*statement)) {
        still_waiting.push_back(std::move(p));
      } else {
        p.reply(statement);
      }
    }
    lock.lock();
    checking_ = 0;
    for (auto& p : still_waiting) parked_.push_back(std::move(p));
    if (stopping && parked_.empty()) return;
  }
}

}  // namespace hearth::server
