#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/records.hpp"

namespace hearth::server {

// Long-polls of GET /sessions/{id}/statements/{sid}?wait=<ms>: a request whose statement is
// still waiting or running is parked here, without holding a REST worker thread, and answered
// by one thread as soon as the statement leaves waiting/running or its deadline passes. The
// transport is the caller's: a parked request is the callback that answers it.
//
// Lock order: the session manager may call notify() while holding its own lock; this class
// never calls into the manager while holding its mutex (fetch runs outside it).
class StatementWaits {
 public:
  using Fetch = std::function<Result<session::StatementRecord>(int64_t session_id, int64_t statement_id)>;
  // Answers one parked request with the statement as it is now (or the error); called once.
  using Reply = std::function<void(const Result<session::StatementRecord>&)>;

  StatementWaits(Fetch fetch, std::size_t max_parked);
  ~StatementWaits();  // stop()
  // Answers everything still parked and joins the thread; later parks are answered at once and
  // notifications ignored. Idempotent.
  void stop();

  // Parks a request until the statement is done or `deadline`, then calls `reply`. Replies at
  // once when max_parked requests are already parked or after stop().
  void park(int64_t session_id, int64_t statement_id, std::chrono::steady_clock::time_point deadline,
            Reply reply);
  // The statement changed; thread-safe and non-blocking.
  void notify(int64_t session_id, int64_t statement_id);

  static bool done(const session::StatementRecord& statement);

 private:
  struct Parked {
    int64_t session_id;
    int64_t statement_id;
    std::chrono::steady_clock::time_point deadline;
    Reply reply;
  };
  using Key = std::pair<int64_t, int64_t>;

  void run();

  const Fetch fetch_;
  const std::size_t max_parked_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Parked> parked_;
  // Parked requests the thread has taken out to look at (without the lock): notifications
  // must be kept while there are any, or one arriving during that look would be lost.
  std::size_t checking_ = 0;
  std::set<Key> changed_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hearth::server
