#include "reply_errors.hpp"

#include <string>

#include "resource_json.hpp"

namespace hearth::clients::detail {

bool is_success(int64_t status) { return status >= 200 && status < 300; }

Error error_for_reply(int64_t status, std::string_view body_json) {
  std::string code;
  switch (status) {
    case 400: code = "bad_request"; break;
    case 403: code = "forbidden"; break;
    case 404: code = "not_found"; break;
    case 409: code = "conflict"; break;
    case 413: code = "too_large"; break;
    case 501: code = "not_implemented"; break;
    default: code = "server_error"; break;  // 5xx, and any status the table does not name
  }
  std::string message = error_message_of(body_json);
  if (message.empty() || message == "null") message = "HTTP " + std::to_string(status);
  return make_error(std::move(code), std::move(message));
}

}  // namespace hearth::clients::detail
