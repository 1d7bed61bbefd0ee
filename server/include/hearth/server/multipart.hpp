#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::server {

// One part of a multipart/form-data body (RFC 7578): the form field's name, the file name when
// the part is a file, and its bytes.
struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string data;
};

// Splits a multipart/form-data body with the given boundary (the `boundary` parameter of its
// Content-Type). Error code "bad_request" for a body that is not well-formed. The parts' data
// are copies; the body may be freed afterwards.
Result<std::vector<FormPart>> parse_multipart(std::string_view body, std::string_view boundary);

}  // namespace hearth::server
