#pragma once

#include <chrono>
#include <string_view>

#include "hearth/protocol/result.hpp"

namespace hearth::session {

// "90s", "10m", "1h", "500ms", "2d"; a bare number is milliseconds (as Livy's ttl). Used for
// server settings and for the durations of a session request (ttl, idleTimeout). Error code
// "bad_config".
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace hearth::session
