#pragma once

// The `hearth` command line: what each command takes, the global options, and where their
// values come from (flags, then environment, then the config file, then defaults). Parsing does
// no I/O of its own: the environment and the config file reader are handed in.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/clients/client.hpp"
#include "hearth/clients/submit_param.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::cli {

// Exit codes of the CLI (README and `hearth --help` say the same).
inline constexpr int kExitOk = 0;
inline constexpr int kExitStatementFailed = 1;  // a statement / job error, or it was cancelled
inline constexpr int kExitUsage = 2;            // bad arguments, unreadable input files
inline constexpr int kExitServer = 3;           // cannot connect, the server refused or failed
inline constexpr int kExitInterrupted = 130;    // Ctrl-C while a statement or job ran

inline constexpr std::string_view kDefaultServer = "127.0.0.1:8999";

enum class Command {
  kSessions,       // hearth sessions
  kSessionCreate,  // hearth session create
  kSessionRemove,  // hearth session rm ID
  kLogs,           // hearth logs ID [-f]
  kExec,           // hearth exec / hearth sql
  kJarAdd,         // hearth jar add --session ID PATH|URI
  kJobStart,       // hearth job start
  kJobStatus,      // hearth job status
  kJobKill,        // hearth job kill
  kDrivers,        // hearth drivers
};

struct GlobalOptions {
  std::string server = std::string(kDefaultServer);
  std::optional<std::string> user;
  bool json = false;  // print the server's JSON instead of tables and text
  // --timeout: the longest one request, session start, statement or job may take.
  std::optional<std::chrono::milliseconds> timeout;
};

// One parsed command line. Only the fields of `command` are meaningful.
struct Invocation {
  GlobalOptions global;
  Command command = Command::kSessions;

  std::optional<int64_t> session_id;  // rm, logs, exec/sql (--session), jar, job

  // session create: --properties is read when the command runs; the flags override its values.
  std::optional<std::filesystem::path> properties_file;
  clients::SubmitParam session_flags;
  bool wait = true;

  bool follow = false;  // logs -f
  int64_t log_lines = 100;

  // exec / sql: the code itself, or the file to read it from ("-" is stdin).
  std::optional<std::string> kind;
  std::optional<std::string> code;
  std::optional<std::filesystem::path> code_file;

  std::string jar;  // jar add: a local path or a URI

  clients::JobSpec job;  // job start
  int64_t job_id = 0;    // job status / kill
};

// What parse_arguments decided: a command to run, or text to print and an exit code.
struct ParseOutcome {
  std::optional<Invocation> invocation;
  int exit_code = kExitOk;  // without invocation: 0 after --help, kExitUsage for an error
  std::string message;      // help (for stdout) or the error (for stderr)
};

// The process environment as far as the CLI reads it.
struct Environment {
  std::optional<std::string> server;  // HEARTH_SERVER
  std::optional<std::string> user;    // HEARTH_USER
  // Where the default config file lives: $XDG_CONFIG_HOME/hearth/cli.conf, else
  // $HOME/.config/hearth/cli.conf; unset when neither variable is.
  std::optional<std::filesystem::path> default_config_file;
  // Reads a whole file; nullopt when it does not exist or cannot be read.
  std::function<std::optional<std::string>(const std::filesystem::path&)> read_file;

  static Environment from_process();
};

// Parses argv[1..] (`args`). Never throws for bad input; never exits.
ParseOutcome parse_arguments(const std::vector<std::string>& args, const Environment& env);

// The config file: `key = value` lines (keys `server`, `user`, `timeout`), `#` comments and blank
// lines. Error "bad_request" naming the line for anything else.
struct ConfigFile {
  std::optional<std::string> server;
  std::optional<std::string> user;
  std::optional<std::string> timeout;
};
Result<ConfigFile> parse_config_file(std::string_view text);

// A duration: "500ms", "90s", "10m", "2h", or a plain number of seconds. Error "bad_request".
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// `base` (from --properties) with every field that `overrides` (the flags) sets replacing it;
// conf is merged key by key, the flags winning.
clients::SubmitParam merge_submit_params(clients::SubmitParam base,
                                         const clients::SubmitParam& overrides);

// True for "hdfs:/…", "file:/…", "https://…" (a scheme of two or more characters and a colon),
// false for a local path.
bool has_uri_scheme(std::string_view text);

}  // namespace hearth::cli
