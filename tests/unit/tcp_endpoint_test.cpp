// parse_tcp_endpoint: the driver channel's bind endpoint as host and port for its bind error.

#include <gtest/gtest.h>

#include "hearth/session/port_holder.hpp"

namespace hearth::session {
namespace {

TEST(TcpEndpointTest, HostAndPort) {
  auto endpoint = parse_tcp_endpoint("tcp://127.0.0.1:5555");
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(endpoint->host, "127.0.0.1");
  EXPECT_EQ(endpoint->port, 5555);
}

TEST(TcpEndpointTest, BracketedIpv6HostAndAnyPort) {
  auto endpoint = parse_tcp_endpoint("tcp://[::1]:*");
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(endpoint->host, "[::1]");
  EXPECT_EQ(endpoint->port, 0);
}

TEST(TcpEndpointTest, RejectsOtherTransportsAndMalformedPorts) {
  EXPECT_FALSE(parse_tcp_endpoint("inproc://hearth"));
  EXPECT_FALSE(parse_tcp_endpoint("tcp://127.0.0.1"));
  EXPECT_FALSE(parse_tcp_endpoint("tcp://127.0.0.1:"));
  EXPECT_FALSE(parse_tcp_endpoint("tcp://127.0.0.1:99999"));
  EXPECT_FALSE(parse_tcp_endpoint("tcp://127.0.0.1:80x"));
  EXPECT_FALSE(parse_tcp_endpoint("tcp://:80"));
}

}  // namespace
}  // namespace hearth::session
