#pragma once

// Ctrl-C for a CLI whose work happens on other threads (the Client's): SIGINT and SIGTERM become
// a flag that the command checks and waits on, so that it can cancel what it started (the
// statement, the job, the session `exec` created) before it exits.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace hearth::cli {

class InterruptWatcher {
 public:
  // Blocks SIGINT, SIGTERM (and the private wake-up signal) in the calling thread and starts a
  // thread that receives them with sigwait. Construct it before any other thread exists (the
  // Client's threads inherit the mask; a thread started earlier would get the signal instead).
  // A second signal ends the process at once with exit code 130, for a clean-up that hangs.
  InterruptWatcher();
  ~InterruptWatcher();  // stops and joins the thread, restores the signal mask
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  bool interrupted() const { return interrupted_.load(); }

  // Wakes wait_until(): call it from any thread after changing what a `done` predicate reads.
  void notify();

  enum class WaitResult { kDone, kInterrupted, kTimedOut };
  // Blocks until done() is true, the user interrupts, or `deadline` passes. done() is evaluated
  // under the watcher's lock after each notify(), so it must not call back into the watcher.
  WaitResult wait_until(const std::function<bool()>& done,
                        std::chrono::steady_clock::time_point deadline);

  // Blocks until the future is ready (true) or the user interrupts (false). Checks for an
  // interrupt every 100 ms: a future cannot be waited on together with a condition variable.
  template <typename T>
  bool wait_ready(const std::future<T>& future) const {
    while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (interrupted()) return false;
    }
    return true;
  }

 private:
  void receive();

  sigset_t signals_{};
  sigset_t previous_mask_{};
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread thread_;
};

}  // namespace hearth::cli
