// ChildProcess against real child processes (/bin/sh).

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hearth/session/child_process.hpp"

namespace hearth::session {
namespace {

using namespace std::chrono_literals;

// Processes of process group `group` that are not zombies, from /proc/<pid>/stat.
int living_members_of_group(int group) {
  int living = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    auto close = text.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    char state = 0;
    int parent = 0, pgrp = 0;
    rest >> state >> parent >> pgrp;
    if (pgrp == group && state != 'Z') ++living;
  }
  return living;
}

// Whoever waits for a child's exit (a DELETE waiting for its driver) must find what the exit
// callback recorded: the callback runs, to its end, before waiters wake.
TEST(ChildProcessTest, WaitersWakeOnlyAfterTheExitCallbackHasReturned) {
  std::atomic<bool> callback_done{false};
  std::atomic<int> seen_status{-1};
  ChildProcess::Options options;
  options.argv = {"/bin/sh", "-c", "echo started; exec sleep 600"};  // runs until terminated
  options.on_exit = [&](int status) {
    // Slow on purpose: a waiter woken before the callback ends would see callback_done false.
    std::this_thread::sleep_for(100ms);
    seen_status = status;
    callback_done = true;
  };
  auto child = ChildProcess::start(options);
  ASSERT_TRUE(child) << child.error().message;
  (*child)->terminate();
  ASSERT_TRUE((*child)->wait_for_exit(30s));
  EXPECT_TRUE(callback_done.load());
  EXPECT_FALSE((*child)->running());
  ASSERT_TRUE((*child)->wait_status().has_value());
  EXPECT_EQ(*(*child)->wait_status(), seen_status.load());
  EXPECT_TRUE(WIFSIGNALED(seen_status.load()));
}

TEST(ChildProcessTest, AChildThatExitsByItselfKeepsItsStatusAndLastLines) {
  std::atomic<bool> callback_done{false};
  ChildProcess::Options options;
  options.argv = {"/bin/sh", "-c", "echo one; echo two; exit 3"};
  options.on_exit = [&](int) {
    std::this_thread::sleep_for(100ms);
    callback_done = true;
  };
  auto child = ChildProcess::start(options);
  ASSERT_TRUE(child) << child.error().message;
  ASSERT_TRUE((*child)->wait_for_exit(30s));
  EXPECT_TRUE(callback_done.load());
  ASSERT_TRUE((*child)->wait_status().has_value());
  EXPECT_EQ(WEXITSTATUS(*(*child)->wait_status()), 3);
  EXPECT_EQ((*child)->log_lines(), (std::vector<std::string>{"one", "two"}));
}

// A listening socket on 127.0.0.1, port 0, opened WITHOUT close-on-exec (as Pistache opens the
// REST socket). Returns the descriptor; the port is stored in `port`.
int listen_inheritably(uint16_t& port, bool reuse_address = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (reuse_address) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(address.sin_port);
  return fd;
}

// After `kill -9` of the server, drivers that had inherited its REST listening socket kept the
// port, and the restarted server could not listen on it. A child gets stdin, stdout and stderr
// and nothing else, however the parent opened its descriptors.
TEST(ChildProcessTest, AChildInheritsNothingButStdinStdoutAndStderr) {
  uint16_t port = 0;
  const int listener = listen_inheritably(port);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  char file_name[] = "/tmp/hearth-child-fd-test-XXXXXX";
  const int file = ::mkstemp(file_name);  // no O_CLOEXEC
  ASSERT_GE(file, 0) << std::strerror(errno);
  ::unlink(file_name);

  ChildProcess::Options options;
  // The shell stays the listed process while ls (forked) lists its descriptors, so nothing the
  // loader or ls itself opens is counted; then it waits in sleep, keeping what it inherited.
  options.argv = {"/bin/sh", "-c", "ls -l /proc/$$/fd; echo listed; exec sleep 600"};
  auto child = ChildProcess::start(options);
  ASSERT_TRUE(child) << child.error().message;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<std::string> lines;
  for (;;) {
    lines = (*child)->log_lines();
    if (!lines.empty() && lines.back() == "listed") break;
    ASSERT_TRUE((*child)->running()) << "the child exited before listing its descriptors";
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the child did not list its descriptors";
    (*child)->wait_for_exit(20ms);  // a bounded poll step
  }
  // `ls -l` lines end in "NAME -> TARGET".
  std::vector<std::string> descriptors;
  std::string listing;
  for (const auto& line : lines) {
    listing += line + "\n";
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    auto space = line.rfind(' ', arrow - 1);
    descriptors.push_back(line.substr(space + 1, arrow - space - 1));
  }
  EXPECT_EQ(descriptors, (std::vector<std::string>{"0", "1", "2"})) << listing;

  // What a restarted server sees: once the parent has closed its socket, the port is free again
  // although the child still runs.
  ::close(listener);
  ::close(file);
  uint16_t same_port = port;
  const int again = listen_inheritably(same_port, /*reuse_address=*/true);
  EXPECT_GE(again, 0) << "port " << port << " is still held by the child: " << std::strerror(errno);
  if (again >= 0) ::close(again);
  EXPECT_TRUE((*child)->running());
  (*child)->kill();
  EXPECT_TRUE((*child)->wait_for_exit(30s));
}

// A released child runs on like a driver left by an earlier server process: the server knows it
// only by pid and an argument, waits for it through /proc and ends it with what it started.
TEST(ChildProcessTest, AReleasedChildIsFoundWaitedForAndKilledByPidAndArgument) {
  const std::string marker = "hearth-test-foreign-" + std::to_string(::getpid());
  ChildProcess::Options options;
  // $0 is the marker; sh keeps a child of its own (sleep), which must end with it.
  options.argv = {"/bin/sh", "-c", "sleep 600 & wait", marker};
  auto started = ChildProcess::start(std::move(options));
  ASSERT_TRUE(started.ok()) << started.error().message;
  auto child = std::move(started).value();
  const int pid = child->pid();
  child->release();
  child.reset();  // released: the destructor leaves it running

  EXPECT_TRUE(process_has_argument(pid, marker));
  EXPECT_FALSE(process_has_argument(pid, marker + "-other"));
  EXPECT_FALSE(wait_until_gone(pid, marker, 200ms));  // still running
  kill_process_tree(pid, marker);
  EXPECT_TRUE(wait_until_gone(pid, marker, 10s));
  ::waitpid(pid, nullptr, 0);  // the zombie is still ours: reap it
  // The group went with it: no living process (zombies of a non-reaping init aside) is left in it.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (living_members_of_group(pid) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // poll step: SIGKILL reaches the group's members at once, they end soon after
  }
  EXPECT_EQ(living_members_of_group(pid), 0);
}

}  // namespace
}  // namespace hearth::session
