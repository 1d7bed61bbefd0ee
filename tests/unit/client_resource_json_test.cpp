// The client library's reading of REST JSON (clients/src/resource_json.hpp) and its error table
// (clients/src/reply_errors.hpp), on the shapes docs/rest-api.md, docs/jobs.md and
// docs/shared-drivers.md show.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "reply_errors.hpp"
#include "resource_json.hpp"

namespace hearth::clients::detail {
namespace {

TEST(ClientResourceJson, ReadsLivysSessionJson) {
  const std::string json =
      R"({"id":0,"name":null,"appId":"local-1763770000000","owner":null,"proxyUser":"alice",)"
      R"("state":"idle","kind":"pyspark","appInfo":{"driverLogUrl":null,"sparkUiUrl":"http://x"},)"
      R"("log":["a","b"],"ttl":null,"driverCores":0,"conf":{},"jars":[]})";
  auto session = session_from_json(json);
  ASSERT_TRUE(session) << session.error().message;
  EXPECT_EQ(session->id, 0);
  EXPECT_EQ(session->name, std::nullopt);
  EXPECT_EQ(session->app_id, "local-1763770000000");
  EXPECT_EQ(session->owner, std::nullopt);
  EXPECT_EQ(session->proxy_user, "alice");
  EXPECT_EQ(session->state, "idle");
  EXPECT_EQ(session->kind, "pyspark");
  EXPECT_EQ(session->log, (std::vector<std::string>{"a", "b"}));
  rapidjson::Document whole;
  whole.Parse(session->json.c_str());
  ASSERT_TRUE(whole.IsObject());
  EXPECT_STREQ(whole["appInfo"]["sparkUiUrl"].GetString(), "http://x");
}

TEST(ClientResourceJson, ReadsAStatementWithTextAndTableOutput) {
  auto ok = statement_from_json(
      R"({"id":2,"code":"1+1","state":"available","output":{"status":"ok","execution_count":2,)"
      R"("data":{"text/plain":"2","application/json":{"schema":{},"data":[[1]]}}},)"
      R"("progress":1.0,"started":1763770000123,"completed":1763770000456})",
      7);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->session_id, 7);
  EXPECT_EQ(ok->id, 2);
  EXPECT_TRUE(ok->finished());
  EXPECT_TRUE(ok->succeeded());
  EXPECT_DOUBLE_EQ(ok->progress, 1.0);
  EXPECT_EQ(ok->started, 1763770000123);
  EXPECT_EQ(ok->completed, 1763770000456);
  ASSERT_TRUE(ok->output);
  EXPECT_EQ(ok->output->execution_count, 2);
  EXPECT_EQ(ok->output->text, "2");
  EXPECT_EQ(ok->output->table_json, R"({"schema":{},"data":[[1]]})");
}

TEST(ClientResourceJson, ReadsAFailedAndAWaitingStatement) {
  auto failed = statement_from_json(
      R"({"id":1,"code":"x","state":"available","output":{"status":"error","execution_count":1,)"
      R"("ename":"NameError","evalue":"name 'x' is not defined","traceback":["l1","l2"]},)"
      R"("progress":1,"started":1,"completed":2})",
      0);
  ASSERT_TRUE(failed);
  EXPECT_TRUE(failed->finished());
  EXPECT_FALSE(failed->succeeded());
  EXPECT_EQ(failed->output->ename, "NameError");
  EXPECT_EQ(failed->output->evalue, "name 'x' is not defined");
  EXPECT_EQ(failed->output->traceback, (std::vector<std::string>{"l1", "l2"}));
  EXPECT_EQ(failed->output->text, std::nullopt);

  auto waiting = statement_from_json(
      R"({"id":3,"code":"x","state":"waiting","output":null,"progress":0.0,"started":0,"completed":0})",
      0);
  ASSERT_TRUE(waiting);
  EXPECT_FALSE(waiting->finished());
  EXPECT_FALSE(waiting->output);
  for (const char* state : {"cancelled", "error"}) {
    Statement s;
    s.state = state;
    EXPECT_TRUE(s.finished()) << state;
  }
}

TEST(ClientResourceJson, ReadsJobsAndTheirStatus) {
  auto job = job_from_json(
      R"({"id":0,"sessionId":3,"className":"demo.CountJob","jar":null,"args":["100"],)"
      R"("conf":{"label":"nightly"},"state":"succeeded","progress":1.0,"created":1763783000000,)"
      R"("started":1763783000010,"completed":1763783000950,)"
      R"("result":{"count":100,"label":"nightly"},"error":null,"traceback":[]})",
      99);
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job->session_id, 3);
  EXPECT_EQ(job->class_name, "demo.CountJob");
  EXPECT_EQ(job->result_json, R"({"count":100,"label":"nightly"})");
  EXPECT_EQ(job->error, std::nullopt);
  EXPECT_EQ(job->created, 1763783000000);
  EXPECT_EQ(job->status(), JobStatus::kSuccess);

  auto failed = job_from_json(
      R"({"id":2,"state":"failed","error":"java.lang.IllegalStateException: boom",)"
      R"("traceback":["a","b"],"result":null})",
      4);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->session_id, 4);  // no sessionId: the caller's
  EXPECT_EQ(failed->status(), JobStatus::kFailed);
  EXPECT_EQ(failed->result_json, std::nullopt);
  EXPECT_EQ(failed->traceback.size(), 2u);

  Job job_state;
  for (auto [state, status] : {std::pair{"queued", JobStatus::kStart},
                               std::pair{"running", JobStatus::kStart},
                               std::pair{"cancelling", JobStatus::kStart},
                               std::pair{"cancelled", JobStatus::kKilled}}) {
    job_state.state = state;
    EXPECT_EQ(job_state.status(), status) << state;
  }
  EXPECT_EQ(to_string(JobStatus::kKilled), "KILLED");
}

