// The `hearth` CLI without a server: table rendering and truncation, Livy's SQL output as a
// table, the progress bar, and the command line (each command, the global options' sources, and
// every usage error ending with exit code 2).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "hearth/cli/arguments.hpp"
#include "hearth/cli/render.hpp"

namespace hearth::cli {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---- tables ---------------------------------------------------------------------------------

TEST(CliTable, ColumnsAreAlignedUnderAHeaderWithoutTrailingBlanks) {
  Table table{{"id", "name", "state"},
              {{"0", "etl", "idle"}, {"12", "a-much-longer-name", "busy"}, {"3", "", "dead"}},
              {Align::kRight}};
  EXPECT_EQ(render_table(table, {}),
            "id  name                state\n"
            " 0  etl                 idle\n"
            "12  a-much-longer-name  busy\n"
            " 3                      dead\n");
}

TEST(CliTable, ShortRowsArePaddedAndTheLastColumnHasNoTrailingBlanks) {
  Table table{{"a", "b"}, {{"x"}, {"y", "zz"}, {"1", "2", "extra"}}, {}};
  EXPECT_EQ(render_table(table, {}),
            "a  b\n"
            "x\n"
            "y  zz\n"
            "1  2   extra\n");
}

TEST(CliTable, UnicodeAddsARuleUnderTheHeader) {
  Table table{{"id", "kind"}, {{"0", "pyspark"}}, {}};
  EXPECT_EQ(render_table(table, TableStyle{std::nullopt, true}),
            "id  kind\n"
            "──  ───────\n"
            "0   pyspark\n");
}

TEST(CliTable, WidthCountsCharactersNotBytes) {
  Table table{{"name", "n"}, {{"héllo wörld", "1"}, {"plain", "2"}}, {}};
  auto lines = lines_of(render_table(table, {}));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "héllo wörld  1");
  EXPECT_EQ(lines[2], "plain        2");
  EXPECT_EQ(display_width("héllo wörld"), 11u);
}

TEST(CliTable, ControlCharactersAreEscapedSoThatARowIsOneLine) {
  Table table{{"v"}, {{"two\nlines\tand\x01"}}, {}};
  EXPECT_EQ(render_table(table, {}), "v\ntwo\\nlines\\tand\\x01\n");
}

TEST(CliTable, NothingIsTruncatedWhenPiped) {
  std::string long_value(300, 'x');
  Table table{{"id", "appId"}, {{"0", long_value}}, {}};
  auto lines = lines_of(render_table(table, TableStyle{std::nullopt, false}));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "0   " + long_value);
}

TEST(CliTable, OnATerminalTheWidestColumnIsCutToTheWidthWithAnEllipsis) {
  std::string long_value = "spark-application-" + std::string(100, '7');
  Table table{{"id", "state", "appId"}, {{"0", "idle", long_value}, {"1", "busy", "local-1"}}, {}};
  auto lines = lines_of(render_table(table, TableStyle{40, true}));
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& line : lines) EXPECT_LE(display_width(line), 40u) << line;
  // The narrow columns keep their values; the long one is cut and says so.
  EXPECT_EQ(lines[2].substr(0, 11), "0   idle   ");
  EXPECT_TRUE(lines[2].ends_with("…")) << lines[2];
  EXPECT_EQ(display_width(lines[2]), 40u);
  EXPECT_EQ(lines[3], "1   busy   local-1");

  // ASCII uses "..." as the ellipsis.
  auto ascii = lines_of(render_table(table, TableStyle{40, false}));
  EXPECT_TRUE(ascii[1].ends_with("...")) << ascii[1];
  EXPECT_LE(ascii[1].size(), 40u);
}

TEST(CliTable, ATableThatFitsIsNotTouchedOnATerminal) {
  Table table{{"id", "state"}, {{"0", "idle"}}, {}};
  EXPECT_EQ(render_table(table, TableStyle{80, false}), render_table(table, TableStyle{}));
}

TEST(CliTable, SeveralWideColumnsShareTheWidth) {
  Table table{{"a", "b", "c"}, {{std::string(50, 'a'), std::string(50, 'b'), "c"}}, {}};
  // 60 columns: two gaps of 2, "c", and 27 for each wide column.
  EXPECT_EQ(render_table(table, TableStyle{60, false}),
            "a" + std::string(26, ' ') + "  b" + std::string(26, ' ') + "  c\n" +
                std::string(24, 'a') + "...  " + std::string(24, 'b') + "...  c\n");
}

