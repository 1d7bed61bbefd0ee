#pragma once

// What the `hearth` CLI prints: aligned tables (sessions, drivers, SQL results), Livy's table
// outputs turned into tables, and the statement progress bar. Pure functions of their inputs
// (no terminal access): the caller says how wide the terminal is and whether it may use Unicode.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::cli {

enum class Align { kLeft, kRight };

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;  // a row shorter than headers is padded with ""
  std::vector<Align> align;                    // per column; missing entries are kLeft
};

struct TableStyle {
  // The terminal's width in columns: when set, the widest columns are cut down (their values
  // end with an ellipsis) until a row fits. Unset (output piped): nothing is ever truncated.
  std::optional<std::size_t> max_width;
  // A Unicode rule under the header and "…" as the ellipsis; plain ASCII when false.
  bool unicode = false;
};

// The table as text: the header row, (with unicode) a rule, then one line per row, columns
// separated by two spaces, every line ending in '\n' without trailing blanks. Control
// characters in values are escaped (a newline shows as "\n"), so one row is one line.
std::string render_table(const Table& table, const TableStyle& style);

// The width of UTF-8 text in terminal columns (one per code point).
std::size_t display_width(std::string_view text);
// The text cut to at most `width` columns, ending with `ellipsis` when it was cut.
std::string truncate_to_width(std::string_view text, std::size_t width, std::string_view ellipsis);

// A Spark SQL result as Livy's SQL interpreter answers it (the "application/json" output):
// {"schema": {"fields": [{"name", "type"}, …]}, "data": [[…], …]}. Strings print as they are,
// numbers as they were written, null as "null", booleans as true/false, nested values (arrays,
// maps, structs) as compact JSON; numeric columns are right-aligned. Error "bad_request" when
// the JSON is not of that shape (the caller then prints it as JSON).
Result<Table> table_from_sql_json(std::string_view json);
// Livy's "application/vnd.livy.table.v1+json" output of %table: {"headers": [{"name", "type"},
// …], "data": [[…], …]}, rendered like table_from_sql_json.
Result<Table> table_from_livy_table_json(std::string_view json);

// One line of the progress bar, e.g. "[##########----------]  50%" (ASCII) or
// "[██████████          ]  50%" (unicode, with partial blocks). `fraction` is clamped to
// [0, 1]; `width` is the number of cells between the brackets.
std::string progress_bar(double fraction, std::size_t width, bool unicode);

}  // namespace hearth::cli
