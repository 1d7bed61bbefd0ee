// find_port_holders and cannot_listen_message against real sockets of this test process.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "hearth/session/port_holder.hpp"

namespace hearth::session {
namespace {

// A TCP socket bound to the loopback address (IPv4 or IPv6) on a free port, listening or not.
class LoopbackSocket {
 public:
  LoopbackSocket(int family, bool listening) : fd_(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (family == AF_INET6) {
      auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
      address->sin6_family = AF_INET6;
      address->sin6_addr = in6addr_loopback;
      length = sizeof *address;
    } else {
      auto* address = reinterpret_cast<sockaddr_in*>(&storage);
      address->sin_family = AF_INET;
      address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof *address;
    }
    auto* address = reinterpret_cast<sockaddr*>(&storage);
    if (fd_ < 0 || ::bind(fd_, address, length) != 0 || (listening && ::listen(fd_, 4) != 0) ||
        ::getsockname(fd_, address, &length) != 0) {
      error_ = std::strerror(errno);
      return;
    }
    port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                                     : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  uint16_t port() const { return port_; }
  const std::string& error() const { return error_; }

 private:
  int fd_;
  uint16_t port_ = 0;
  std::string error_;
};

// The entry for this process among the holders, or nullptr. (Only this process listens on the
// port at that address; another may on the same port at another address or family.)
const PortHolder* this_process(const std::vector<PortHolder>& holders) {
  for (const auto& holder : holders) {
    if (holder.pid == ::getpid()) return &holder;
  }
  return nullptr;
}

std::string own_command_name() {
  std::ifstream in("/proc/self/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(PortHolderTest, FindsThisProcessListeningOnIpv4) {
  LoopbackSocket socket(AF_INET, /*listening=*/true);
  ASSERT_NE(socket.port(), 0) << socket.error();
  auto holders = find_port_holders(socket.port());
  const PortHolder* self = this_process(holders);
  ASSERT_NE(self, nullptr) << holders.size() << " other holders";
  EXPECT_EQ(self->name, own_command_name());
}

TEST(PortHolderTest, FindsThisProcessListeningOnIpv6) {
  LoopbackSocket socket(AF_INET6, /*listening=*/true);
  ASSERT_NE(socket.port(), 0) << socket.error();
  auto holders = find_port_holders(socket.port());
  ASSERT_NE(this_process(holders), nullptr) << holders.size() << " other holders";
}

// Only a listening socket keeps a server from listening; a bound one (a client's) is not named.
TEST(PortHolderTest, ABoundButNotListeningSocketHoldsNothing) {
  LoopbackSocket socket(AF_INET, /*listening=*/false);
  ASSERT_NE(socket.port(), 0) << socket.error();
  EXPECT_TRUE(find_port_holders(socket.port()).empty());
  EXPECT_TRUE(find_port_holders(0).empty());
}

TEST(PortHolderTest, TheMessageForAPortInUseNamesTheHolder) {
  LoopbackSocket socket(AF_INET, /*listening=*/true);
  ASSERT_NE(socket.port(), 0) << socket.error();
  const std::string port = std::to_string(socket.port());
  EXPECT_EQ(cannot_listen_message("127.0.0.1", socket.port(), "REST", std::strerror(EADDRINUSE)),
            "cannot listen on 127.0.0.1:" + port + " for REST: address already in use (held by pid " +
                std::to_string(::getpid()) + ", " + own_command_name() + ")");
  // Another error is not blamed on whoever listens on the port.
  EXPECT_EQ(cannot_listen_message("::1", socket.port(), "the client channel", "Permission denied"),
            "cannot listen on [::1]:" + port + " for the client channel: permission denied");
}

TEST(PortHolderTest, TheMessageForAPortInUseWithoutAHolderSaysJustThat) {
  LoopbackSocket socket(AF_INET, /*listening=*/false);
  ASSERT_NE(socket.port(), 0) << socket.error();
  EXPECT_EQ(cannot_listen_message("127.0.0.1", socket.port(), "REST", "Address already in use"),
            "cannot listen on 127.0.0.1:" + std::to_string(socket.port()) +
                " for REST: address already in use");
}

}  // namespace
}  // namespace hearth::session