TEST(CliTable, TruncationKeepsWholeCharacters) {
  EXPECT_EQ(truncate_to_width("ééééé", 4, "…"), "ééé…");
  EXPECT_EQ(truncate_to_width("short", 10, "…"), "short");
  EXPECT_EQ(truncate_to_width("abcdef", 5, "..."), "ab...");
}

// ---- SQL output as a table --------------------------------------------------------------------

TEST(CliSqlTable, LivysSqlOutputBecomesATableWithNumbersRightAligned) {
  auto table = table_from_sql_json(R"json({
    "schema": {"type": "struct", "fields": [
      {"name": "id", "type": "long", "nullable": false, "metadata": {}},
      {"name": "name", "type": "string", "nullable": true, "metadata": {}},
      {"name": "price", "type": "decimal(10,2)", "nullable": true, "metadata": {}}]},
    "data": [[1, "apple", 1.50], [20, null, 12.25], [300, "cherry", null]]})json");
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(render_table(*table, {}),
            " id  name    price\n"
            "  1  apple    1.50\n"
            " 20  null    12.25\n"
            "300  cherry   null\n");
}

TEST(CliSqlTable, ValuesShowAsWrittenAndNestedValuesAsCompactJson) {
  auto table = table_from_sql_json(R"({"schema": {"fields": [
      {"name": "big", "type": "long"},
      {"name": "ratio", "type": "double"},
      {"name": "ok", "type": "boolean"},
      {"name": "tags", "type": {"type": "array", "elementType": "string", "containsNull": true}},
      {"name": "point", "type": {"type": "struct", "fields": []}},
      {"name": "text", "type": "string"}]},
    "data": [[9007199254740993, 1e-7, true, ["a", "b\"c"], {"x": 1, "y": [2.0, null]}, "ünï"]]})");
  ASSERT_TRUE(table.ok()) << table.error().message;
  ASSERT_EQ(table->rows.size(), 1u);
  EXPECT_EQ(table->headers, (std::vector<std::string>{"big", "ratio", "ok", "tags", "point", "text"}));
  EXPECT_EQ(table->rows[0], (std::vector<std::string>{"9007199254740993", "1e-7", "true",
                                                      R"(["a","b\"c"])", R"({"x":1,"y":[2.0,null]})",
                                                      "ünï"}));
  EXPECT_EQ(table->align, (std::vector<Align>{Align::kRight, Align::kRight, Align::kLeft, Align::kLeft,
                                              Align::kLeft, Align::kLeft}));
}

TEST(CliSqlTable, AnEmptyResultIsTheHeaderOnly) {
  auto table = table_from_sql_json(R"({"schema":{"fields":[{"name":"n","type":"integer"}]},"data":[]})");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(render_table(*table, {}), "n\n");
}

TEST(CliSqlTable, OtherJsonIsRefused) {
  for (const char* json : {"not json", "[1, 2]", R"({"a": 1})", R"({"schema": {}, "data": []})",
                           R"({"schema": {"fields": [{"type": "long"}]}, "data": []})",
                           R"({"schema": {"fields": [{"name": "a"}]}})",
                           R"({"schema": {"fields": [{"name": "a"}]}, "data": [1]})",
                           R"({"schema": {"fields": []}, "data": []} trailing)"}) {
    auto table = table_from_sql_json(json);
    EXPECT_FALSE(table.ok()) << json;
    if (!table.ok()) {
      EXPECT_EQ(table.error().code, "bad_request");
    }
  }
}

TEST(CliSqlTable, LivysTableMagicOutputBecomesATable) {
  auto table = table_from_livy_table_json(R"({"headers": [{"name": "k", "type": "STRING_TYPE"},
      {"name": "v", "type": "BIGINT_TYPE"}], "data": [["a", 1], ["bb", 22]]})");
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(render_table(*table, {}),
            "k    v\n"
            "a    1\n"
            "bb  22\n");
  EXPECT_FALSE(table_from_livy_table_json(R"({"data": []})").ok());
}

// ---- progress bar ---------------------------------------------------------------------------

TEST(CliProgress, AsciiBarAtNothingHalfAndDone) {
  EXPECT_EQ(progress_bar(0.0, 10, false), "[----------]   0%");
  EXPECT_EQ(progress_bar(0.5, 10, false), "[#####-----]  50%");
  EXPECT_EQ(progress_bar(1.0, 10, false), "[##########] 100%");
}

