#pragma once

// Where the CLI writes and what it knows about it: whether stdout / stderr are terminals (tables
// are cut to the terminal's width, the progress bar is drawn) and whether Unicode may be used.

#include <cstddef>
#include <iosfwd>
#include <optional>

namespace hearth::cli {

struct Console {
  std::ostream& out;
  std::ostream& err;
  // Columns of the terminal stdout is; unset when stdout is not a terminal (piped).
  std::optional<std::size_t> out_width;
  // stderr is a terminal: the progress bar and status lines are drawn there.
  bool err_is_terminal = false;
  // The locale is UTF-8 and the output goes to a terminal: box rules, █ and … may be used.
  bool out_unicode = false;
  bool err_unicode = false;

  // std::cout / std::cerr, described from isatty, ioctl(TIOCGWINSZ) (else $COLUMNS, else 80)
  // and the locale variables (LC_ALL, LC_CTYPE, LANG).
  static Console standard();
};

}  // namespace hearth::cli
