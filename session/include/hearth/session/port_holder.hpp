#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::session {

// A process with a listening TCP socket open.
struct PortHolder {
  int pid = 0;
  std::string name;  // its command name (/proc/<pid>/comm), "" if it cannot be read
};

// The processes that hold a TCP socket listening on `port` (IPv4 or IPv6, any local address),
// lowest pid first. Found through /proc/net/tcp{,6} (this network namespace) and /proc/*/fd, so
// processes whose descriptors this user may not read are missing; empty when none is found or
// port is 0. Reads /proc once per call; meant for error messages, not for hot paths.
std::vector<PortHolder> find_port_holders(uint16_t port);

// The message for a port the server cannot listen on, naming the holder when the reason is
// "address already in use" and it can be found, e.g.
//   cannot listen on 127.0.0.1:8998 for REST: address already in use (held by pid 4242, java)
// `purpose` says what the port is for ("REST", "the client channel"); `reason` is the system's
// text for the error (strerror, zmq_strerror).
std::string cannot_listen_message(std::string_view host, uint16_t port, std::string_view purpose,
                                  std::string_view reason);

// Host and port of a ZeroMQ TCP endpoint ("tcp://127.0.0.1:5555", "tcp://[::1]:5555"); port 0
// for "*" (any free port). nullopt for other transports or a malformed endpoint.
struct TcpEndpoint {
  std::string host;
  uint16_t port = 0;
};
std::optional<TcpEndpoint> parse_tcp_endpoint(std::string_view endpoint);

}  // namespace hearth::session
