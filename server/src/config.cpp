#include "hearth/server/config.hpp"

#include "hearth/session/duration.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

namespace hearth::server {
namespace {

const std::vector<SettingSpec> kSettings = {
    {"host", "127.0.0.1", "address the REST API listens on"},
    {"port", "8998", "REST port (0 = any free port; the chosen one is printed)"},
    {"client-host", "127.0.0.1", "address the client channel (ZeroMQ: the hearth CLI, the C++ client library) listens on"},
    {"client-port", "8999", "client channel port (0 = any free port; the chosen one is printed)"},
    {"client-send-hwm", "1000", "messages queued for one client before it counts as not reading (overrun: its subscriptions are dropped and it must resubscribe)"},
    {"driver-host", "127.0.0.1", "address the driver channel (ZeroMQ) listens on; drivers connect to it"},
    {"driver-port", "0", "driver channel port (0 = any free port)"},
    {"redis", "", "Redis URL (redis://host:port[/db] or unix:///path.sock); empty = start an embedded redis-server in the data dir"},
    {"data-dir", "./var", "where the embedded Redis keeps its append-only file and drivers' secrets are written"},
    {"spark-home", "", "Spark installation with bin/spark-submit; empty = the pyspark package of the project's .venv"},
    {"master", "local[*]", "Spark master for session drivers"},
    {"python", "", "Python for PySpark workers in drivers; empty = the project's .venv Python, else python3"},
    {"agent-jar", "", "the Hearth driver agent jar; empty = the one the build produced"},
    {"driver-idle-timeout", "10m", "a driver exits when it has not heard from the server this long"},
    {"heartbeat-interval", "2s", "heartbeat period on the driver channel"},
    {"driver-stop-timeout", "15s", "how long a driver may take to stop by itself before it is killed"},
    {"driver-lost-timeout", "60s", "a driver silent this long (or, after a restart, not back this long) is lost: its sessions end dead; silent for 5 heartbeats its sessions show recovering"},
    {"stop-drivers-on-shutdown", "false", "on SIGTERM/SIGINT stop every driver and end its sessions; false keeps drivers running for the next server process, which adopts them"},
    {"log-lines", "200", "driver output lines kept per session"},
    {"rest-threads", "8", "REST worker threads"},
    {"csrf-protection", "false", "require an X-Requested-By header on every non-GET request (as Livy's livy.server.csrf-protection.enabled)"},
    {"retained-statements", "100", "finished statements kept per session; older ones answer 404 like Livy's evicted statements"},
    {"completion-timeout", "10s", "how long POST /sessions/{id}/completion waits for the driver"},
    {"session-timeout", "1h", "a session idle this long is deleted (a request's idleTimeout overrides; 0 = never)"},
    {"session-state-retain", "600s", "a finished session (dead, error, killed) is deleted this long after it finished"},
    {"max-starting-sessions", "100", "sessions starting at once; more are refused (Livy's livy.server.session.max-creation)"},
    {"gc-interval", "10s", "how often the lifecycle rules (timeouts, ttl, retention) are checked"},
    {"local-dir-whitelist", "", "comma-separated directories whose files add-jar/add-pyfile/add-file may take by file: URI"},
    {"max-request-mib", "100", "largest request body in MiB (uploads included); larger ones are answered 413"},
    {"artifact-timeout", "2m", "how long adding a jar or file to a session may take"},
    {"default-share-level", "session", "share level of a session whose request has no shareLevel: session (its own driver, as Livy) or user (a shared driver of its user)"},
    {"driver-pool-size", "0", "warm pool: idle pre-started drivers kept for anonymous sessions with the default launch settings (and as many per --driver-pool-users user)"},
    {"driver-pool-users", "", "comma-separated users who each get --driver-pool-size pooled drivers of their own"},
    {"driver-unused-timeout", "10m", "a shared driver without sessions this long is stopped (0 = never; pooled drivers are kept)"},
    {"config", "", "a config file of `key = value` lines with the keys above"},
};

bool known(std::string_view key) {
  for (const auto& s : kSettings) {
    if (s.key == key) return true;
  }
  return false;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

Result<void> read_config_file(const std::string& path,
                              std::map<std::string, std::string, std::less<>>& values) {
  std::ifstream in(path);
  if (!in) return make_error("bad_config", "cannot read config file " + path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    auto eq = text.find('=');
    if (eq == std::string::npos) {
      return make_error("bad_config", path + ":" + std::to_string(number) + ": expected key = value");
    }
    std::string key = trim(text.substr(0, eq));
    if (!known(key) || key == "config") {
      return make_error("bad_config", path + ":" + std::to_string(number) + ": unknown setting '" + key + "'");
    }
    values[key] = trim(text.substr(eq + 1));
  }
  return Ok{};
}

}  // namespace

const std::vector<SettingSpec>& settings_table() { return kSettings; }

Result<ServerConfig> ServerConfig::parse(const std::vector<std::string>& args) {
  ServerConfig config;
  std::map<std::string, std::string, std::less<>> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      config.help_ = true;
      continue;
    }
    if (arg.substr(0, 2) != "--") return make_error("bad_config", "unexpected argument '" + std::string(arg) + "'");
    std::string key(arg.substr(2));
    std::string value;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
    } else {
      if (i + 1 >= args.size()) return make_error("bad_config", "--" + key + " needs a value");
      value = args[++i];
    }
    if (!known(key)) return make_error("bad_config", "unknown flag --" + key + " (see --help)");
    flags[key] = value;
  }
  for (const auto& s : kSettings) config.values_[std::string(s.key)] = std::string(s.default_value);
  if (auto it = flags.find("config"); it != flags.end() && !it->second.empty()) {
    if (auto read = read_config_file(it->second, config.values_); !read) return read.error();
  }
  for (auto& [key, value] : flags) config.values_[key] = value;
  if (auto v = config.get_bool("csrf-protection"); !v) return v.error();
  if (const auto& level = config.get("default-share-level"); level != "session" && level != "user") {
    return make_error("bad_config", "default-share-level: expected session or user, got '" + level + "'");
  }
  for (std::string_view key : {"port", "driver-port", "log-lines", "rest-threads", "retained-statements",
                               "max-starting-sessions", "max-request-mib", "driver-pool-size"}) {
    if (auto v = config.get_int(key); !v) return v.error();
  }
  for (std::string_view key : {"driver-idle-timeout", "heartbeat-interval", "driver-stop-timeout",
                               "completion-timeout", "session-timeout", "session-state-retain",
                               "gc-interval", "artifact-timeout", "driver-unused-timeout"}) {
    if (auto v = config.get_duration(key); !v) return v.error();
  }
  for (std::string_view key : {"gc-interval", "heartbeat-interval"}) {
    if (config.get_duration(key)->count() == 0) {
      return make_error("bad_config", std::string(key) + " must be more than 0");
    }
  }
  return config;
}