TEST(CliProgress, UnicodeBarAtNothingHalfAndDone) {
  EXPECT_EQ(progress_bar(0.0, 4, true), "[    ]   0%");
  EXPECT_EQ(progress_bar(0.5, 4, true), "[██  ]  50%");
  EXPECT_EQ(progress_bar(1.0, 4, true), "[████] 100%");
  // A partial cell shows in eighths: 0.5625 of 4 cells = 2 cells and 2 eighths.
  EXPECT_EQ(progress_bar(0.5625, 4, true), "[██▎ ]  56%");
}

TEST(CliProgress, OutOfRangeValuesAreClampedAndHundredMeansDone) {
  EXPECT_EQ(progress_bar(-0.5, 10, false), progress_bar(0.0, 10, false));
  EXPECT_EQ(progress_bar(7.0, 10, false), progress_bar(1.0, 10, false));
  EXPECT_EQ(progress_bar(std::numeric_limits<double>::quiet_NaN(), 10, false),
            progress_bar(0.0, 10, false));
  EXPECT_EQ(progress_bar(0.999, 10, false), "[#########-]  99%");
  EXPECT_EQ(progress_bar(0.29, 10, false), "[##--------]  29%");
}

// ---- the command line -----------------------------------------------------------------------

// An environment with no variables and the given files.
Environment test_env(std::map<std::string, std::string> files = {},
                     std::optional<std::string> default_config = std::nullopt) {
  Environment env;
  if (default_config) env.default_config_file = *default_config;
  env.read_file = [files](const std::filesystem::path& path) -> std::optional<std::string> {
    auto it = files.find(path.string());
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  return env;
}

ParseOutcome parse(std::vector<std::string> args, const Environment& env = test_env()) {
  return parse_arguments(args, env);
}

Invocation parsed(std::vector<std::string> args, const Environment& env = test_env()) {
  auto outcome = parse(args, env);
  EXPECT_TRUE(outcome.invocation.has_value()) << outcome.message;
  return outcome.invocation.value_or(Invocation{});
}

void expect_usage_error(std::vector<std::string> args, std::string_view fragment = "",
                        const Environment& env = test_env()) {
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  auto outcome = parse(args, env);
  EXPECT_FALSE(outcome.invocation.has_value()) << joined;
  EXPECT_EQ(outcome.exit_code, kExitUsage) << joined;
  EXPECT_NE(outcome.message.find(fragment), std::string::npos) << joined << "\n" << outcome.message;
}

TEST(CliArguments, SessionsAndDriversWithDefaults) {
  auto inv = parsed({"sessions"});
  EXPECT_EQ(inv.command, Command::kSessions);
  EXPECT_EQ(inv.global.server, "127.0.0.1:8999");
  EXPECT_FALSE(inv.global.user.has_value());
  EXPECT_FALSE(inv.global.json);
  EXPECT_FALSE(inv.global.timeout.has_value());
  EXPECT_EQ(parsed({"drivers"}).command, Command::kDrivers);
}

TEST(CliArguments, GlobalOptionsGoBeforeOrAfterTheCommand) {
  auto before = parsed({"--server", "h:1", "--user", "ann", "--json", "--timeout", "90s", "sessions"});
  EXPECT_EQ(before.global.server, "h:1");
  EXPECT_EQ(before.global.user, "ann");
  EXPECT_TRUE(before.global.json);
  EXPECT_EQ(before.global.timeout, std::chrono::seconds(90));
  auto after = parsed({"drivers", "--json", "--server", "h:2"});
  EXPECT_TRUE(after.global.json);
  EXPECT_EQ(after.global.server, "h:2");
}

TEST(CliArguments, FlagsWinOverEnvironmentWhichWinsOverTheConfigFile) {
  auto env = test_env({{"/home/u/.config/hearth/cli.conf",
                        "# mine\nserver = conf-host:1\nuser = conf-user\n\ntimeout = 2m\n"}},
                      "/home/u/.config/hearth/cli.conf");
  auto from_file = parsed({"sessions"}, env);
  EXPECT_EQ(from_file.global.server, "conf-host:1");
  EXPECT_EQ(from_file.global.user, "conf-user");
  EXPECT_EQ(from_file.global.timeout, std::chrono::minutes(2));

  env.server = "env-host:2";
  env.user = "env-user";
  auto from_env = parsed({"sessions"}, env);
  EXPECT_EQ(from_env.global.server, "env-host:2");
  EXPECT_EQ(from_env.global.user, "env-user");

  auto from_flags = parsed({"--server", "flag-host:3", "--user", "flag-user", "sessions"}, env);
  EXPECT_EQ(from_flags.global.server, "flag-host:3");
  EXPECT_EQ(from_flags.global.user, "flag-user");
}

TEST(CliArguments, AnExplicitConfigFileReplacesTheDefaultOne) {
  auto env = test_env({{"/etc/h.conf", "server=explicit:9"}, {"/default.conf", "server=default:1"}},
                      "/default.conf");
  EXPECT_EQ(parsed({"--config", "/etc/h.conf", "sessions"}, env).global.server, "explicit:9");
  // A missing default file is no error; a missing explicit one is.
  EXPECT_EQ(parsed({"sessions"}, test_env({}, "/nowhere.conf")).global.server, "127.0.0.1:8999");
  expect_usage_error({"--config", "/missing.conf", "sessions"}, "/missing.conf", env);
}

TEST(CliArguments, ABadConfigFileIsAUsageErrorNamingTheLine) {
  auto env = test_env({{"/c.conf", "server = a:1\nport = 3\n"}}, "/c.conf");
  expect_usage_error({"sessions"}, "line 2", env);
  auto no_equals = test_env({{"/c.conf", "server a:1\n"}}, "/c.conf");
  expect_usage_error({"sessions"}, "line 1", no_equals);
  auto bad_timeout = test_env({{"/c.conf", "timeout = soon\n"}}, "/c.conf");
  expect_usage_error({"sessions"}, "soon", bad_timeout);
}

TEST(CliArguments, ConfigFileValuesMayBeQuoted) {
  auto config = parse_config_file("server = \"h:1\"\n  user='bo b'  \n");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->server, "h:1");
  EXPECT_EQ(config->user, "bo b");
}

