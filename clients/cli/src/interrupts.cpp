#include "interrupts.hpp"

#include <unistd.h>

#include <cstdlib>

namespace hearth::cli {
namespace {

// Sent by the destructor to end sigwait; blocked everywhere, so it never reaches a handler.
constexpr int kWakeSignal = SIGUSR2;
constexpr int kInterruptedExitCode = 130;

}  // namespace

InterruptWatcher::InterruptWatcher() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, kWakeSignal);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
  thread_ = std::thread([this] { receive(); });
}

InterruptWatcher::~InterruptWatcher() {
  stopping_ = true;
  pthread_kill(thread_.native_handle(), kWakeSignal);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

void InterruptWatcher::receive() {
  for (;;) {
    int received = 0;
    if (sigwait(&signals_, &received) != 0) continue;
    if (received == kWakeSignal) {
      if (stopping_) return;
      continue;
    }
    if (interrupted_.exchange(true)) {
      // The second Ctrl-C: the clean-up after the first one is taking too long.
      static constexpr char kMessage[] = "\nhearth: interrupted again, exiting\n";
      [[maybe_unused]] auto written = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      std::_Exit(kInterruptedExitCode);
    }
    notify();
  }
}

void InterruptWatcher::notify() {
  // Taking the lock orders this wake-up after a waiter's predicate check, so none is lost.
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

InterruptWatcher::WaitResult InterruptWatcher::wait_until(
    const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return interrupted_.load() || done(); });
  if (done()) return WaitResult::kDone;
  return interrupted_.load() ? WaitResult::kInterrupted : WaitResult::kTimedOut;
}

}  // namespace hearth::cli
