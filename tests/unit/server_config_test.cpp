#include <gtest/gtest.h>

#include "hearth/server/config.hpp"
#include "hearth/session/duration.hpp"
#include "hearth/session/spark_submit.hpp"

namespace hearth::server {
namespace {

using session::parse_duration;

TEST(ParseDuration, UnitsAndBareMilliseconds) {
  EXPECT_EQ(parse_duration("90s")->count(), 90'000);
  EXPECT_EQ(parse_duration("10m")->count(), 600'000);
  EXPECT_EQ(parse_duration("1h")->count(), 3'600'000);
  EXPECT_EQ(parse_duration("500ms")->count(), 500);
  EXPECT_EQ(parse_duration("250")->count(), 250);
  for (const char* bad : {"", "s", "10 m", "-5s", "10x", "1.5s"}) {
    auto d = parse_duration(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.error().code, "bad_config");
  }
}

TEST(ServerConfig, DefaultsFlagsAndErrors) {
  auto defaults = ServerConfig::parse({});
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->get("port"), "8998");
  EXPECT_EQ(defaults->get("host"), "127.0.0.1");
  EXPECT_EQ(defaults->get("master"), "local[*]");

  auto flags = ServerConfig::parse({"--port", "0", "--master=local[2]"});
  ASSERT_TRUE(flags);
  EXPECT_EQ(*flags->get_int("port"), 0);
  EXPECT_EQ(flags->get("master"), "local[2]");

  EXPECT_FALSE(ServerConfig::parse({"--no-such-flag", "1"}));
  EXPECT_FALSE(ServerConfig::parse({"--port"}));
  EXPECT_FALSE(ServerConfig::parse({"--port", "eighty"}));
  EXPECT_FALSE(ServerConfig::parse({"--heartbeat-interval", "soon"}));
  EXPECT_FALSE(ServerConfig::parse({"positional"}));
  EXPECT_FALSE(ServerConfig::parse({"--config", "/nonexistent/hearth.conf"}));
  auto help = ServerConfig::parse({"--help"});
  ASSERT_TRUE(help);
  EXPECT_TRUE(help->help());
  EXPECT_NE(help_text().find("--driver-idle-timeout"), std::string::npos);
}

TEST(ServerConfig, ConfigFileIsOverriddenByFlags) {
  std::string path = testing::TempDir() + "/hearth-config-test.conf";
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("# comment\nport = 9100\nmaster = local[3]\n", f);
    fclose(f);
  }
  auto config = ServerConfig::parse({"--config", path, "--master", "local[1]"});
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->get("port"), "9100");
  EXPECT_EQ(config->get("master"), "local[1]");
  {
    FILE* f = fopen(path.c_str(), "w");
    fputs("colour = blue\n", f);
    fclose(f);
  }
  auto bad = ServerConfig::parse({"--config", path});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("colour"), std::string::npos);
}

}  // namespace
}  // namespace hearth::server

namespace hearth::session {
namespace {

TEST(SparkSubmitCommand, MapsRequestFieldsAndKeepsTheSecretOffTheCommandLine) {
  LaunchSettings settings;
  settings.spark_home = "/opt/spark";
  settings.agent_jar = "/opt/hearth/hearth-driver.jar";
  settings.python = "/usr/bin/python3";
  SessionRequest request;
  request.driver_memory = "2g";
  request.executor_cores = 3;
  request.jars = {"a.jar", "b.jar"};
  request.conf = {{"spark.jars", "c.jar"}, {"spark.driver.memory", "1g"}};
  DriverLaunch launch{"my-app", "driver-1", "tcp://127.0.0.1:5555", "/var/hearth/secrets/driver-1"};
  auto argv = spark_submit_command(settings, request, launch);

  auto has_pair = [&](const std::string& a, const std::string& b) {
    for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == a && argv[i + 1] == b) return true;
    }
    return false;
  };
  EXPECT_EQ(argv.front(), "/opt/spark/bin/spark-submit");
  EXPECT_TRUE(has_pair("--master", "local[*]"));
  EXPECT_TRUE(has_pair("--name", "my-app"));
  EXPECT_TRUE(has_pair("--class", "io.hearth.driver.HearthDriver"));
  EXPECT_TRUE(has_pair("--conf", "spark.driver.memory=2g"));  // the named field wins over conf
  EXPECT_TRUE(has_pair("--conf", "spark.executor.cores=3"));
  EXPECT_TRUE(has_pair("--conf", "spark.jars=a.jar,b.jar,c.jar"));
  EXPECT_TRUE(has_pair("--conf", "spark.pyspark.python=/usr/bin/python3"));
  EXPECT_TRUE(has_pair("--server", "tcp://127.0.0.1:5555"));
  EXPECT_TRUE(has_pair("--driver-id", "driver-1"));
  EXPECT_TRUE(has_pair("--secret-file", "/var/hearth/secrets/driver-1"));
  // The agent's own arguments come after the jar, so spark-submit hands them to the agent.
  auto jar = std::find(argv.begin(), argv.end(), settings.agent_jar);
  auto server = std::find(argv.begin(), argv.end(), "--server");
  ASSERT_NE(jar, argv.end());
  EXPECT_LT(jar, server);
}

}  // namespace
}  // namespace hearth::session
