#include "hearth/cli/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "json_tree.hpp"

namespace hearth::cli {
namespace {

// A column is never cut narrower than this (ellipsis included), however narrow the terminal:
// a table wider than the terminal then wraps, which beats columns of bare ellipses.
constexpr std::size_t kMinColumnWidth = 4;
constexpr std::string_view kColumnGap = "  ";

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// One row is one line: control characters show as escapes.
std::string escape_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// The largest column width cap under which the row fits in `max_width` (columns narrower than
// the cap keep their width), but not below kMinColumnWidth.
std::size_t width_cap(const std::vector<std::size_t>& widths, std::size_t max_width) {
  std::size_t gaps = widths.empty() ? 0 : kColumnGap.size() * (widths.size() - 1);
  auto total_with_cap = [&](std::size_t cap) {
    std::size_t total = gaps;
    for (auto w : widths) total += std::min(w, cap);
    return total;
  };
  std::size_t widest = widths.empty() ? 0 : *std::max_element(widths.begin(), widths.end());
  if (total_with_cap(widest) <= max_width) return widest;
  std::size_t cap = widest;
  while (cap > kMinColumnWidth && total_with_cap(cap) > max_width) --cap;
  return cap;
}

std::string pad(const std::string& cell, std::size_t width, Align align) {
  std::size_t shown = display_width(cell);
  std::string fill(width > shown ? width - shown : 0, ' ');
  return align == Align::kRight ? fill + cell : cell + fill;
}

void append_line(std::string& out, const std::vector<std::string>& cells,
                 const std::vector<std::size_t>& widths, const std::vector<Align>& align) {
  std::string line;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    if (i > 0) line += kColumnGap;
    line += pad(i < cells.size() ? cells[i] : std::string(), widths[i],
                i < align.size() ? align[i] : Align::kLeft);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

bool is_numeric_type(std::string_view type) {
  static constexpr std::string_view kSparkNumeric[] = {"byte", "short", "integer", "long",
                                                       "float", "double", "decimal"};
  static constexpr std::string_view kLivyNumeric[] = {
      "TINYINT_TYPE", "SMALLINT_TYPE", "INT_TYPE", "BIGINT_TYPE",
      "FLOAT_TYPE",   "DOUBLE_TYPE",   "DECIMAL_TYPE"};
  for (auto name : kSparkNumeric) {
    if (type == name) return true;
  }
  for (auto name : kLivyNumeric) {
    if (type == name) return true;
  }
  return type.starts_with("decimal(");
}

// The type name of a Spark schema field or Livy header: a string ("long", "decimal(10,2)") or,
// for nested types, an object whose "type" names it ("array", "struct", "map").
std::string type_name(const JsonNode* type) {
  if (type == nullptr) return {};
  if (type->is_string()) return type->text;
  if (const JsonNode* inner = type->find("type"); inner != nullptr && inner->is_string()) {
    return inner->text;
  }
  return {};
}

// Builds the table from an array of column descriptions ({"name", "type"}) and Livy's rows.
Result<Table> table_from_columns(const JsonNode& columns, const JsonNode* data, std::string_view what) {
  auto invalid = [&](const std::string& why) {
    return make_error("bad_request", std::string(what) + ": " + why);
  };
  Table table;
  for (const auto& column : columns.items) {
    const JsonNode* name = column.find("name");
    if (name == nullptr || !name->is_string()) return invalid("a column without a name");
    table.headers.push_back(name->text);
    table.align.push_back(is_numeric_type(type_name(column.find("type"))) ? Align::kRight
                                                                          : Align::kLeft);
  }
  if (data == nullptr || !data->is_array()) return invalid("no \"data\" array");
  for (const auto& row : data->items) {
    if (!row.is_array()) return invalid("a row that is not an array");
    std::vector<std::string> cells;
    cells.reserve(row.items.size());
    for (const auto& value : row.items) cells.push_back(display_text(value));
    table.rows.push_back(std::move(cells));
  }
  return table;
}

}  // namespace

std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation_byte(c); }));
}

