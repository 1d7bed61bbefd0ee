#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::session {

// A supervised child process in its own session and process group (spark-submit and the driver JVM it
// becomes, the embedded redis-server). Its stdout and stderr are merged and the last
// `max_log_lines` lines kept. One thread per child reads the output and reaps the child; when the
// child exits, the whole process group is killed so nothing it started outlives it, and the
// exit callback runs on that thread. The child inherits no descriptor of the parent but its
// stdin (/dev/null), stdout and stderr (the output pipe), however the parent opened the others.
//
// Lifecycle hazard: the destructor kills the group and joins the supervising thread, so a
// ChildProcess must never be destroyed from inside its own exit callback.
// True while process `pid` lives (not a zombie) and has `argument` among its command-line
// arguments: how the server recognises a driver JVM it did not start itself (a pid alone may
// have been reused).
bool process_has_argument(int pid, std::string_view argument);
// For such a process (not our child, so there is no exit to wait for): polls /proc until it is
// gone (exited, or a zombie) or `limit` passes; true when gone. Blocks up to `limit`.
bool wait_until_gone(int pid, std::string_view argument, std::chrono::milliseconds limit);
// SIGKILL to the process group it leads (ChildProcess starts every child as a session and group
// leader, so this takes what it started along), or to it alone; nothing once it is gone.
void kill_process_tree(int pid, std::string_view argument);

class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> argv;               // argv[0] is the program (PATH is searched)
    std::map<std::string, std::string> env;      // added to (or replacing in) the parent's environment
    std::vector<std::string> unset_env;          // removed from the parent's environment
    std::size_t max_log_lines = 200;
    std::function<void(int wait_status)> on_exit;  // optional; runs on the supervising thread
    // Optional; runs on the supervising thread with the complete lines of each chunk of output
    // as they arrive (not under the process's lock), before the exit callback for the last ones.
    std::function<void(std::vector<std::string> lines)> on_lines;
  };

  // Starts the child. Error code "spawn_failed" when the program cannot be started.
  static Result<std::unique_ptr<ChildProcess>> start(Options options);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  bool running() const;
  // The raw wait status once the child has exited.
  std::optional<int> wait_status() const;
  // Blocks until the child has exited and its exit callback has returned, or the timeout
  // passes; true if so.
  bool wait_for_exit(std::chrono::milliseconds timeout) const;
  // Signals the child's process group (SIGTERM / SIGKILL). No-op once reaped.
  void terminate();
  void kill();
  // Terminates, waits up to `grace`, then kills and waits for the reap. Returns when reaped.
  void stop(std::chrono::milliseconds grace);
  // The last lines the child printed (oldest first).
  std::vector<std::string> log_lines() const;
  // Stops supervising and leaves the child running: no signal now or in the destructor, no exit
  // callback, no reap (the child becomes init's once this process exits). For drivers a planned
  // server restart keeps. Blocks until the supervising thread has stopped (one poll period).
  // Must not be called from the exit callback.
  void release();

 private:
  ChildProcess(int pid, int output_fd, Options options);
  void supervise();
  // Adds output to the log; returns the lines it completed (for on_lines).
  std::vector<std::string> append_output(const char* data, std::size_t size);
  void report_lines(std::vector<std::string> lines);
  void signal_group(int signal_number);

  const int pid_;
  const int output_fd_;
  Options options_;
  mutable std::mutex mutex_;
  mutable std::condition_variable exited_cv_;
  std::optional<int> wait_status_;
  bool exit_handled_ = false;  // the exit callback has returned
  std::atomic<bool> released_{false};
  std::deque<std::string> lines_;
  std::string partial_line_;
  std::thread supervisor_;
};

}  // namespace hearth::session
