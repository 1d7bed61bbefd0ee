#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "hearth/clients/submit_param.hpp"

namespace hearth::clients {
namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text;
  EXPECT_TRUE(doc.IsObject()) << text;
  return doc;
}

std::set<std::string> keys_of(const rapidjson::Value& object) {
  std::set<std::string> keys;
  for (const auto& m : object.GetObject()) keys.insert(m.name.GetString());
  return keys;
}

TEST(SubmitParam, ParsesEveryLivyKeyCommentsAndBothSeparators) {
  auto parsed = SubmitParam::parse_properties(
      "# a comment\n"
      "! another comment\n"
      "\n"
      "file = hdfs:///apps/etl.jar\n"
      "proxyUser: alice\n"
      "className=com.example.Etl\n"
      "args=--date, 2024-01-01 ,,x\n"
      "jars=a.jar,b.jar\n"
      "pyFiles=lib.py\n"
      "files=data.csv\n"
      "archives=env.tar.gz\n"
      "driverMemory=2g\n"
      "driverCores=2\n"
      "executorMemory=4g\n"
      "executorCores=3\n"
      "numExecutors=10\n"
      "queue=etl\n"
      "name=nightly\n"
      "kind=pyspark\n"
      "shareLevel=user\n"
      "conf.spark.sql.shuffle.partitions=64\n"
      "spark.executor.memoryOverhead = 1g\r\n");
  ASSERT_TRUE(parsed) << parsed.error().message;
  const SubmitParam& p = *parsed;
  EXPECT_EQ(p.file, "hdfs:///apps/etl.jar");
  EXPECT_EQ(p.proxy_user, "alice");
  EXPECT_EQ(p.class_name, "com.example.Etl");
  EXPECT_EQ(p.args, (std::vector<std::string>{"--date", "2024-01-01", "x"}));
  EXPECT_EQ(p.jars, (std::vector<std::string>{"a.jar", "b.jar"}));
  EXPECT_EQ(p.py_files, std::vector<std::string>{"lib.py"});
  EXPECT_EQ(p.files, std::vector<std::string>{"data.csv"});
  EXPECT_EQ(p.archives, std::vector<std::string>{"env.tar.gz"});
  EXPECT_EQ(p.driver_memory, "2g");
  EXPECT_EQ(p.driver_cores, 2);
  EXPECT_EQ(p.executor_memory, "4g");
  EXPECT_EQ(p.executor_cores, 3);
  EXPECT_EQ(p.num_executors, 10);
  EXPECT_EQ(p.queue, "etl");
  EXPECT_EQ(p.name, "nightly");
  EXPECT_EQ(p.kind, "pyspark");
  EXPECT_EQ(p.share_level, "user");
  EXPECT_EQ(p.conf, (std::map<std::string, std::string>{
                        {"spark.sql.shuffle.partitions", "64"},
                        {"spark.executor.memoryOverhead", "1g"}}));
}

TEST(SubmitParam, ValueMayContainTheOtherSeparator) {
  auto parsed = SubmitParam::parse_properties("file=hdfs://nn:8020/app.jar\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->file, "hdfs://nn:8020/app.jar");
}

TEST(SubmitParam, UnknownKeyIsABadRequestNamingTheLine) {
  auto parsed = SubmitParam::parse_properties("kind=sql\n\nexecutorMemroy=4g\n");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, "bad_request");
  EXPECT_NE(parsed.error().message.find("line 3"), std::string::npos) << parsed.error().message;
  EXPECT_NE(parsed.error().message.find("executorMemroy"), std::string::npos);
}

TEST(SubmitParam, BadNumbersAreRefused) {
  for (const char* text : {"driverCores=two", "numExecutors=", "executorCores=3.5",
                           "numExecutors=99999999999999999999", "driverCores=4 cores"}) {
    auto parsed = SubmitParam::parse_properties(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code, "bad_request");
    EXPECT_NE(parsed.error().message.find("line 1"), std::string::npos) << parsed.error().message;
  }
}

TEST(SubmitParam, LineWithoutSeparatorOrKeyIsRefused) {
  EXPECT_FALSE(SubmitParam::parse_properties("kind pyspark"));
  EXPECT_FALSE(SubmitParam::parse_properties("=value"));
}

TEST(SubmitParam, LoadsAFileAndReportsAMissingOne) {
  auto path = std::filesystem::temp_directory_path() / "hearth-submit-param-test.properties";
  {
    std::ofstream out(path);
    out << "kind=spark\nqueue=adhoc\n";
  }
  auto loaded = SubmitParam::load_properties(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->kind, "spark");
  EXPECT_EQ(loaded->queue, "adhoc");
  auto missing = SubmitParam::load_properties("/nonexistent/hearth.properties");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "bad_request");
}

TEST(SubmitParam, EmptyParamGivesEmptyBodies) {
  SubmitParam p;
  EXPECT_EQ(p.to_session_json(), "{}");
  EXPECT_EQ(p.to_batch_json(), "{}");
}

TEST(SubmitParam, SessionBodyHasSessionFieldsOnly) {
  SubmitParam p;
  p.file = "app.jar";
  p.class_name = "Main";
  p.args = {"a"};
  p.kind = "pyspark";
  p.share_level = "user";
  p.proxy_user = "bob";
  p.jars = {"x.jar"};
  p.driver_cores = 2;
  p.num_executors = 4;
  p.name = "n\"q";
  p.conf["spark.a"] = "1";
  auto doc = parse(p.to_session_json());
  EXPECT_EQ(keys_of(doc), (std::set<std::string>{"kind", "shareLevel", "proxyUser", "jars",
                                                  "driverCores", "numExecutors", "name", "conf"}));
  EXPECT_STREQ(doc["kind"].GetString(), "pyspark");
  EXPECT_STREQ(doc["shareLevel"].GetString(), "user");
  EXPECT_EQ(doc["driverCores"].GetInt64(), 2);
  EXPECT_STREQ(doc["name"].GetString(), "n\"q");
  EXPECT_STREQ(doc["jars"][0].GetString(), "x.jar");
  EXPECT_STREQ(doc["conf"]["spark.a"].GetString(), "1");
}

TEST(SubmitParam, BatchBodyHasBatchFieldsButNoKindOrShareLevel) {
  SubmitParam p;
  p.file = "app.jar";
  p.class_name = "Main";
  p.args = {"a", "b"};
  p.kind = "pyspark";
  p.share_level = "user";
  p.py_files = {"l.py"};
  p.files = {"f"};
  p.archives = {"z.zip"};
  p.driver_memory = "1g";
  p.executor_memory = "2g";
  p.executor_cores = 1;
  p.queue = "q";
  auto doc = parse(p.to_batch_json());
  EXPECT_EQ(keys_of(doc),
            (std::set<std::string>{"file", "className", "args", "pyFiles", "files", "archives",
                                   "driverMemory", "executorMemory", "executorCores", "queue"}));
  EXPECT_STREQ(doc["file"].GetString(), "app.jar");
  EXPECT_STREQ(doc["className"].GetString(), "Main");
  ASSERT_EQ(doc["args"].Size(), 2u);
  EXPECT_STREQ(doc["args"][1].GetString(), "b");
}

}  // namespace
}  // namespace hearth::clients