const std::string& ServerConfig::get(std::string_view key) const {
  return values_.find(key)->second;  // every declared key has a value; an undeclared one is a bug
}

Result<int> ServerConfig::get_int(std::string_view key) const {
  const std::string& text = get(key);
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return make_error("bad_config", std::string(key) + ": expected a non-negative integer, got '" + text + "'");
  }
  return value;
}

Result<bool> ServerConfig::get_bool(std::string_view key) const {
  const std::string& text = get(key);
  if (text == "true") return true;
  if (text == "false") return false;
  return make_error("bad_config", std::string(key) + ": expected true or false, got '" + text + "'");
}

Result<std::chrono::milliseconds> ServerConfig::get_duration(std::string_view key) const {
  auto d = session::parse_duration(get(key));
  if (!d) return make_error("bad_config", std::string(key) + ": " + d.error().message);
  return d;
}

std::string help_text() {
  std::ostringstream out;
  out << "usage: hearth-server [--key value | --key=value]...\n\n"
         "Hearth: a Livy-compatible session server for Apache Spark.\n\n"
         "Settings (flags override the --config file, which overrides defaults):\n";
  for (const auto& s : kSettings) {
    out << "  --" << s.key;
    if (!s.default_value.empty()) out << " (default: " << s.default_value << ")";
    out << "\n      " << s.meaning << "\n";
  }
  return out.str();
}

}  // namespace hearth::server
