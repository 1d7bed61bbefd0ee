#include "hearth/session/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

extern char** environ;

namespace hearth::session {
namespace {

constexpr std::size_t kMaxLineBytes = 8192;
constexpr int kPollMillis = 200;

std::vector<std::string> build_environment(const ChildProcess::Options& options) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    merged[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& name : options.unset_env) merged.erase(name);
  for (const auto& [name, value] : options.env) merged[name] = value;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [name, value] : merged) out.push_back(name + "=" + value);
  return out;
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::start(Options options) {
  if (options.argv.empty()) return make_error("spawn_failed", "no program given");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return make_error("spawn_failed", std::string("pipe: ") + std::strerror(errno));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  // Nothing else of the server reaches the child, whether or not it was opened close-on-exec:
  // Pistache opens its listening and connection sockets without it, and a driver JVM holding
  // the REST socket kept the port after a `kill -9` of the server, so the restarted server
  // could not listen on it. Closing in the child covers descriptors opened by any library and
  // by other threads while this one spawns.
  if (int rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3); rc != 0) {
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return make_error("spawn_failed", std::string("posix_spawn_file_actions_addclosefrom_np: ") +
                                          std::strerror(rc));
  }

  // The server blocks its shutdown signals in every thread; the child must start with a clean
  // mask and default handlers, in a session (and so a process group) of its own so it can be
  // signalled as a whole. A session rather than only a group: when the server dies, a group in
  // the server's session becomes orphaned, and the kernel sends SIGHUP to an orphaned group with
  // a stopped member (a JVM in a debugger, a SIGSTOP), which would end a driver that must outlive
  // its server; nor does a hang-up of the server's terminal reach the drivers.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_strings = build_environment(options);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    return make_error("spawn_failed", "cannot start " + options.argv[0] + ": " + std::strerror(rc));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, pipe_fds[0], std::move(options)));
}

bool process_has_argument(int pid, std::string_view argument) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string arg;
  // A zombie's cmdline is empty, so a process that exited but was not reaped does not count.
  while (std::getline(in, arg, '\0')) {
    if (arg == argument) return true;
  }
  return false;
}

bool wait_until_gone(int pid, std::string_view argument, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (process_has_argument(pid, argument)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // A poll step: a process that is not our child offers nothing to wait on.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void kill_process_tree(int pid, std::string_view argument) {
  if (!process_has_argument(pid, argument)) return;
  const pid_t group = ::getpgid(static_cast<pid_t>(pid));
  ::kill(group == static_cast<pid_t>(pid) ? -group : static_cast<pid_t>(pid), SIGKILL);
}

ChildProcess::ChildProcess(int pid, int output_fd, Options options)
    : pid_(pid), output_fd_(output_fd), options_(std::move(options)) {
  supervisor_ = std::thread([this] { supervise(); });
}

ChildProcess::~ChildProcess() {
  if (running() && !released_) kill();
  if (supervisor_.joinable()) supervisor_.join();
}

void ChildProcess::release() {
  released_ = true;
  if (supervisor_.joinable()) supervisor_.join();
}

void ChildProcess::supervise() {
  bool output_open = true;
  char buffer[16384];
  for (;;) {
    if (released_) {
      // Left to run on (see release()): no kill, no reap, no exit callback. Closing the read end
      // only makes the child's later writes to its output fail (EPIPE); a JVM ignores SIGPIPE.
      ::close(output_fd_);
      std::lock_guard lock(mutex_);
      exit_handled_ = true;
      exited_cv_.notify_all();
      return;
    }
    if (output_open) {
      pollfd pfd{output_fd_, POLLIN, 0};
      int n = ::poll(&pfd, 1, kPollMillis);
      if (n > 0) {
        ssize_t got = ::read(output_fd_, buffer, sizeof buffer);
        if (got > 0) {
          report_lines(append_output(buffer, static_cast<std::size_t>(got)));
          continue;
        }
        if (got == 0 || (errno != EINTR && errno != EAGAIN)) output_open = false;
      }
    } else {
      ::poll(nullptr, 0, kPollMillis);
    }
    // Detect the exit without reaping (WNOWAIT): while the leader is a zombie its pid, and so
    // its process group id, cannot be reused, which makes killing the group below safe.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid_) {
      break;
    }
  }
  // Leftovers of the child (a Python worker, a forked helper) die with it.
  ::kill(-pid_, SIGKILL);
  // Drain what is still buffered in the pipe without blocking on writers that may linger.
  if (output_open) {
    ::fcntl(output_fd_, F_SETFL, O_NONBLOCK);
    ssize_t got;
    while ((got = ::read(output_fd_, buffer, sizeof buffer)) > 0) {
      report_lines(append_output(buffer, static_cast<std::size_t>(got)));
    }
  }
  ::close(output_fd_);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  std::vector<std::string> last;
  {
    std::lock_guard lock(mutex_);
    if (!partial_line_.empty()) {
      last.push_back(partial_line_);
      lines_.push_back(std::move(partial_line_));
      partial_line_.clear();
      if (lines_.size() > options_.max_log_lines) lines_.pop_front();
    }
    wait_status_ = status;
  }
  report_lines(std::move(last));
  // The exit callback runs before waiters wake: whoever waited for the exit (a DELETE) then
  // finds everything the callback recorded (e.g. the sessions of a stopped driver marked dead).
  if (options_.on_exit) options_.on_exit(status);
  {
    std::lock_guard lock(mutex_);
    exit_handled_ = true;
  }
  exited_cv_.notify_all();
}

void ChildProcess::report_lines(std::vector<std::string> lines) {
  if (!lines.empty() && options_.on_lines) options_.on_lines(std::move(lines));
}

std::vector<std::string> ChildProcess::append_output(const char* data, std::size_t size) {
  std::vector<std::string> completed;
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < size; ++i) {
    char c = data[i];
    if (c == '\n') {
      if (options_.on_lines) completed.push_back(partial_line_);
      lines_.push_back(std::move(partial_line_));
      partial_line_.clear();
      if (lines_.size() > options_.max_log_lines) lines_.pop_front();
    } else if (partial_line_.size() < kMaxLineBytes) {
      partial_line_.push_back(c);
    }
  }
  return completed;
}

bool ChildProcess::running() const {
  std::lock_guard lock(mutex_);
  return !wait_status_.has_value();
}

std::optional<int> ChildProcess::wait_status() const {
  std::lock_guard lock(mutex_);
  return wait_status_;
}

bool ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return exited_cv_.wait_for(lock, timeout, [this] { return exit_handled_; });
}

void ChildProcess::signal_group(int signal_number) {
  // Checked under the lock: once reaped, the pid may belong to someone else.
  std::lock_guard lock(mutex_);
  if (!wait_status_) ::kill(-pid_, signal_number);
}

void ChildProcess::terminate() { signal_group(SIGTERM); }
void ChildProcess::kill() { signal_group(SIGKILL); }

void ChildProcess::stop(std::chrono::milliseconds grace) {
  terminate();
  if (wait_for_exit(grace)) return;
  kill();
  wait_for_exit(std::chrono::hours(1));
}

std::vector<std::string> ChildProcess::log_lines() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out(lines_.begin(), lines_.end());
  if (!partial_line_.empty()) out.push_back(partial_line_);
  return out;
}

}  // namespace hearth::session
