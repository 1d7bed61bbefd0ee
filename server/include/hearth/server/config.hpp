#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::server {

// One server setting: its key (the flag is --key, the config file line is `key = value`), its
// default and what it means. All settings are declared once, in kSettings (config.cpp).
struct SettingSpec {
  std::string_view key;
  std::string_view default_value;
  std::string_view meaning;
};
const std::vector<SettingSpec>& settings_table();

// The parsed configuration: every key of settings_table() has a value.
class ServerConfig {
 public:
  // Flags override the config file (--config FILE), which overrides defaults. Error code
  // "bad_config" for an unknown key, a missing value or an unreadable file; `help` is set when
  // --help was given.
  static Result<ServerConfig> parse(const std::vector<std::string>& args);

  const std::string& get(std::string_view key) const;
  Result<int> get_int(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::chrono::milliseconds> get_duration(std::string_view key) const;
  bool help() const { return help_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
  bool help_ = false;
};

// The --help text: usage and the settings table.
std::string help_text();

}  // namespace hearth::server