TEST(ClientResourceJson, ReadsDrivers) {
  auto drivers = drivers_from_json(
      R"({"total":1,"drivers":[{"id":"0b6f","state":"busy","user":"alice","shareLevel":"user",)"
      R"("pooled":false,"profile":{},"sessions":[0,1,3],"load":{},"appId":"local-1",)"
      R"("sparkUiUrl":"http://127.0.0.1:4040","pid":41234,"created":1,"lastUsed":2}]})");
  ASSERT_TRUE(drivers) << drivers.error().message;
  ASSERT_EQ(drivers->size(), 1u);
  const Driver& d = drivers->front();
  EXPECT_EQ(d.id, "0b6f");
  EXPECT_EQ(d.state, "busy");
  EXPECT_EQ(d.user, "alice");
  EXPECT_EQ(d.share_level, "user");
  EXPECT_FALSE(d.pooled);
  EXPECT_EQ(d.sessions, (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(d.app_id, "local-1");
  EXPECT_EQ(d.spark_ui_url, "http://127.0.0.1:4040");
  EXPECT_EQ(d.pid, 41234);
}

TEST(ClientResourceJson, ReadsListsLogsAndCandidates) {
  auto sessions = sessions_from_json(
      R"({"from":0,"total":2,"sessions":[{"id":1,"state":"idle"},{"id":2,"state":"dead"}]})");
  ASSERT_TRUE(sessions);
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[1].state, "dead");
  EXPECT_EQ(int_field_of(R"({"from":0,"total":2})", "total"), 2);
  EXPECT_EQ(int_field_of("not json", "total", -1), -1);

  auto statements = statements_from_json(
      R"({"total_statements":1,"statements":[{"id":0,"state":"running","progress":0.5}]})", 5);
  ASSERT_TRUE(statements);
  EXPECT_EQ(statements->front().session_id, 5);

  auto jobs = jobs_from_json(R"({"total":0,"jobs":[]})", 1);
  ASSERT_TRUE(jobs);
  EXPECT_TRUE(jobs->empty());

  auto log = log_from_json(R"({"id":1,"from":0,"total":2,"log":["x","y"]})");
  ASSERT_TRUE(log);
  EXPECT_EQ(*log, (std::vector<std::string>{"x", "y"}));
  auto candidates = candidates_from_json(R"({"candidates":["range"]})");
  ASSERT_TRUE(candidates);
  EXPECT_EQ(*candidates, std::vector<std::string>{"range"});
}

TEST(ClientResourceJson, UnreadableRepliesAreServerErrors) {
  for (const char* json : {"", "[]", "{\"state\":\"idle\"}", "{\"id\":\"1\",\"state\":\"idle\"}",
                           "{\"id\":1}"}) {
    auto session = session_from_json(json);
    ASSERT_FALSE(session) << json;
    EXPECT_EQ(session.error().code, "server_error");
  }
  EXPECT_FALSE(sessions_from_json(R"({"sessions":{}})"));
  EXPECT_FALSE(sessions_from_json(R"({"sessions":[{"id":1}]})"));
  EXPECT_FALSE(statement_from_json(R"({"id":0})", 0));
  EXPECT_FALSE(job_from_json(R"({"state":"queued"})", 0));
  EXPECT_FALSE(driver_from_json(R"({"id":7,"state":"idle"})"));
}

TEST(ClientResourceJson, WritesRequestBodies) {
  EXPECT_EQ(statement_request_json("print(\"hi\")\n", std::nullopt),
            R"({"code":"print(\"hi\")\n"})");
  EXPECT_EQ(statement_request_json("1", std::string("sql")), R"({"code":"1","kind":"sql"})");
  EXPECT_EQ(completion_request_json("spark.ran", "pyspark", 9),
            R"({"code":"spark.ran","kind":"pyspark","cursor":9})");
  JobSpec spec{"demo.CountJob", std::nullopt, {"100"}, {{"label", "nightly"}}};
  EXPECT_EQ(job_request_json(spec),
            R"({"className":"demo.CountJob","args":["100"],"conf":{"label":"nightly"}})");
  spec.jar = "hdfs:///jobs.jar";
  EXPECT_NE(job_request_json(spec).find(R"("jar":"hdfs:///jobs.jar")"), std::string::npos);
  EXPECT_EQ(uri_request_json("s3a://b/x.jar"), R"({"uri":"s3a://b/x.jar"})");
}

TEST(ClientReplyErrors, OneTableFromStatusToErrorCode) {
  EXPECT_TRUE(is_success(200));
  EXPECT_TRUE(is_success(204));
  EXPECT_FALSE(is_success(400));
  const std::pair<int, const char*> table[] = {
      {400, "bad_request"}, {403, "forbidden"},        {404, "not_found"},
      {409, "conflict"},    {413, "too_large"},        {501, "not_implemented"},
      {500, "server_error"}, {503, "server_error"},    {405, "server_error"}};
  for (auto [status, code] : table) {
    EXPECT_EQ(error_for_reply(status, R"({"msg":"m"})").code, code) << status;
  }
  EXPECT_EQ(error_for_reply(404, R"({"msg":"Session '3' not found."})").message,
            "Session '3' not found.");
  EXPECT_EQ(error_for_reply(413, "\"Payload Too Large\"").message, "Payload Too Large");
  EXPECT_EQ(error_for_reply(503, "null").message, "HTTP 503");
}

}  // namespace
}  // namespace hearth::clients::detail
