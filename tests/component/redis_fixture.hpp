#pragma once

// A real redis-server for component tests.
//
// main.cpp registers RedisEnvironment, which starts ONE redis-server (Unix socket only, no
// persistence, in a fresh temp dir) before the first test and stops it after the last. Tests
// share it and stay apart by key prefix: use hearth::test::unique_prefix() for every store.
//
//   hearth::session::SessionStore store(*kv, hearth::test::unique_prefix());
//   auto kv = hearth::session::make_redis_kv_store(hearth::test::redis_address());
//
// RedisServerProcess can also be used directly by a test that needs its own server (e.g. to
// kill and restart it); it always kills, reaps and cleans up in its destructor.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hearth/session/kv_store.hpp"

namespace hearth::test {

// One redis-server child listening on <dir>/redis.sock only (--port 0), output in
// <dir>/redis.log. start() blocks until it answers PING or throws (with the log) at the
// deadline; stop() kills and reaps it. The directory is created by the constructor (mkdtemp)
// and removed by the destructor.
class RedisServerProcess {
 public:
  RedisServerProcess() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "hearth-redis-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    socket_path_ = dir_ + "/redis.sock";
  }
  ~RedisServerProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  RedisServerProcess(const RedisServerProcess&) = delete;
  RedisServerProcess& operator=(const RedisServerProcess&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  void start(std::chrono::milliseconds deadline = std::chrono::seconds(15)) {
    if (pid_ > 0) return;
    std::filesystem::remove(socket_path_);  // a SIGKILLed server leaves its socket behind
    const std::string log_path = dir_ + "/redis.log";
    std::vector<std::string> args = {
        "/usr/bin/redis-server", "--port",          "0",       "--unixsocket", socket_path_,
        "--unixsocketperm",      "700",             "--save",  "",             "--appendonly",
        "no",                    "--dir",           dir_,      "--daemonize",  "no",
        "--logfile",             ""};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. If the test binary dies without
      // tearing down (crash, watchdog), the kernel kills redis-server too.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      // As ChildProcess does for the server: redis-server must not keep sockets or files of
      // the test binary (a listening socket of a test would stay busy while redis runs).
      closefrom(3);
      execv(argv[0], argv.data());
      _exit(127);
    }
    pid_ = pid;

    const auto give_up = std::chrono::steady_clock::now() + deadline;
    hearth::session::RedisAddress address;
    address.unix_path = socket_path_;
    while (true) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited during start-up:\n" + log());
      }
      if (std::filesystem::exists(socket_path_) &&
          hearth::session::make_redis_kv_store(address, 1)->ping().ok()) {
        return;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        stop();
        throw std::runtime_error("redis-server did not answer PING in time:\n" + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll step
    }
  }

  // SIGKILL by default (what a crash looks like to clients); SIGTERM for a clean shutdown.
  // Waits for the child with a deadline, escalating to SIGKILL.
  void stop(int signal_number = SIGKILL) {
    if (pid_ <= 0) return;
    kill(pid_, signal_number);
    const auto escalate = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > escalate) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

  std::string log() const {
    std::ifstream in(dir_ + "/redis.log");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  std::string dir_;
  std::string socket_path_;
  pid_t pid_ = -1;
};

namespace detail {
inline RedisServerProcess*& shared_redis() {
  static RedisServerProcess* server = nullptr;
  return server;
}
}  // namespace detail

// The shared server's socket path. Only valid while the environment is up (i.e. inside tests).
inline const std::string& redis_socket_path() {
  RedisServerProcess* server = detail::shared_redis();
  if (server == nullptr) throw std::logic_error("RedisEnvironment is not set up");
  return server->socket_path();
}

// The shared server as a RedisAddress (db 0) / URL, for stores and server configs.
inline hearth::session::RedisAddress redis_address() {
  hearth::session::RedisAddress address;
  address.unix_path = redis_socket_path();
  return address;
}
inline std::string redis_url() { return "unix://" + redis_socket_path(); }

// A key prefix no other test in this run uses: "hearth:test:<n>:".
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  return "hearth:test:" + std::to_string(counter.fetch_add(1)) + ":";
}

// Starts the shared server before the first test and stops it after the last.
class RedisEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    try {
      server_ = std::make_unique<RedisServerProcess>();
      server_->start();
      detail::shared_redis() = server_.get();
    } catch (const std::exception& e) {
      // A fatal failure here makes gtest skip every test and fail the run.
      FAIL() << "cannot start redis-server: " << e.what();
    }
  }
  void TearDown() override {
    detail::shared_redis() = nullptr;
    if (server_) server_->stop(SIGTERM);
    server_.reset();
  }

 private:
  std::unique_ptr<RedisServerProcess> server_;
};

}  // namespace hearth::test
