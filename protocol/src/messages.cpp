#include "hearth/protocol/messages.hpp"

#include <type_traits>

namespace hearth::protocol {

namespace {

template <typename T>
inline constexpr bool kAlwaysFalse = false;

template <typename T>
constexpr std::string_view wire_name() {
  if constexpr (std::is_same_v<T, Hello>) {
    return "hello";
  } else if constexpr (std::is_same_v<T, Welcome>) {
    return "welcome";
  } else if constexpr (std::is_same_v<T, Reject>) {
    return "reject";
  } else if constexpr (std::is_same_v<T, Heartbeat>) {
    return "heartbeat";
  } else if constexpr (std::is_same_v<T, DriverStatus>) {
    return "driver_state";
  } else if constexpr (std::is_same_v<T, OpenSession>) {
    return "open_session";
  } else if constexpr (std::is_same_v<T, SessionStatus>) {
    return "session_state";
  } else if constexpr (std::is_same_v<T, Execute>) {
    return "execute";
  } else if constexpr (std::is_same_v<T, StatementUpdate>) {
    return "statement_update";
  } else if constexpr (std::is_same_v<T, CloseSession>) {
    return "close_session";
  } else if constexpr (std::is_same_v<T, Shutdown>) {
    return "shutdown";
  } else if constexpr (std::is_same_v<T, ErrorReply>) {
    return "error";
  } else if constexpr (std::is_same_v<T, CancelStatement>) {
    return "cancel_statement";
  } else if constexpr (std::is_same_v<T, Complete>) {
    return "complete";
  } else if constexpr (std::is_same_v<T, Completion>) {
    return "completion";
  } else if constexpr (std::is_same_v<T, AddArtifact>) {
    return "add_artifact";
  } else if constexpr (std::is_same_v<T, ArtifactAdded>) {
    return "artifact_added";
  } else if constexpr (std::is_same_v<T, StartJob>) {
    return "start_job";
  } else if constexpr (std::is_same_v<T, JobUpdate>) {
    return "job_update";
  } else if constexpr (std::is_same_v<T, CancelJob>) {
    return "cancel_job";
  } else {
    static_assert(kAlwaysFalse<T>, "every Message alternative needs a wire name");
  }
}

}  // namespace

std::string_view type_name(const Message& message) {
  return std::visit([](const auto& m) { return wire_name<std::decay_t<decltype(m)>>(); },
                    message);
}

int64_t wire_version(const Message& message) {
  return std::holds_alternative<Hello>(message) || std::holds_alternative<Reject>(message)
             ? kHandshakeVersion
             : kVersion;
}

}  // namespace hearth::protocol
