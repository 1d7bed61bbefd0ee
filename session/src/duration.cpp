#include "hearth/session/duration.hpp"

#include <charconv>
#include <string>

namespace hearth::session {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  int64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data() || number < 0) {
    return make_error("bad_config", "expected a duration like 90s, 10m or 500ms, got '" + std::string(text) + "'");
  }
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int64_t factor = 0;
  if (unit.empty() || unit == "ms") factor = 1;
  else if (unit == "s") factor = 1000;
  else if (unit == "m" || unit == "min") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else if (unit == "d") factor = 86'400'000;
  else return make_error("bad_config", "unknown duration unit '" + std::string(unit) + "' in '" + std::string(text) + "'");
  return std::chrono::milliseconds(number * factor);
}

}  // namespace hearth::session
