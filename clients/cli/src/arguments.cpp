#include "hearth/cli/arguments.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>

namespace hearth::cli {
namespace {

constexpr std::string_view kDescription =
    "hearth: the command-line client of a Hearth server (Apache Spark sessions).\n"
    "Exit codes: 0 ok, 1 a statement or job failed or was cancelled, 2 usage error,\n"
    "3 connection or server error, 130 interrupted.";

std::string trim(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

// --conf values: KEY=VALUE with a non-empty key.
const CLI::Validator kKeyValue(
    [](std::string& value) -> std::string {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return "expected KEY=VALUE, got '" + value + "'";
      return {};
    },
    "KEY=VALUE", "KEY=VALUE");

std::map<std::string, std::string> key_values(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

// A repeatable option that takes one value per occurrence (`--conf a=1 --conf b=2`), so that a
// positional argument after it is not taken as another value.
template <typename T>
CLI::Option* add_repeated(CLI::App& app, const std::string& name, std::vector<T>& values,
                          const std::string& help) {
  return app.add_option(name, values, help)->allow_extra_args(false)->take_all();
}

// The deepest subcommand the user named (its --help is the one to show).
const CLI::App* selected(const CLI::App& app) {
  const CLI::App* current = &app;
  for (;;) {
    auto subs = current->get_subcommands();
    if (subs.empty()) return current;
    current = subs.front();
  }
}

ParseOutcome usage_error(const std::string& message) {
  ParseOutcome outcome;
  outcome.exit_code = kExitUsage;
  outcome.message = "hearth: " + message + "\nRun with --help for more information.\n";
  return outcome;
}

}  // namespace

Environment Environment::from_process() {
  Environment env;
  auto get = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
  env.server = get("HEARTH_SERVER");
  env.user = get("HEARTH_USER");
  if (auto config_home = get("XDG_CONFIG_HOME")) {
    env.default_config_file = std::filesystem::path(*config_home) / "hearth" / "cli.conf";
  } else if (auto home = get("HOME")) {
    env.default_config_file = std::filesystem::path(*home) / ".config" / "hearth" / "cli.conf";
  }
  env.read_file = [](const std::filesystem::path& path) -> std::optional<std::string> {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return text.str();
  };
  return env;
}

Result<ConfigFile> parse_config_file(std::string_view text) {
  ConfigFile config;
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::string content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    auto eq = content.find('=');
    auto where = "line " + std::to_string(number) + ": ";
    if (eq == std::string::npos) {
      return make_error("bad_request", where + "expected `key = value`, got '" + content + "'");
    }
    std::string key = trim(std::string_view(content).substr(0, eq));
    std::string value = trim(std::string_view(content).substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "server") {
      config.server = value;
    } else if (key == "user") {
      config.user = value;
    } else if (key == "timeout") {
      config.timeout = value;
    } else {
      return make_error("bad_request",
                        where + "unknown key '" + key + "' (known: server, user, timeout)");
    }
  }
  return config;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto invalid = [&] {
    return make_error("bad_request", "invalid duration '" + std::string(text) +
                                         "' (expected e.g. 500ms, 90s, 10m, 2h)");
  };
  int64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) return invalid();
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else {
    return invalid();
  }
  // Beyond a year is a mistake, and keeps the multiplication far from overflowing.
  constexpr int64_t kMaxMs = int64_t{366} * 24 * 3'600'000;
  if (number <= 0 || number > kMaxMs / factor) {
    return make_error("bad_request", "duration '" + std::string(text) +
                                         "' must be positive and at most a year");
  }
  return std::chrono::milliseconds(number * factor);
}

clients::SubmitParam merge_submit_params(clients::SubmitParam base,
                                         const clients::SubmitParam& overrides) {
  auto take = [](auto& target, const auto& source) {
    if (source) target = source;
  };
  auto take_list = [](std::vector<std::string>& target, const std::vector<std::string>& source) {
    if (!source.empty()) target = source;
  };
  take(base.file, overrides.file);
  take(base.proxy_user, overrides.proxy_user);
  take(base.class_name, overrides.class_name);
  take_list(base.args, overrides.args);
  take_list(base.jars, overrides.jars);
  take_list(base.py_files, overrides.py_files);
  take_list(base.files, overrides.files);
  take_list(base.archives, overrides.archives);
  take(base.driver_memory, overrides.driver_memory);
  take(base.driver_cores, overrides.driver_cores);
  take(base.executor_memory, overrides.executor_memory);
  take(base.executor_cores, overrides.executor_cores);
  take(base.num_executors, overrides.num_executors);
  take(base.queue, overrides.queue);
  take(base.name, overrides.name);
  for (const auto& [key, value] : overrides.conf) base.conf[key] = value;
  take(base.kind, overrides.kind);
  take(base.share_level, overrides.share_level);
  return base;
}

bool has_uri_scheme(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon < 2) return false;
  if (!std::isalpha(static_cast<unsigned char>(text[0]))) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

namespace {

ParseOutcome parse_once(const std::vector<std::string>& args, const Environment& env) {
  Invocation inv;

  CLI::App app{std::string(kDescription), "hearth"};
  app.require_subcommand(1);
  // Global options may also follow the command: `hearth sessions --json`.
  app.fallthrough();
  std::string server;
  std::string user;
  std::string config_path;
  std::string timeout;
  auto* server_opt = app.add_option(
      "--server", server, "The server's client channel, HOST:PORT (env HEARTH_SERVER; default " +
                              std::string(kDefaultServer) + ")");
  auto* user_opt = app.add_option("--user", user, "The user to act for (env HEARTH_USER)");
  auto* config_opt = app.add_option(
      "--config", config_path,
      "A `key = value` file with server, user, timeout (default ~/.config/hearth/cli.conf)");
  auto* timeout_opt = app.add_option(
      "--timeout", timeout,
      "The longest a request, a session start, a statement or a job may take (90s, 10m, …)");
  app.add_flag("--json", inv.global.json, "Print the server's JSON instead of tables, for scripts");

  app.add_subcommand("sessions", "List the sessions (id, name, kind, state, owner, appId)")
      ->callback([&] { inv.command = Command::kSessions; });
  app.add_subcommand("drivers",
                     "List the drivers (id, state, user, shareLevel, pooled, sessions, appId)")
      ->callback([&] { inv.command = Command::kDrivers; });

  // ---- session create / rm ----
  auto* session = app.add_subcommand("session", "Create or remove a session");
  session->require_subcommand(1);
  auto* create = session->add_subcommand("create", "Create a session and print its id");
  create->callback([&] { inv.command = Command::kSessionCreate; });
  auto& param = inv.session_flags;
  std::string kind, share_level, properties, name, driver_memory, executor_memory, queue, proxy_user;
  int64_t driver_cores = 0, executor_cores = 0, num_executors = 0;
  std::vector<std::string> conf;
  auto* kind_opt = create->add_option("--kind", kind, "The session's kind (default: the server's, shared)")
                       ->check(CLI::IsMember({"pyspark", "spark", "sql", "sparkr", "shared"}));
  auto* conf_opt = add_repeated(*create, "--conf", conf, "Spark configuration KEY=VALUE (repeatable)")
                       ->check(kKeyValue);
  auto* name_opt = create->add_option("--name", name, "A unique name for the session");
  auto* share_opt = create->add_option("--share-level", share_level,
                                       "session (a driver of its own) or user (a shared driver)")
                        ->check(CLI::IsMember({"session", "user"}));
  auto* properties_opt =
      create->add_option("--properties", properties,
                         "A properties file with the request's fields (the flags override it)");
  auto* driver_memory_opt = create->add_option("--driver-memory", driver_memory, "e.g. 2g");
  auto* driver_cores_opt =
      create->add_option("--driver-cores", driver_cores)->check(CLI::PositiveNumber);
  auto* executor_memory_opt = create->add_option("--executor-memory", executor_memory);
  auto* executor_cores_opt =
      create->add_option("--executor-cores", executor_cores)->check(CLI::PositiveNumber);
  auto* num_executors_opt =
      create->add_option("--num-executors", num_executors)->check(CLI::PositiveNumber);
  auto* queue_opt = create->add_option("--queue", queue);
  auto* proxy_user_opt = create->add_option("--proxy-user", proxy_user);
  add_repeated(*create, "--jars", param.jars, "Jars to add (URIs, comma-separated or repeated)")
      ->delimiter(',');
  add_repeated(*create, "--py-files", param.py_files, "Python files to add")->delimiter(',');
  add_repeated(*create, "--files", param.files, "Files to add")->delimiter(',');
  add_repeated(*create, "--archives", param.archives, "Archives to add")->delimiter(',');
  create->add_flag("--wait,!--no-wait", inv.wait,
                   "Wait until the session is idle (default; --no-wait returns at once)");

  auto* remove = session->add_subcommand("rm", "Delete a session (stops its driver)");
  remove->callback([&] { inv.command = Command::kSessionRemove; });
  int64_t session_id = -1;
  remove->add_option("ID", session_id, "The session's id")->required()->check(CLI::NonNegativeNumber);

  // ---- logs ----
  auto* logs = app.add_subcommand("logs", "Print a session's driver log");
  logs->callback([&] { inv.command = Command::kLogs; });
  logs->add_option("ID", session_id, "The session's id")->required()->check(CLI::NonNegativeNumber);
  logs->add_flag("-f,--follow", inv.follow,
                 "Keep printing new lines until the session ends or Ctrl-C");
  logs->add_option("-n,--lines", inv.log_lines, "How many of the last lines to print first")
      ->check(CLI::NonNegativeNumber);

  // ---- exec / sql ----
  std::string code;
  std::string code_file;
  std::vector<CLI::Option*> code_opts;
  std::vector<CLI::Option*> code_file_opts;
  auto add_exec_options = [&](CLI::App* command, bool with_kind) {
    command->add_option("--session", session_id,
                        "Run in this session (else in a new one, deleted afterwards)")
        ->check(CLI::NonNegativeNumber);
    if (with_kind) {
      command->add_option("--kind", kind, "The statement's kind (default pyspark)")
          ->check(CLI::IsMember({"pyspark", "spark", "sql", "sparkr"}));
    }
    code_opts.push_back(command->add_option("CODE", code, "The code to run"));
    code_file_opts.push_back(
        command->add_option("-f,--file", code_file, "Read the code from FILE (- is stdin)"));
  };
  auto* exec = app.add_subcommand("exec", "Run code in a session and print its output");
  exec->callback([&] { inv.command = Command::kExec; });
  add_exec_options(exec, true);
  auto* sql = app.add_subcommand("sql", "Run a SQL query and print its result as a table");
  sql->callback([&] {
    inv.command = Command::kExec;
    kind = "sql";
  });
  add_exec_options(sql, false);

  // ---- jar add ----
  auto* jar = app.add_subcommand("jar", "Add jars to a session");
  jar->require_subcommand(1);
  auto* jar_add = jar->add_subcommand(
      "add", "Add a jar: a local file is uploaded, a URI (hdfs:, file:, https:) added by the driver");
  jar_add->callback([&] { inv.command = Command::kJarAdd; });
  jar_add->add_option("--session", session_id, "The session")->required()->check(CLI::NonNegativeNumber);
  jar_add->add_option("JAR", inv.jar, "A local path or a URI")->required();

  // ---- job start / status / kill ----
  auto* job = app.add_subcommand("job", "Run compiled classes in a session's driver");
  job->require_subcommand(1);
  auto* job_start = job->add_subcommand("start", "Start a job and print its id");
  job_start->callback([&] { inv.command = Command::kJobStart; });
  job_start->add_option("--session", session_id, "The session")->required()->check(CLI::NonNegativeNumber);
  job_start->add_option("--class", inv.job.class_name, "The job's class")->required();
  std::string job_jar;
  auto* job_jar_opt = job_start->add_option(
      "--jar", job_jar, "A jar URI the driver adds first (a local file is uploaded first)");
  std::vector<std::string> job_conf;
  add_repeated(*job_start, "--conf", job_conf, "KEY=VALUE for the job (repeatable)")->check(kKeyValue);
  bool job_wait = false;
  job_start->add_flag("--wait", job_wait, "Wait for the job and print its result");
  job_start->add_option("ARGS", inv.job.args, "The job's arguments (after --)");

  int64_t job_id = -1;
  auto* job_status = job->add_subcommand("status", "Print a job's state, result or error");
  job_status->callback([&] { inv.command = Command::kJobStatus; });
  auto* job_kill = job->add_subcommand("kill", "Ask a job to stop");
  job_kill->callback([&] { inv.command = Command::kJobKill; });
  for (auto* command : {job_status, job_kill}) {
    command->add_option("--session", session_id, "The session")->required()->check(CLI::NonNegativeNumber);
    command->add_option("JOBID", job_id, "The job's id")->required()->check(CLI::NonNegativeNumber);
  }

  if (args.empty()) {
    ParseOutcome outcome;
    outcome.exit_code = kExitUsage;
    outcome.message = app.help();
    return outcome;
  }
  // CLI11's parse(vector) takes the arguments last first.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(std::move(reversed));
  } catch (const CLI::CallForHelp&) {
    ParseOutcome outcome;
    outcome.message = selected(app)->help();
    return outcome;
  } catch (const CLI::CallForAllHelp&) {
    ParseOutcome outcome;
    outcome.message = app.help("", CLI::AppFormatMode::All);
    return outcome;
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  // ---- values that depend on more than one option ----
  if (session_id >= 0) inv.session_id = session_id;
  if (inv.command == Command::kJobStart) {
    inv.wait = job_wait;
    if (*job_jar_opt) inv.job.jar = job_jar;
    inv.job.conf = key_values(job_conf);
  }
  if (inv.command == Command::kJobStatus || inv.command == Command::kJobKill) inv.job_id = job_id;
  if (inv.command == Command::kSessionCreate) {
    if (*kind_opt) param.kind = kind;
    if (*conf_opt) param.conf = key_values(conf);
    if (*name_opt) param.name = name;
    if (*share_opt) param.share_level = share_level;
    if (*properties_opt) inv.properties_file = properties;
    if (*driver_memory_opt) param.driver_memory = driver_memory;
    if (*driver_cores_opt) param.driver_cores = driver_cores;
    if (*executor_memory_opt) param.executor_memory = executor_memory;
    if (*executor_cores_opt) param.executor_cores = executor_cores;
    if (*num_executors_opt) param.num_executors = num_executors;
    if (*queue_opt) param.queue = queue;
    if (*proxy_user_opt) param.proxy_user = proxy_user;
  }
  if (inv.command == Command::kExec) {
    bool has_code = false;
    bool has_file = false;
    for (auto* opt : code_opts) has_code = has_code || opt->count() > 0;
    for (auto* opt : code_file_opts) has_file = has_file || opt->count() > 0;
    if (has_code == has_file) {
      return usage_error(has_code ? "give the code or -f FILE, not both"
                                  : "no code: give CODE or -f FILE");
    }
    if (has_code) inv.code = code;
    if (has_file) inv.code_file = code_file;
    if (!kind.empty()) inv.kind = kind;
  }

  // ---- global options: flags, then the environment, then the config file ----
  ConfigFile config;
  std::optional<std::string> config_text;
  if (*config_opt) {
    config_text = env.read_file ? env.read_file(config_path) : std::nullopt;
    if (!config_text) return usage_error("cannot read the config file " + config_path);
  } else if (env.default_config_file && env.read_file) {
    config_text = env.read_file(*env.default_config_file);
  }
  if (config_text) {
    auto parsed = parse_config_file(*config_text);
    std::string file = *config_opt ? config_path : env.default_config_file->string();
    if (!parsed) return usage_error(file + ": " + parsed.error().message);
    config = std::move(*parsed);
  }
  if (*server_opt) {
    inv.global.server = server;
  } else if (env.server) {
    inv.global.server = *env.server;
  } else if (config.server) {
    inv.global.server = *config.server;
  }
  if (inv.global.server.empty()) return usage_error("the server address is empty");
  if (*user_opt) {
    inv.global.user = user;
  } else if (env.user) {
    inv.global.user = env.user;
  } else if (config.user) {
    inv.global.user = config.user;
  }
  std::optional<std::string> timeout_text;
  if (*timeout_opt) {
    timeout_text = timeout;
  } else if (config.timeout) {
    timeout_text = config.timeout;
  }
  if (timeout_text) {
    auto parsed = parse_duration(*timeout_text);
    if (!parsed) return usage_error("--timeout: " + parsed.error().message);
    inv.global.timeout = *parsed;
  }

  ParseOutcome outcome;
  outcome.invocation = std::move(inv);
  return outcome;
}

}  // namespace

ParseOutcome parse_arguments(const std::vector<std::string>& args, const Environment& env) {
  // `hearth job start … x -- -y`: CLI11 hands a `--` that follows a positional to the parent
  // command, so what follows the first `--` of a job start is taken here as the job's arguments.
  auto mark = std::find(args.begin(), args.end(), "--");
  if (mark != args.end()) {
    auto outcome = parse_once(std::vector<std::string>(args.begin(), mark), env);
    if (outcome.invocation && outcome.invocation->command == Command::kJobStart) {
      auto& job_args = outcome.invocation->job.args;
      job_args.insert(job_args.end(), mark + 1, args.end());
      return outcome;
    }
  }
  return parse_once(args, env);
}

}  // namespace hearth::cli
