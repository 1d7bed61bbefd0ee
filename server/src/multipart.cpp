#include "hearth/server/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace hearth::server {
namespace {

Error bad(std::string message) { return make_error("bad_request", "multipart body: " + std::move(message)); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `key` in a Content-Disposition header: form-data; name="x"; filename="y".
std::optional<std::string> disposition_param(std::string_view header, std::string_view key) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t semi = header.find(';', pos);
    std::string_view item = trim(header.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    pos = semi == std::string_view::npos ? header.size() : semi + 1;
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || !iequals(trim(item.substr(0, eq)), key)) continue;
    std::string_view value = trim(item.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<FormPart>> parse_multipart(std::string_view body, std::string_view boundary) {
  if (boundary.empty() || boundary.size() > 70) return bad("missing or invalid boundary");
  const std::string delimiter = "--" + std::string(boundary);
  std::size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos) return bad("no boundary found");
  std::vector<FormPart> parts;
  for (;;) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return bad("malformed boundary line");
    pos += 2;
    std::size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) return bad("part headers not terminated");
    FormPart part;
    bool has_name = false;
    std::string_view headers = body.substr(pos, headers_end - pos);
    while (!headers.empty()) {
      std::size_t eol = headers.find("\r\n");
      std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) return bad("malformed part header");
      if (!iequals(trim(line.substr(0, colon)), "Content-Disposition")) continue;
      std::string_view value = line.substr(colon + 1);
      if (auto name = disposition_param(value, "name")) {
        part.name = *name;
        has_name = true;
      }
      part.filename = disposition_param(value, "filename");
    }
    if (!has_name) return bad("a part has no form field name");
    std::size_t data_start = headers_end + 4;
    std::size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) return bad("part not terminated by a boundary");
    part.data.assign(body.substr(data_start, next - data_start));
    parts.push_back(std::move(part));
    pos = next + 2;
  }
}

}  // namespace hearth::server
