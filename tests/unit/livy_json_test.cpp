#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>
#include <string>

#include "hearth/server/livy_json.hpp"

namespace hearth::server {
namespace {

std::set<std::string> keys_of(const rapidjson::Value& object) {
  std::set<std::string> keys;
  for (const auto& m : object.GetObject()) keys.insert(m.name.GetString());
  return keys;
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text;
  return doc;
}

TEST(LivyJson, SessionHasExactlyLivysKeysWithNullsAndZeroDefaults) {
  session::SessionRecord record;
  record.id = 3;
  record.state = session::SessionState::kIdle;
  record.request.kind = "pyspark";
  auto doc = parse(render_session(record, {"line one", "line two"}));
  EXPECT_EQ(keys_of(doc), (std::set<std::string>{
                              "id", "name", "appId", "owner", "proxyUser", "state", "kind", "appInfo",
                              "log", "ttl", "idleTimeout", "driverMemory", "driverCores",
                              "executorMemory", "executorCores", "conf", "archives", "files",
                              "heartbeatTimeoutInSecond", "jars", "numExecutors", "pyFiles", "queue"}));
  EXPECT_EQ(keys_of(doc["appInfo"]),
            (std::set<std::string>{"driverLogUrl", "sparkUiUrl", "executorLogUrls"}));
  EXPECT_EQ(doc["id"].GetInt(), 3);
  EXPECT_STREQ(doc["state"].GetString(), "idle");
  EXPECT_TRUE(doc["name"].IsNull());
  EXPECT_TRUE(doc["appId"].IsNull());
  EXPECT_TRUE(doc["proxyUser"].IsNull());
  EXPECT_EQ(doc["driverCores"].GetInt(), 0);
  EXPECT_EQ(doc["numExecutors"].GetInt(), 0);
  EXPECT_TRUE(doc["conf"].IsObject());
  EXPECT_EQ(doc["log"].Size(), 2u);
}

TEST(LivyJson, StatementHasExactlyLivysKeysAndEmbedsOutput) {
  session::StatementRecord s;
  s.id = 7;
  s.code = "1+1";
  s.state = session::StatementState::kAvailable;
  s.output_json = R"({"status":"ok","execution_count":7,"data":{"text/plain":"2"}})";
  s.progress = 1.0;
  s.started_ms = 10;
  s.completed_ms = 20;
  auto doc = parse(render_statement(s));
  EXPECT_EQ(keys_of(doc), (std::set<std::string>{"id", "code", "state", "output", "progress",
                                                 "started", "completed"}));
  EXPECT_STREQ(doc["output"]["data"]["text/plain"].GetString(), "2");
  EXPECT_DOUBLE_EQ(doc["progress"].GetDouble(), 1.0);

  s.output_json.reset();
  s.state = session::StatementState::kWaiting;
  auto waiting = parse(render_statement(s));
  EXPECT_TRUE(waiting["output"].IsNull());
  EXPECT_STREQ(waiting["state"].GetString(), "waiting");
}

TEST(LivyJson, ListsLogsStatesAndMessages) {
  auto list = parse(render_session_list(0, 5, {"{\"id\":1}"}));
  EXPECT_EQ(keys_of(list), (std::set<std::string>{"from", "total", "sessions"}));
  auto statements = parse(render_statement_list(1, {"{\"id\":0}"}));
  EXPECT_EQ(keys_of(statements), (std::set<std::string>{"total_statements", "statements"}));
  EXPECT_EQ(keys_of(parse(render_log(1, 0, 0, {}))), (std::set<std::string>{"id", "from", "total", "log"}));
  EXPECT_EQ(keys_of(parse(render_state(1, "idle"))), (std::set<std::string>{"id", "state"}));
  EXPECT_EQ(keys_of(parse(render_version("0.9.0"))),
            (std::set<std::string>{"version", "user", "revision", "branch", "date", "url"}));
  EXPECT_STREQ(parse(render_message("Session '1' not found."))["msg"].GetString(),
               "Session '1' not found.");
}

TEST(LivyJson, CreateSessionParsesEveryLivyField) {
  auto request = parse_create_session(R"({
    "kind": "scala", "proxyUser": "alice", "jars": ["a.jar"], "pyFiles": ["b.py"], "files": ["c.txt"],
    "archives": ["d.zip"], "driverMemory": "1g", "driverCores": 2, "executorMemory": "2g",
    "executorCores": 3, "numExecutors": 4, "queue": "q", "name": "nightly", "ttl": "1h",
    "idleTimeout": "10m", "heartbeatTimeoutInSecond": 60,
    "conf": {"spark.a": "x", "spark.b": true, "spark.c": 5}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->kind, "spark");
  EXPECT_EQ(request->proxy_user, "alice");
  EXPECT_EQ(request->jars, std::vector<std::string>{"a.jar"});
  EXPECT_EQ(request->driver_cores, 2);
  EXPECT_EQ(request->num_executors, 4);
  EXPECT_EQ(request->heartbeat_timeout_s, 60);
  EXPECT_EQ(request->conf.at("spark.b"), "true");
  EXPECT_EQ(request->conf.at("spark.c"), "5");
  EXPECT_EQ(parse_create_session("{}")->kind, "shared");
}

TEST(LivyJson, CreateRequestsRejectBadInputAsBadRequest) {
  for (const char* body : {"", "nope", "[]", R"({"kind":"cobol"})", R"({"unknown":1})",
                           R"({"driverCores":1.5})", R"({"jars":[1]})", R"({"conf":[]})",
                           R"({"name":"42"})"}) {
    auto r = parse_create_session(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, "bad_request") << body;
  }
  for (const char* body : {"{}", R"({"code":1})", R"({"code":"1","kind":"cobol"})",
                           R"({"code":"1","extra":true})", "{"}) {
    auto r = parse_create_statement(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, "bad_request") << body;
  }
  auto ok = parse_create_statement(R"({"code":"select 1","kind":"sql"})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->kind, "sql");
  EXPECT_FALSE(parse_create_statement(R"({"code":"1"})")->kind.has_value());
}

TEST(HearthJson, ShareLevelIsParsedAndChecked) {
  EXPECT_EQ(parse_create_session(R"({"shareLevel":"user"})")->share_level, "user");
  EXPECT_EQ(parse_create_session(R"({"shareLevel":"session"})")->share_level, "session");
  EXPECT_FALSE(parse_create_session("{}")->share_level.has_value());
  for (const char* body : {R"({"shareLevel":"global"})", R"({"shareLevel":1})"}) {
    auto r = parse_create_session(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, "bad_request");
  }
}

TEST(HearthJson, JobRequestsAndJobs) {
  auto job = parse_start_job(
      R"({"className":"demo.Count","jar":"file:/tmp/a.jar","args":["1"],"conf":{"n":5,"b":true}})");
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job->class_name, "demo.Count");
  EXPECT_EQ(job->jar, "file:/tmp/a.jar");
  EXPECT_EQ(job->args, std::vector<std::string>{"1"});
  EXPECT_EQ(job->conf.at("n"), "5");
  EXPECT_EQ(job->conf.at("b"), "true");
  for (const char* body : {"{}", R"({"className":""})", R"({"className":1})",
                           R"({"className":"a","args":"x"})", R"({"className":"a","other":1})"}) {
    auto r = parse_start_job(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, "bad_request") << body;
  }
  session::JobRecord record;
  record.session_id = 3;
  record.id = 2;
  record.class_name = "demo.Count";
  record.state = session::JobState::kSucceeded;
  record.result_json = R"({"count":10})";
  auto doc = parse(render_job(record));
  EXPECT_EQ(keys_of(doc), (std::set<std::string>{"id", "sessionId", "className", "jar", "args", "conf",
                                                 "state", "progress", "created", "started",
                                                 "completed", "result", "error", "traceback"}));
  EXPECT_STREQ(doc["state"].GetString(), "succeeded");
  EXPECT_EQ(doc["result"]["count"].GetInt(), 10);
  EXPECT_TRUE(doc["error"].IsNull());
}

TEST(HearthJson, DriverView) {
  session::DriverView view;
  view.record.id = "d1";
  view.record.share_level = "user";
  view.record.user = "alice";
  view.state = "busy";
  view.sessions = {1, 4};
  view.busy_sessions = 1;
  view.running_jobs = 3;
  auto doc = parse(render_driver(view));
  EXPECT_EQ(keys_of(doc), (std::set<std::string>{"id", "state", "user", "shareLevel", "pooled", "profile",
                                                 "sessions", "load", "appId", "sparkUiUrl", "pid",
                                                 "created", "lastUsed"}));
  EXPECT_EQ(doc["sessions"].Size(), 2u);
  EXPECT_EQ(doc["load"]["sessions"].GetInt(), 2);
  EXPECT_EQ(doc["load"]["runningJobs"].GetInt(), 3);
  auto list = parse(render_driver_list({render_driver(view)}));
  EXPECT_EQ(list["total"].GetInt(), 1);
  EXPECT_STREQ(list["drivers"][0]["id"].GetString(), "d1");
}

}  // namespace
}  // namespace hearth::server