std::string truncate_to_width(std::string_view text, std::size_t width, std::string_view ellipsis) {
  if (display_width(text) <= width) return std::string(text);
  std::size_t ellipsis_width = display_width(ellipsis);
  std::size_t keep = width > ellipsis_width ? width - ellipsis_width : width;
  std::size_t end = 0;
  std::size_t kept = 0;
  while (end < text.size()) {
    if (!is_continuation_byte(text[end])) {
      if (kept == keep) break;
      ++kept;
    }
    ++end;
  }
  std::string out(text.substr(0, end));
  if (width > ellipsis_width) out += ellipsis;
  return out;
}

std::string render_table(const Table& table, const TableStyle& style) {
  std::size_t columns = table.headers.size();
  for (const auto& row : table.rows) columns = std::max(columns, row.size());

  auto escaped = [](const std::vector<std::string>& cells) {
    std::vector<std::string> out;
    out.reserve(cells.size());
    for (const auto& cell : cells) out.push_back(escape_controls(cell));
    return out;
  };
  std::vector<std::string> headers = escaped(table.headers);
  std::vector<std::vector<std::string>> rows;
  rows.reserve(table.rows.size());
  for (const auto& row : table.rows) rows.push_back(escaped(row));

  std::vector<std::size_t> widths(columns, 0);
  auto measure = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], display_width(cells[i]));
  };
  measure(headers);
  for (const auto& row : rows) measure(row);

  if (style.max_width) {
    std::size_t cap = width_cap(widths, *style.max_width);
    std::string_view ellipsis = style.unicode ? "…" : "...";
    auto cut = [&](std::vector<std::string>& cells) {
      for (auto& cell : cells) cell = truncate_to_width(cell, cap, ellipsis);
    };
    cut(headers);
    for (auto& row : rows) cut(row);
    for (auto& w : widths) w = std::min(w, cap);
  }

  std::string out;
  append_line(out, headers, widths, table.align);
  if (style.unicode) {
    std::vector<std::string> rule;
    for (auto w : widths) {
      std::string line;
      for (std::size_t i = 0; i < w; ++i) line += "─";
      rule.push_back(std::move(line));
    }
    append_line(out, rule, widths, {});
  }
  for (const auto& row : rows) append_line(out, row, widths, table.align);
  return out;
}

Result<Table> table_from_sql_json(std::string_view json) {
  constexpr std::string_view kWhat = "not a SQL result";
  auto root = parse_json(json);
  if (!root) return root.error();
  const JsonNode* schema = root->find("schema");
  const JsonNode* fields = schema != nullptr ? schema->find("fields") : nullptr;
  if (fields == nullptr || !fields->is_array()) {
    return make_error("bad_request", std::string(kWhat) + ": no \"schema\".\"fields\" array");
  }
  return table_from_columns(*fields, root->find("data"), kWhat);
}

Result<Table> table_from_livy_table_json(std::string_view json) {
  constexpr std::string_view kWhat = "not a Livy table";
  auto root = parse_json(json);
  if (!root) return root.error();
  const JsonNode* headers = root->find("headers");
  if (headers == nullptr || !headers->is_array()) {
    return make_error("bad_request", std::string(kWhat) + ": no \"headers\" array");
  }
  return table_from_columns(*headers, root->find("data"), kWhat);
}

std::string progress_bar(double fraction, std::size_t width, bool unicode) {
  if (!(fraction >= 0)) fraction = 0;  // also NaN
  fraction = std::min(fraction, 1.0);
  std::string bar = "[";
  if (unicode) {
    // Eighths of a cell: U+258F (one eighth) … U+2589 (seven eighths), then U+2588 (full).
    static constexpr std::string_view kPartial[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    auto eighths = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(width) * 8));
    std::size_t full = eighths / 8;
    std::size_t drawn = full;
    for (std::size_t i = 0; i < full; ++i) bar += "█";
    if (full < width && eighths % 8 != 0) {
      bar += kPartial[eighths % 8];
      ++drawn;
    }
    bar.append(width - drawn, ' ');
  } else {
    auto full = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(width)));
    bar.append(full, '#');
    bar.append(width - full, '-');
  }
  // Rounded down, so 100% shows only when everything is done.
  auto percent = static_cast<int>(std::floor(fraction * 100 + 1e-9));
  char tail[16];
  std::snprintf(tail, sizeof tail, "] %3d%%", percent);
  return bar + tail;
}

}  // namespace hearth::cli
