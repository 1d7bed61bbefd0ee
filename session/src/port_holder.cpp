#include "hearth/session/port_holder.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace hearth::session {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kListenState = "0A";  // TCP_LISTEN in /proc/net/tcp's hex "st" column
constexpr std::size_t kMaxNamedHolders = 3;

// The inodes of the sockets listening on `port` in one /proc/net/tcp-style table, as the
// "socket:[inode]" targets their descriptors link to.
void add_listening_sockets(const char* table, uint16_t port, std::set<std::string>& targets) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode)) {
      continue;
    }
    if (state != kListenState) continue;
    auto colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    unsigned local_port = 0;
    const char* begin = local.data() + colon + 1;
    const char* end = local.data() + local.size();
    auto [rest, ec] = std::from_chars(begin, end, local_port, 16);
    if (ec != std::errc() || rest != end || local_port != port || inode == "0") continue;
    targets.insert("socket:[" + inode + "]");
  }
}

std::string command_name(const fs::path& process_dir) {
  std::ifstream in(process_dir / "comm");
  std::string name;
  std::getline(in, name);
  return name;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::vector<PortHolder> find_port_holders(uint16_t port) {
  std::vector<PortHolder> holders;
  if (port == 0) return holders;
  std::set<std::string> targets;
  add_listening_sockets("/proc/net/tcp", port, targets);
  add_listening_sockets("/proc/net/tcp6", port, targets);
  if (targets.empty()) return holders;
  std::error_code ec;
  for (const auto& process : fs::directory_iterator("/proc", ec)) {
    const std::string pid_text = process.path().filename().string();
    int pid = 0;
    auto [end, parsed] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
    if (parsed != std::errc() || end != pid_text.data() + pid_text.size()) continue;
    // Processes come and go, and another user's descriptors cannot be read: skip, not fail.
    std::error_code fd_ec;
    for (const auto& fd : fs::directory_iterator(process.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      auto target = fs::read_symlink(fd.path(), link_ec);
      if (!link_ec && targets.count(target.string()) > 0) {
        holders.push_back(PortHolder{pid, command_name(process.path())});
        break;
      }
    }
  }
  std::sort(holders.begin(), holders.end(),
            [](const PortHolder& a, const PortHolder& b) { return a.pid < b.pid; });
  return holders;
}

std::string cannot_listen_message(std::string_view host, uint16_t port, std::string_view purpose,
                                  std::string_view reason) {
  // An IPv6 address is bracketed, so the port stays readable: [::1]:8998.
  const bool bare_ipv6 = !host.empty() && host.find(':') != std::string_view::npos && host.front() != '[';
  std::string address = bare_ipv6 ? "[" + std::string(host) + "]" : std::string(host);
  std::string text(reason);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  std::string message = "cannot listen on " + address + ":" + std::to_string(port) + " for " +
                        std::string(purpose) + ": " + text;
  if (!equals_ignoring_case(reason, std::strerror(EADDRINUSE))) return message;
  auto holders = find_port_holders(port);
  if (holders.empty()) return message;
  message += " (held by ";
  for (std::size_t i = 0; i < holders.size() && i < kMaxNamedHolders; ++i) {
    if (i > 0) message += "; ";
    message += "pid " + std::to_string(holders[i].pid);
    if (!holders[i].name.empty()) message += ", " + holders[i].name;
  }
  if (holders.size() > kMaxNamedHolders) {
    message += "; and " + std::to_string(holders.size() - kMaxNamedHolders) + " more";
  }
  return message + ")";
}

std::optional<TcpEndpoint> parse_tcp_endpoint(std::string_view endpoint) {
  constexpr std::string_view kScheme = "tcp://";
  if (endpoint.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  endpoint.remove_prefix(kScheme.size());
  auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  TcpEndpoint out;
  out.host = std::string(endpoint.substr(0, colon));
  std::string_view port = endpoint.substr(colon + 1);
  if (port == "*") return out;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty()) return std::nullopt;
  return out;
}

}  // namespace hearth::session
