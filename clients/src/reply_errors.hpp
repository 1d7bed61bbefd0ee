#pragma once

// The one table from a reply's HTTP status to the library's Error::code (client.hpp's header
// comment lists the codes). Private to hearth::clients.

#include <cstdint>
#include <string_view>

#include "hearth/protocol/result.hpp"

namespace hearth::clients::detail {

// True for 2xx.
bool is_success(int64_t status);
// The Error for a non-2xx reply: code from the status, message from the body's {"msg": …} (or the
// body itself, or "HTTP <status>" when it is empty).
Error error_for_reply(int64_t status, std::string_view body_json);

}  // namespace hearth::clients::detail