TEST(CliArguments, SessionCreateTakesTheRequestFields) {
  auto inv = parsed({"session", "create", "--kind", "sql", "--conf", "spark.a=1", "--conf",
                     "spark.b=x=y", "--name", "etl", "--share-level", "user", "--properties",
                     "/p.properties", "--driver-memory", "2g", "--executor-cores", "3",
                     "--jars", "hdfs:/a.jar,hdfs:/b.jar", "--proxy-user", "ann"});
  EXPECT_EQ(inv.command, Command::kSessionCreate);
  const auto& p = inv.session_flags;
  EXPECT_EQ(p.kind, "sql");
  EXPECT_EQ(p.conf, (std::map<std::string, std::string>{{"spark.a", "1"}, {"spark.b", "x=y"}}));
  EXPECT_EQ(p.name, "etl");
  EXPECT_EQ(p.share_level, "user");
  EXPECT_EQ(p.driver_memory, "2g");
  EXPECT_EQ(p.executor_cores, 3);
  EXPECT_EQ(p.jars, (std::vector<std::string>{"hdfs:/a.jar", "hdfs:/b.jar"}));
  EXPECT_EQ(p.proxy_user, "ann");
  EXPECT_FALSE(p.executor_memory.has_value());
  EXPECT_EQ(inv.properties_file, std::filesystem::path("/p.properties"));
  EXPECT_TRUE(inv.wait);

  auto bare = parsed({"session", "create"});
  EXPECT_FALSE(bare.session_flags.kind.has_value());
  EXPECT_TRUE(bare.session_flags.conf.empty());
  EXPECT_FALSE(bare.properties_file.has_value());
}

TEST(CliArguments, SessionCreateWaitsUnlessToldNotTo) {
  EXPECT_TRUE(parsed({"session", "create", "--wait"}).wait);
  EXPECT_FALSE(parsed({"session", "create", "--no-wait"}).wait);
}

TEST(CliArguments, SessionCreateUsageErrors) {
  expect_usage_error({"session", "create", "--kind", "cobol"}, "cobol");
  expect_usage_error({"session", "create", "--share-level", "everyone"}, "everyone");
  expect_usage_error({"session", "create", "--conf", "novalue"}, "KEY=VALUE");
  expect_usage_error({"session", "create", "--conf", "=x"}, "KEY=VALUE");
  expect_usage_error({"session", "create", "--driver-cores", "many"});
  expect_usage_error({"session", "create", "--num-executors", "0"});
  expect_usage_error({"session"}, "subcommand");
  expect_usage_error({"session", "destroy"});
}

