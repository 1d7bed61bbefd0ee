// ChildProcess against real child processes (/bin/sh).

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hearth/session/child_process.hpp"

namespace hearth::session {
namespace {

using namespace std::chrono_literals;

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

}  // namespace
}  // namespace hearth::session
