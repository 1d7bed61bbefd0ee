#include "hearth/protocol/client_messages.hpp"

#include <type_traits>

namespace hearth::protocol::client {

namespace {

template <typename T>
inline constexpr bool kAlwaysFalse = false;

template <typename T>
constexpr std::string_view wire_name() {
  if constexpr (std::is_same_v<T, Hello>) {
    return "hello";
  } else if constexpr (std::is_same_v<T, Welcome>) {
    return "welcome";
  } else if constexpr (std::is_same_v<T, Ping>) {
    return "ping";
  } else if constexpr (std::is_same_v<T, Pong>) {
    return "pong";
  } else if constexpr (std::is_same_v<T, Call>) {
    return "call";
  } else if constexpr (std::is_same_v<T, Reply>) {
    return "reply";
  } else if constexpr (std::is_same_v<T, Upload>) {
    return "upload";
  } else if constexpr (std::is_same_v<T, Subscribe>) {
    return "subscribe";
  } else if constexpr (std::is_same_v<T, Unsubscribe>) {
    return "unsubscribe";
  } else if constexpr (std::is_same_v<T, Event>) {
    return "event";
  } else if constexpr (std::is_same_v<T, Part>) {
    return "part";
  } else if constexpr (std::is_same_v<T, ErrorMessage>) {
    return "error";
  } else {
    static_assert(kAlwaysFalse<T>, "every client Message alternative needs a wire name");
  }
}

}  // namespace

std::string_view type_name(const Message& message) {
  return std::visit([](const auto& m) { return wire_name<std::decay_t<decltype(m)>>(); },
                    message);
}

}  // namespace hearth::protocol::client
