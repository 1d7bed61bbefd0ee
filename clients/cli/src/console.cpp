#include "hearth/cli/console.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <string>

namespace hearth::cli {
namespace {

constexpr std::size_t kDefaultTerminalWidth = 80;

std::size_t terminal_width(int fd) {
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    char* end = nullptr;
    long value = std::strtol(columns, &end, 10);
    if (end != columns && *end == '\0' && value > 0) return static_cast<std::size_t>(value);
  }
  return kDefaultTerminalWidth;
}

// The first of LC_ALL, LC_CTYPE, LANG that is set decides, as in setlocale(LC_CTYPE, "").
bool utf8_locale() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    std::string lower(value);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower.find("utf-8") != std::string::npos || lower.find("utf8") != std::string::npos;
  }
  return false;
}

}  // namespace

Console Console::standard() {
  Console console{std::cout, std::cerr, std::nullopt, false, false, false};
  bool utf8 = utf8_locale();
  if (isatty(STDOUT_FILENO)) {
    console.out_width = terminal_width(STDOUT_FILENO);
    console.out_unicode = utf8;
  }
  console.err_is_terminal = isatty(STDERR_FILENO) != 0;
  console.err_unicode = console.err_is_terminal && utf8;
  return console;
}

}  // namespace hearth::cli