TEST(CliArguments, SessionRemoveAndLogs) {
  auto rm = parsed({"session", "rm", "7"});
  EXPECT_EQ(rm.command, Command::kSessionRemove);
  EXPECT_EQ(rm.session_id, 7);
  expect_usage_error({"session", "rm"}, "ID");
  expect_usage_error({"session", "rm", "seven"});
  expect_usage_error({"session", "rm", "-1"});

  auto logs = parsed({"logs", "3"});
  EXPECT_EQ(logs.command, Command::kLogs);
  EXPECT_EQ(logs.session_id, 3);
  EXPECT_FALSE(logs.follow);
  EXPECT_EQ(logs.log_lines, 100);
  auto follow = parsed({"logs", "-f", "3", "-n", "5"});
  EXPECT_TRUE(follow.follow);
  EXPECT_EQ(follow.log_lines, 5);
  expect_usage_error({"logs"}, "ID");
}

TEST(CliArguments, ExecTakesCodeOrAFile) {
  auto code = parsed({"exec", "print(1)"});
  EXPECT_EQ(code.command, Command::kExec);
  EXPECT_EQ(code.code, "print(1)");
  EXPECT_FALSE(code.session_id.has_value());
  EXPECT_FALSE(code.kind.has_value());

  auto file = parsed({"exec", "--session", "4", "--kind", "spark", "-f", "job.scala"});
  EXPECT_EQ(file.code_file, std::filesystem::path("job.scala"));
  EXPECT_FALSE(file.code.has_value());
  EXPECT_EQ(file.session_id, 4);
  EXPECT_EQ(file.kind, "spark");

  // Code that starts with a dash, after --.
  EXPECT_EQ(parsed({"exec", "--", "-1 + 2"}).code, "-1 + 2");

  expect_usage_error({"exec"}, "no code");
  expect_usage_error({"exec", "1", "-f", "x.py"}, "not both");
  expect_usage_error({"exec", "--kind", "shared", "1"}, "shared");
  expect_usage_error({"exec", "--session", "x", "1"});
}

TEST(CliArguments, SqlIsExecWithKindSql) {
  auto inv = parsed({"sql", "--session", "2", "select 1"});
  EXPECT_EQ(inv.command, Command::kExec);
  EXPECT_EQ(inv.kind, "sql");
  EXPECT_EQ(inv.code, "select 1");
  EXPECT_EQ(inv.session_id, 2);
  expect_usage_error({"sql", "--kind", "pyspark", "select 1"}, "--kind");
  expect_usage_error({"sql"}, "no code");
}

TEST(CliArguments, JarAdd) {
  auto inv = parsed({"jar", "add", "--session", "1", "lib/x.jar"});
  EXPECT_EQ(inv.command, Command::kJarAdd);
  EXPECT_EQ(inv.session_id, 1);
  EXPECT_EQ(inv.jar, "lib/x.jar");
  expect_usage_error({"jar", "add", "x.jar"}, "--session");
  expect_usage_error({"jar", "add", "--session", "1"}, "JAR");
  EXPECT_TRUE(has_uri_scheme("hdfs:/a/b.jar"));
  EXPECT_TRUE(has_uri_scheme("file:///tmp/b.jar"));
  EXPECT_TRUE(has_uri_scheme("https://repo/x.jar"));
  EXPECT_FALSE(has_uri_scheme("/tmp/x.jar"));
  EXPECT_FALSE(has_uri_scheme("lib/x.jar"));
  EXPECT_FALSE(has_uri_scheme("c:x.jar"));
  EXPECT_FALSE(has_uri_scheme("./a:b.jar"));
}

TEST(CliArguments, JobStartTakesItsArgumentsAfterDoubleDash) {
  auto inv = parsed({"job", "start", "--session", "1", "--class", "demo.Count", "--jar", "hdfs:/j.jar",
                     "--conf", "label=x", "--conf", "n=2", "first", "--", "-v", "--deep", "last"});
  EXPECT_EQ(inv.command, Command::kJobStart);
  EXPECT_EQ(inv.session_id, 1);
  EXPECT_EQ(inv.job.class_name, "demo.Count");
  EXPECT_EQ(inv.job.jar, "hdfs:/j.jar");
  EXPECT_EQ(inv.job.conf, (std::map<std::string, std::string>{{"label", "x"}, {"n", "2"}}));
  EXPECT_EQ(inv.job.args, (std::vector<std::string>{"first", "-v", "--deep", "last"}));
  EXPECT_FALSE(inv.wait);

  auto plain = parsed({"job", "start", "--session", "1", "--class", "C", "--wait", "--", "-x"});
  EXPECT_TRUE(plain.wait);
  EXPECT_FALSE(plain.job.jar.has_value());
  EXPECT_EQ(plain.job.args, (std::vector<std::string>{"-x"}));

  expect_usage_error({"job", "start", "--class", "C"}, "--session");
  expect_usage_error({"job", "start", "--session", "1"}, "--class");
  expect_usage_error({"job", "start", "--session", "1", "--class", "C", "--conf", "x"}, "KEY=VALUE");
  expect_usage_error({"job", "start", "--session", "1", "--", "x"}, "--class");
}

TEST(CliArguments, JobStatusAndKill) {
  auto status = parsed({"job", "status", "--session", "2", "5"});
  EXPECT_EQ(status.command, Command::kJobStatus);
  EXPECT_EQ(status.session_id, 2);
  EXPECT_EQ(status.job_id, 5);
  auto kill = parsed({"job", "kill", "--session", "2", "6"});
  EXPECT_EQ(kill.command, Command::kJobKill);
  EXPECT_EQ(kill.job_id, 6);
  expect_usage_error({"job", "status", "5"}, "--session");
  expect_usage_error({"job", "kill", "--session", "2"}, "JOBID");
  expect_usage_error({"job"}, "subcommand");
}

TEST(CliArguments, GeneralUsageErrorsEndWithExitCodeTwo) {
  expect_usage_error({}, "Usage");
  expect_usage_error({"frobnicate"});
  expect_usage_error({"sessions", "--bogus"}, "--bogus");
  expect_usage_error({"sessions", "extra"});
  expect_usage_error({"--timeout", "soon", "sessions"}, "soon");
  expect_usage_error({"--timeout", "0s", "sessions"}, "positive");
  expect_usage_error({"--server", "", "sessions"}, "empty");
}

TEST(CliArguments, HelpIsPrintedWithExitCodeZero) {
  auto top = parse({"--help"});
  EXPECT_FALSE(top.invocation.has_value());
  EXPECT_EQ(top.exit_code, kExitOk);
  EXPECT_NE(top.message.find("sessions"), std::string::npos);
  EXPECT_NE(top.message.find("Exit codes"), std::string::npos);
  auto exec = parse({"exec", "--help"});
  EXPECT_EQ(exec.exit_code, kExitOk);
  EXPECT_NE(exec.message.find("--file"), std::string::npos) << exec.message;
  auto job_start = parse({"job", "start", "--help"});
  EXPECT_NE(job_start.message.find("--class"), std::string::npos) << job_start.message;
}

TEST(CliArguments, Durations) {
  EXPECT_EQ(*parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(*parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(*parse_duration("45"), std::chrono::seconds(45));
  EXPECT_EQ(*parse_duration("10m"), std::chrono::minutes(10));
  EXPECT_EQ(*parse_duration("2h"), std::chrono::hours(2));
  for (const char* bad : {"", "s", "10x", "1.5s", "-3s", "0", "99999999h", " 5s"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
}

TEST(CliArguments, FlagsOverrideThePropertiesFile) {
  clients::SubmitParam file;
  file.kind = "pyspark";
  file.driver_memory = "1g";
  file.jars = {"hdfs:/a.jar"};
  file.conf = {{"spark.a", "file"}, {"spark.b", "file"}};
  clients::SubmitParam flags;
  flags.driver_memory = "4g";
  flags.conf = {{"spark.b", "flag"}};
  auto merged = merge_submit_params(file, flags);
  EXPECT_EQ(merged.kind, "pyspark");
  EXPECT_EQ(merged.driver_memory, "4g");
  EXPECT_EQ(merged.jars, (std::vector<std::string>{"hdfs:/a.jar"}));
  EXPECT_EQ(merged.conf, (std::map<std::string, std::string>{{"spark.a", "file"}, {"spark.b", "flag"}}));
}

}  // namespace
}  // namespace hearth::cli
