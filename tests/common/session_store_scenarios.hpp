#pragma once

// SessionStore scenarios shared by every KeyValueStore backend.
//
// A backend is a subclass of SessionStoreFixture that says how to make its KeyValueStore (and,
// optionally, its SessionStore, e.g. with a per-test key prefix). Each test binary instantiates
// the scenarios once for its backend, in exactly one .cpp file:
//
//   class MyStoreTest : public hearth::test::SessionStoreFixture {
//     std::unique_ptr<KeyValueStore> make_kv_store() override { ... }
//   };
//   namespace hearth::test {
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, SessionStoreScenarios, MyStoreTest);
//   }
//
// tests/unit/session_store_test.cpp runs them over the in-memory store,
// tests/component/redis_store_test.cpp over a real redis-server. Scenarios that only make sense
// for one backend stay in that backend's file (and may use its fixture with TEST_F).
//
// Raw keys are always spelled prefix_ + "<rest of the documented key>" (see
// session_store.hpp), so the scenarios work whatever prefix the backend's store uses.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hearth/session/driver_secret.hpp"
#include "hearth/session/kv_store.hpp"
#include "hearth/session/records.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::test {

// A session with every field set, with values that are easy to get wrong on the way through
// JSON: unicode, quotes, newlines, tabs, backslashes, empty strings, present-but-zero optionals.
inline hearth::session::SessionRecord full_session(int64_t id) {
  hearth::session::SessionRecord r;
  r.id = id;
  r.request.kind = "pyspark";
  r.request.proxy_user = "alice";
  r.request.name = "etl \"nightly\" ünïcødé ✓";
  r.request.driver_memory = "2g";
  r.request.executor_memory = "4g";
  r.request.queue = "default";
  r.request.ttl = "10m";
  r.request.idle_timeout = "1h";
  r.request.driver_cores = 2;
  r.request.executor_cores = 3;
  r.request.num_executors = 0;  // present-but-zero must stay distinct from absent
  r.request.jars = {"hdfs:///a.jar", "file:///b.jar"};
  r.request.py_files = {"s3://bucket/x.py"};
  r.request.files = {"f1", "f 2", ""};
  r.request.archives = {"arch.zip#env"};
  r.request.conf = {{"spark.sql.shuffle.partitions", "8"},
                    {"spark.executorEnv.X", "line1\nline2\ttab \\ back"},
                    {"spark.empty", ""}};
  r.request.heartbeat_timeout_s = 60;
  r.request.share_level = "user";
  r.owner = "bob";
  r.state = hearth::session::SessionState::kIdle;
  r.app_id = "application_1716200000000_0001";
  r.spark_ui_url = "http://host:4040/";
  r.driver_id = "drv-" + std::to_string(id);
  r.created_ms = 1716200000123;
  return r;
}

// A finished statement with unicode code and a nested, unicode JSON output.
inline hearth::session::StatementRecord full_statement(int64_t session_id, int64_t id) {
  hearth::session::StatementRecord s;
  s.session_id = session_id;
  s.id = id;
  s.kind = "pyspark";
  s.code = "print('héllo ✓')\nx = {\"a\": 1}";
  s.state = hearth::session::StatementState::kAvailable;
  s.output_json =
      R"({"status":"ok","execution_count":3,"data":{"text/plain":"héllo ✓ 日本語","application/json":{"nested":[1,2.5,{"deep":null,"t":true}],"empty":{}}}})";
  s.progress = 0.1 + 0.2;  // not exactly representable: must survive bit-for-bit
  s.started_ms = 1716200000000;
  s.completed_ms = 1716200000123;
  return s;
}

// A driver whose secret is `secret` (the record keeps only its digest).
inline hearth::session::DriverRecord driver_record(std::string id, std::string_view secret,
                                                  int64_t pid, int64_t created_ms) {
  hearth::session::DriverRecord r;
  r.id = std::move(id);
  r.secret_sha256 = hearth::session::secret_digest(secret);
  r.pid = pid;
  r.created_ms = created_ms;
  return r;
}

// The store under test: kv_ from the backend's factory, store_ over it, prefix_ = its prefix.
class SessionStoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = make_kv_store();
    ASSERT_NE(kv_, nullptr);
    store_ = make_session_store(*kv_);
    ASSERT_NE(store_, nullptr);
    prefix_ = store_->prefix();
  }

  virtual std::unique_ptr<hearth::session::KeyValueStore> make_kv_store() = 0;
  // Default: the store a server would use (default prefix).
  virtual std::unique_ptr<hearth::session::SessionStore> make_session_store(
      hearth::session::KeyValueStore& kv) {
    return std::make_unique<hearth::session::SessionStore>(kv);
  }

  // A raw key of store_: key("session:3") == prefix_ + "session:3".
  std::string key(std::string_view rest) const { return prefix_ + std::string(rest); }

  // The raw value of a key, "" when it does not exist (and a test failure if it cannot be read).
  std::string raw(const std::string& full_key) {
    auto value = kv_->get(full_key);
    EXPECT_TRUE(value.ok()) << full_key << ": " << value.error().message;
    return value.ok() ? value->value_or("") : "";
  }

  std::unique_ptr<hearth::session::KeyValueStore> kv_;
  std::unique_ptr<hearth::session::SessionStore> store_;
  std::string prefix_;
};

// Backend is a SessionStoreFixture subclass.
template <class Backend>
class SessionStoreScenarios : public Backend {};

TYPED_TEST_SUITE_P(SessionStoreScenarios);

TYPED_TEST_P(SessionStoreScenarios, SessionIdsStartAtZeroAndIncrease) {
  auto& store = *this->store_;
  for (int64_t expected = 0; expected < 5; ++expected) {
    auto id = store.next_session_id();
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(*id, expected);
  }
  auto counter = this->kv_->get(this->key("counter:session"));
  ASSERT_TRUE(counter.ok());
  EXPECT_EQ(counter->value_or(""), "5");
}

TYPED_TEST_P(SessionStoreScenarios, SessionRoundTripsEveryField) {
  auto& store = *this->store_;
  const hearth::session::SessionRecord record = full_session(7);
  ASSERT_TRUE(store.put_session(record).ok());
  auto got = store.get_session(7);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, record);
}

TYPED_TEST_P(SessionStoreScenarios, DefaultSessionRoundTrips) {
  auto& store = *this->store_;
  hearth::session::SessionRecord record;  // every optional empty, every list empty
  ASSERT_TRUE(store.put_session(record).ok());
  auto got = store.get_session(0);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, record);
  EXPECT_FALSE((*got)->request.num_executors.has_value());
}

TYPED_TEST_P(SessionStoreScenarios, RecordIsVersionedJsonUnderDocumentedKey) {
  auto& kv = *this->kv_;
  ASSERT_TRUE(this->store_->put_session(full_session(3)).ok());
  auto raw = kv.get(this->key("session:3"));
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw->has_value());
  EXPECT_NE((*raw)->find(R"("version":1)"), std::string::npos) << **raw;
  EXPECT_NE((*raw)->find(R"("state":"idle")"), std::string::npos) << **raw;
  auto members = kv.zrange(this->key("sessions"), 0, -1);
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, std::vector<std::string>{"3"});
}

TYPED_TEST_P(SessionStoreScenarios, MissingSessionIsNullopt) {
  auto got = this->store_->get_session(42);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TYPED_TEST_P(SessionStoreScenarios, PutSessionOverwrites) {
  auto& store = *this->store_;
  hearth::session::SessionRecord record = full_session(1);
  ASSERT_TRUE(store.put_session(record).ok());
  record.state = hearth::session::SessionState::kBusy;
  record.app_id.reset();
  ASSERT_TRUE(store.put_session(record).ok());
  auto got = store.get_session(1);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, record);
  auto all = store.list_sessions();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

// Full and minimal records side by side; ids sort numerically ("10" < "2" as strings).
TYPED_TEST_P(SessionStoreScenarios, ListSessionsIsAscendingById) {
  auto& store = *this->store_;
  for (int64_t id : {10, 2, 1, 0, 100}) ASSERT_TRUE(store.put_session(full_session(id)).ok());
  hearth::session::SessionRecord minimal;
  minimal.id = 5;
  ASSERT_TRUE(store.put_session(minimal).ok());

  auto got = store.get_session(10);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, full_session(10));
  auto got_minimal = store.get_session(5);
  ASSERT_TRUE(got_minimal.ok() && got_minimal->has_value());
  EXPECT_EQ(**got_minimal, minimal);
  auto missing = store.get_session(3);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto all = store.list_sessions();
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::vector<int64_t> ids;
  for (const auto& r : *all) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2, 5, 10, 100}));
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ((*all)[3], minimal);
  EXPECT_EQ((*all)[4], full_session(10));
}

TYPED_TEST_P(SessionStoreScenarios, EmptyStoreListsNothing) {
  auto& store = *this->store_;
  auto sessions = store.list_sessions();
  ASSERT_TRUE(sessions.ok());
  EXPECT_TRUE(sessions->empty());
  auto statements = store.list_statements(0);
  ASSERT_TRUE(statements.ok());
  EXPECT_TRUE(statements->empty());
}

TYPED_TEST_P(SessionStoreScenarios, CorruptSessionIsSkippedByListAndReportedByGet) {
  auto& store = *this->store_;
  auto& kv = *this->kv_;
  for (int64_t id : {0, 1, 2, 3, 4, 5, 6, 7, 8}) {
    ASSERT_TRUE(store.put_session(full_session(id)).ok());
  }
  const std::vector<std::pair<int64_t, std::string>> garbage = {
      {1, "\x01\x02 not json at all"},
      {2, R"({"version":1,"id":2})"},  // missing fields
      {3, R"({"version":2,"id":3})"},  // unknown version
      {4, ""},                         // empty
      {7, R"({"version":1,garbage)"},  // truncated
  };
  for (const auto& [id, text] : garbage) {
    ASSERT_TRUE(kv.set(this->key("session:" + std::to_string(id)), text).ok());
  }
  // A well-formed record with an unknown state string, and one with a wrong type.
  std::string raw = *kv.get(this->key("session:5")).value();
  raw.replace(raw.find(R"("state":"idle")"), 14, R"("state":"sleepy")");
  ASSERT_TRUE(kv.set(this->key("session:5"), raw).ok());
  raw = *kv.get(this->key("session:6")).value();
  raw.replace(raw.find(R"("created_ms":)"), 13, R"("created_ms":"x",)" R"("_":)");
  ASSERT_TRUE(kv.set(this->key("session:6"), raw).ok());

  // The good records on both sides of the corrupt ones are still listed.
  auto all = store.list_sessions();
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], full_session(0));
  EXPECT_EQ((*all)[1], full_session(8));

  for (int64_t id : {1, 2, 3, 4, 5, 6, 7}) {
    auto got = store.get_session(id);
    ASSERT_FALSE(got.ok()) << id;
    EXPECT_EQ(got.error().code, "corrupt_record") << id;
    EXPECT_NE(got.error().message.find(this->key("session:" + std::to_string(id))),
              std::string::npos)
        << got.error().message;
  }
  EXPECT_NE(store.get_session(5).error().message.find("sleepy"), std::string::npos);
}

TYPED_TEST_P(SessionStoreScenarios, RecordUnderTheWrongIdIsCorrupt) {
  auto& kv = *this->kv_;
  ASSERT_TRUE(this->store_->put_session(full_session(8)).ok());
  ASSERT_TRUE(kv.set(this->key("session:9"), *kv.get(this->key("session:8")).value()).ok());
  auto got = this->store_->get_session(9);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, "corrupt_record");
}

TYPED_TEST_P(SessionStoreScenarios, IndexEntryWithoutRecordIsSkipped) {
  auto& store = *this->store_;
  ASSERT_TRUE(store.put_session(full_session(1)).ok());
  ASSERT_TRUE(this->kv_->zadd(this->key("sessions"), 0, "0").ok());
  ASSERT_TRUE(this->kv_->zadd(this->key("sessions"), 5, "not-a-number").ok());
  auto all = store.list_sessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, 1);
}

TYPED_TEST_P(SessionStoreScenarios, StatementIdsArePerSessionFromZero) {
  auto& store = *this->store_;
  EXPECT_EQ(*store.next_statement_id(0), 0);
  EXPECT_EQ(*store.next_statement_id(0), 1);
  EXPECT_EQ(*store.next_statement_id(1), 0);
  EXPECT_EQ(*store.next_statement_id(0), 2);
  EXPECT_EQ(*store.next_statement_id(1), 1);
}

TYPED_TEST_P(SessionStoreScenarios, StatementRoundTripsEveryField) {
  auto& store = *this->store_;
  const hearth::session::StatementRecord statement = full_statement(4, 0);
  ASSERT_TRUE(store.put_statement(statement).ok());
  auto got = store.get_statement(4, 0);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, statement);

  hearth::session::StatementRecord waiting;
  waiting.session_id = 4;
  waiting.id = 1;
  waiting.code = "";
  ASSERT_TRUE(store.put_statement(waiting).ok());
  auto got_waiting = store.get_statement(4, 1);
  ASSERT_TRUE(got_waiting.ok() && got_waiting->has_value());
  EXPECT_EQ(**got_waiting, waiting);
  EXPECT_FALSE((*got_waiting)->output_json.has_value());
}

TYPED_TEST_P(SessionStoreScenarios, OutputIsEmbeddedJsonNotAString) {
  ASSERT_TRUE(this->store_->put_statement(full_statement(4, 0)).ok());
  auto raw = this->kv_->get(this->key("session:4:statement:0"));
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_NE((*raw)->find(R"("output":{"status":"ok")"), std::string::npos) << **raw;
}

TYPED_TEST_P(SessionStoreScenarios, InvalidOutputJsonIsRefused) {
  auto& store = *this->store_;
  hearth::session::StatementRecord statement = full_statement(4, 0);
  statement.output_json = R"({"status":"ok")";
  auto put = store.put_statement(statement);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, "invalid_record");
  auto got = store.get_statement(4, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TYPED_TEST_P(SessionStoreScenarios, ListStatementsAscendingAndSkipsCorrupt) {
  auto& store = *this->store_;
  for (int64_t id : {11, 0, 2, 1}) ASSERT_TRUE(store.put_statement(full_statement(5, id)).ok());
  hearth::session::StatementRecord waiting;  // every field at its default
  waiting.session_id = 6;
  ASSERT_TRUE(store.put_statement(waiting).ok());
  ASSERT_TRUE(
      this->kv_->set(this->key("session:5:statement:1"), R"({"version":1,"state":7})").ok());
  auto list = store.list_statements(5);
  ASSERT_TRUE(list.ok()) << list.error().message;
  std::vector<int64_t> ids;
  for (const auto& s : *list) ids.push_back(s.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 2, 11}));
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0], full_statement(5, 0));
  EXPECT_EQ((*list)[1], full_statement(5, 2));
  EXPECT_EQ((*list)[2], full_statement(5, 11));
  auto bad = store.get_statement(5, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "corrupt_record");
  auto other = store.list_statements(6);
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0], waiting);
}

TYPED_TEST_P(SessionStoreScenarios, DeleteStatementRemovesOnlyThatStatement) {
  auto& store = *this->store_;
  for (int64_t i = 0; i < 3; ++i) ASSERT_TRUE(store.put_statement(full_statement(4, i)).ok());
  ASSERT_TRUE(store.delete_statement(4, 1).ok());
  auto gone = store.get_statement(4, 1);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto left = store.list_statements(4);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].id, 0);
  EXPECT_EQ((*left)[1].id, 2);
  EXPECT_EQ(*this->kv_->zcard(this->key("session:4:statements")), 2);
  EXPECT_TRUE(store.delete_statement(4, 1).ok());  // again: not an error
}

TYPED_TEST_P(SessionStoreScenarios, DeleteSessionRemovesRecordIndexStatementsAndCounter) {
  auto& store = *this->store_;
  auto& kv = *this->kv_;
  ASSERT_TRUE(store.put_session(full_session(1)).ok());
  ASSERT_TRUE(store.put_session(full_session(2)).ok());
  for (int i = 0; i < 3; ++i) {
    auto sid = store.next_statement_id(1);
    ASSERT_TRUE(sid.ok());
    ASSERT_TRUE(store.put_statement(full_statement(1, *sid)).ok());
  }
  ASSERT_TRUE(store.put_statement(full_statement(2, 0)).ok());

  ASSERT_TRUE(store.delete_session(1).ok());

  auto got = store.get_session(1);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto statement = store.get_statement(1, 0);
  ASSERT_TRUE(statement.ok());
  EXPECT_FALSE(statement->has_value());
  auto all = store.list_sessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, 2);
  for (const char* rest : {"session:1", "session:1:statement:0", "session:1:statement:2",
                           "session:1:counter:statement"}) {
    auto raw = kv.get(this->key(rest));
    ASSERT_TRUE(raw.ok());
    EXPECT_FALSE(raw->has_value()) << rest;
  }
  EXPECT_EQ(*kv.zcard(this->key("session:1:statements")), 0);
  auto statements = store.list_statements(1);
  ASSERT_TRUE(statements.ok());
  EXPECT_TRUE(statements->empty());
  // The other session is untouched.
  auto kept = store.list_statements(2);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
  // Deleting again (or a session that never existed) is fine.
  EXPECT_TRUE(store.delete_session(1).ok());
  EXPECT_TRUE(store.delete_session(99).ok());
  // Session ids are never reused.
  ASSERT_TRUE(store.next_session_id().ok());
}

TYPED_TEST_P(SessionStoreScenarios, DriverPutGetDelete) {
  auto& store = *this->store_;
  // Secrets are arbitrary bytes (control characters, invalid UTF-8, embedded NUL): their digests
  // still round-trip.
  const hearth::session::DriverRecord driver = driver_record("drv-1", "s3cr3t\x01\xff", 4242, 1716200000000);
  const hearth::session::DriverRecord other =
      driver_record("drv-9", std::string("se\0cret", 7), 31337, 1716200000000);
  for (const auto& d : {driver, other}) {
    ASSERT_TRUE(store.put_driver(d).ok());
    auto got = store.get_driver(d.id);
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, d);
  }
  auto missing = store.get_driver("drv-2");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store.delete_driver("drv-1").ok());
  auto gone = store.get_driver("drv-1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto kept = store.get_driver("drv-9");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ(**kept, other);
  ASSERT_TRUE(store.delete_driver("drv-9").ok());
  auto gone_too = store.get_driver("drv-9");
  ASSERT_TRUE(gone_too.ok());
  EXPECT_FALSE(gone_too->has_value());
  ASSERT_TRUE(this->kv_->set(this->key("driver:drv-3"), "{").ok());
  auto corrupt = store.get_driver("drv-3");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, "corrupt_record");
}

TYPED_TEST_P(SessionStoreScenarios, DriverRecordKeepsEveryFieldAndIsListed) {
  auto& store = *this->store_;
  hearth::session::DriverRecord shared = driver_record("drv-b", "x", 7, 1716200000200);
  shared.user = "ålice";
  shared.share_level = "user";
  shared.profile.driver_memory = "2g";
  shared.profile.num_executors = 0;
  shared.profile.conf = {{"spark.sql.shuffle.partitions", "7"}};
  shared.state = hearth::session::DriverState::kReady;
  shared.app_id = "local-1";
  shared.spark_ui_url = "http://127.0.0.1:4040";
  shared.last_used_ms = 1716200000999;
  hearth::session::DriverRecord pooled = driver_record("drv-a", "y", 8, 1716200000100);
  pooled.pooled = true;
  ASSERT_TRUE(store.put_driver(shared).ok());
  ASSERT_TRUE(store.put_driver(pooled).ok());
  auto got = store.get_driver("drv-b");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.error().message;
  EXPECT_EQ(**got, shared);
  auto listed = store.list_drivers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0], pooled);  // oldest first
  EXPECT_EQ((*listed)[1], shared);
  ASSERT_TRUE(store.delete_driver("drv-a").ok());
  listed = store.list_drivers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, "drv-b");
}

TYPED_TEST_P(SessionStoreScenarios, JobsRoundTripListAndGoWithTheirSession) {
  auto& store = *this->store_;
  ASSERT_TRUE(store.put_session(full_session(4)).ok());
  EXPECT_EQ(*store.next_job_id(4), 0);
  EXPECT_EQ(*store.next_job_id(4), 1);
  EXPECT_EQ(*store.next_job_id(5), 0);
  hearth::session::JobRecord job;
  job.session_id = 4;
  job.id = 1;
  job.class_name = "demo.Job";
  job.jar = "file:///tmp/j ✓.jar";
  job.args = {"a", ""};
  job.conf = {{"k", "v"}};
  job.state = hearth::session::JobState::kFailed;
  job.progress = 0.5;
  job.created_ms = 1;
  job.started_ms = 2;
  job.completed_ms = 3;
  job.result_json = R"({"rows":[1,2.5,"x"],"ok":true})";
  job.error = "java.lang.IllegalStateException: nope";
  job.traceback = {"at demo.Job.call(Job.java:3)"};
  hearth::session::JobRecord other = job;
  other.id = 0;
  other.state = hearth::session::JobState::kQueued;
  other.result_json.reset();
  other.error.reset();
  other.traceback.clear();
  ASSERT_TRUE(store.put_job(job).ok());
  ASSERT_TRUE(store.put_job(other).ok());
  auto got = store.get_job(4, 1);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, job);
  auto raw = this->kv_->get(this->key("session:4:job:1"));
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_NE((*raw)->find(R"("result":{"rows":[1,2.5,"x"],"ok":true})"), std::string::npos) << **raw;
  auto listed = store.list_jobs(4);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0], other);
  hearth::session::JobRecord bad = job;
  bad.result_json = "{nope";
  EXPECT_EQ(store.put_job(bad).error().code, "invalid_record");
  ASSERT_TRUE(store.delete_session(4).ok());
  for (const char* rest : {"session:4:job:0", "session:4:job:1", "session:4:counter:job"}) {
    auto gone = this->kv_->get(this->key(rest));
    ASSERT_TRUE(gone.ok());
    EXPECT_FALSE(gone->has_value()) << rest;
  }
  EXPECT_TRUE(store.list_jobs(4)->empty());
}

TYPED_TEST_P(SessionStoreScenarios, PrefixesKeepStoresApart) {
  auto& store = *this->store_;
  const std::string other_prefix = this->prefix_ + "other:";
  hearth::session::SessionStore other(*this->kv_, other_prefix);
  EXPECT_EQ(*store.next_session_id(), 0);
  ASSERT_TRUE(store.put_session(full_session(1)).ok());
  EXPECT_EQ(*other.next_session_id(), 0);
  auto listed = other.list_sessions();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto raw = this->kv_->get(other_prefix + "counter:session");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->value_or(""), "1");
  EXPECT_EQ(this->kv_->get(this->key("counter:session"))->value_or(""), "1");
}

TYPED_TEST_P(SessionStoreScenarios, EventsAreNumberedReplayedTrimmedAndGoWithTheirSession) {
  auto& store = *this->store_;
  ASSERT_TRUE(store.put_session(full_session(6)).ok());
  auto empty = store.events_since(6, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->last_seq, 0);
  EXPECT_TRUE(empty->events.empty());

  EXPECT_EQ(*store.append_event(6, "statement", R"({"id":0,"state":"running"})"), 1);
  EXPECT_EQ(*store.append_event(6, "statement", R"({"id":0,"state":"running"})"), 2);  // same body, kept apart
  EXPECT_EQ(*store.append_event(6, "session", R"({"state":"idle","log":["a \"b\""]})"), 3);
  EXPECT_EQ(*store.append_event(7, "job", "null"), 1);  // numbered per session
  auto log = store.events_since(6, 1);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->last_seq, 3);
  ASSERT_EQ(log->events.size(), 2u);
  EXPECT_EQ(log->events[0], (hearth::session::StoredEvent{2, "statement", R"({"id":0,"state":"running"})"}));
  EXPECT_EQ(log->events[1], (hearth::session::StoredEvent{3, "session", R"({"state":"idle","log":["a \"b\""]})"}));

  // The newest kRetainedEvents (and at most a trim period more) are kept.
  const int64_t total = hearth::session::SessionStore::kRetainedEvents + 120;
  for (int64_t i = 4; i <= total; ++i) ASSERT_TRUE(store.append_event(6, "job", "{}").ok());
  auto trimmed = store.events_since(6, 0);
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(trimmed->last_seq, total);
  EXPECT_GE(trimmed->events.size(), static_cast<std::size_t>(hearth::session::SessionStore::kRetainedEvents));
  EXPECT_LE(trimmed->events.size(), static_cast<std::size_t>(hearth::session::SessionStore::kRetainedEvents + 50));
  EXPECT_EQ(trimmed->events.back().seq, total);
  EXPECT_GT(trimmed->events.front().seq, 1);

  ASSERT_TRUE(store.delete_session(6).ok());
  for (const char* rest : {"session:6:events", "session:6:counter:event"}) {
    auto gone = this->kv_->get(this->key(rest));
    EXPECT_TRUE(!gone.ok() || !gone->has_value()) << rest;  // a sorted set: GET fails or finds nothing
  }
  EXPECT_EQ(*this->kv_->zcard(this->key("session:6:events")), 0);
  EXPECT_EQ(store.events_since(6, 0)->last_seq, 0);
  EXPECT_EQ(store.events_since(7, 0)->events.size(), 1u);
}

// What a reader of Redis finds in a driver record: the digest, never the secret; what the
// server does with it: accept the right secret and nothing else.
TYPED_TEST_P(SessionStoreScenarios, DriverRecordKeepsTheSecretsDigestNotTheSecret) {
  auto& store = *this->store_;
  const std::string secret = "5f0c1e0d9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3b4a5968778695a4b";
  ASSERT_TRUE(store.put_driver(driver_record("drv-s", secret, 1, 2)).ok());
  const std::string raw = this->raw(this->key("driver:drv-s"));
  EXPECT_EQ(raw.find(secret), std::string::npos) << raw;
  EXPECT_EQ(raw.find(R"("secret":)"), std::string::npos) << raw;
  EXPECT_NE(raw.find(R"("secret_sha256":")" + hearth::session::secret_digest(secret) + "\""),
            std::string::npos)
      << raw;
  auto got = store.get_driver("drv-s");
  ASSERT_TRUE(got.ok() && got->has_value()) << (got.ok() ? "missing" : got.error().message);
  EXPECT_TRUE(hearth::session::secret_matches((*got)->secret_sha256, secret));
  EXPECT_FALSE(hearth::session::secret_matches((*got)->secret_sha256, secret + "0"));
  EXPECT_FALSE(hearth::session::secret_matches((*got)->secret_sha256, secret.substr(1)));
  EXPECT_FALSE(hearth::session::secret_matches((*got)->secret_sha256, ""));
  EXPECT_FALSE(hearth::session::secret_matches((*got)->secret_sha256, (*got)->secret_sha256));

  // A digest that is no SHA-256 in hex makes the record corrupt rather than unverifiable.
  std::string bad = raw;
  bad.replace(bad.find(R"("secret_sha256":")") + 17, 2, "ZZ");
  ASSERT_TRUE(this->kv_->set(this->key("driver:drv-s"), bad).ok());
  auto corrupt = store.get_driver("drv-s");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, "corrupt_record");
  EXPECT_NE(corrupt.error().message.find("secret_sha256"), std::string::npos)
      << corrupt.error().message;
}

// ---- the schema key ----------------------------------------------------------------------

TYPED_TEST_P(SessionStoreScenarios, ANewStoreGetsTheSchemaKey) {
  auto& store = *this->store_;
  EXPECT_EQ(this->raw(store.schema_key()), "");
  auto checked = store.check_schema();
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(this->raw(store.schema_key()), "1");
  // Every later start finds its own version and goes on.
  ASSERT_TRUE(store.put_session(full_session(1)).ok());
  auto again = store.check_schema();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(this->raw(store.schema_key()), "1");
  EXPECT_EQ(**store.get_session(1), full_session(1));
}

// A database written by the release before the schema key: its records are version 1, its
// driver records hold the secret itself. Each of the keys a server writes first is evidence.
TYPED_TEST_P(SessionStoreScenarios, RecordsWithoutASchemaKeyAreAdoptedAsVersionOne) {
  auto& kv = *this->kv_;
  int root_number = 0;
  auto fresh_store = [&] {
    const std::string root = this->prefix_ + "old" + std::to_string(root_number++) + ":";
    return std::make_unique<hearth::session::SessionStore>(kv, root + "v1:", root + "schema");
  };

  auto counted = fresh_store();  // a session id was handed out, nothing else
  ASSERT_TRUE(counted->next_session_id().ok());
  auto drivers_only = fresh_store();  // only the warm pool's driver
  ASSERT_TRUE(drivers_only->put_driver(driver_record("drv-p", "pool-secret", 1, 2)).ok());
  for (auto* store : {counted.get(), drivers_only.get()}) {
    auto checked = store->check_schema();
    ASSERT_TRUE(checked.ok()) << checked.error().message;
    EXPECT_EQ(this->raw(store->schema_key()), "1");
  }
  EXPECT_EQ(*counted->next_session_id(), 1);  // nothing was reset

  auto old = fresh_store();  // sessions and drivers, one of them of the old kind
  hearth::session::SessionRecord session = full_session(3);
  ASSERT_TRUE(old->put_session(session).ok());
  const std::string old_secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string legacy_driver =
      R"({"version":1,"id":"drv-old","secret":")" + old_secret +
      R"(","pid":77,"created_ms":5,"user":null,"share_level":"session","pooled":false,)"
      R"("profile":{"driver_memory":null,"executor_memory":null,"queue":null,)"
      R"("driver_cores":null,"executor_cores":null,"num_executors":null,"conf":{}},)"
      R"("state":"ready","app_id":"local-1","spark_ui_url":null,"last_used_ms":6})";
  ASSERT_TRUE(kv.set(old->prefix() + "driver:drv-old", legacy_driver).ok());
  ASSERT_TRUE(kv.zadd(old->prefix() + "drivers", 5, "drv-old").ok());
  // The old record reads as the digest of its secret, even before the adoption.
  auto before = old->get_driver("drv-old");
  ASSERT_TRUE(before.ok() && before->has_value()) << (before.ok() ? "" : before.error().message);
  EXPECT_TRUE(hearth::session::secret_matches((*before)->secret_sha256, old_secret));

  auto checked = old->check_schema("Redis unix:///old.sock");
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(this->raw(old->schema_key()), "1");
  EXPECT_EQ(**old->get_session(3), session);
  const std::string rewritten = this->raw(old->prefix() + "driver:drv-old");
  EXPECT_EQ(rewritten.find(old_secret), std::string::npos) << rewritten;
  auto after = old->get_driver("drv-old");
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ(**after, **before);
  EXPECT_TRUE(hearth::session::secret_matches((*after)->secret_sha256, old_secret));
}

// A database this server does not speak is refused, and left exactly as it was.
TYPED_TEST_P(SessionStoreScenarios, ASchemaThisServerDoesNotSpeakIsRefused) {
  auto& store = *this->store_;
  auto& kv = *this->kv_;
  struct Case {
    const char* stored;
    std::vector<std::string> told;
  };
  const std::vector<Case> cases = {
      {"2", {"Redis redis://db.example:6379/0 holds Hearth schema version 2",
             "this hearth-server speaks 1: upgrade hearth-server or point it at another Redis database"}},
      {"17", {"holds Hearth schema version 17", "speaks 1"}},
      {"0", {"Redis redis://db.example:6379/0 holds Hearth schema version 0", "older",
             "speaks 1", "another Redis database"}},
      {"-3", {"holds Hearth schema version -3", "older"}},
      {"v2", {"holds \"v2\" under " + store.schema_key(), "speaks 1"}},
      {"", {"holds \"\" under " + store.schema_key()}},
      {"1 ", {"holds \"1 \" under"}},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(kv.set(store.schema_key(), c.stored).ok());
    auto checked = store.check_schema("Redis redis://db.example:6379/0");
    ASSERT_FALSE(checked.ok()) << c.stored;
    EXPECT_EQ(checked.error().code, "schema_mismatch") << c.stored;
    for (const auto& text : c.told) {
      EXPECT_NE(checked.error().message.find(text), std::string::npos)
          << "stored \"" << c.stored << "\": " << checked.error().message << "\nlacks: " << text;
    }
    EXPECT_EQ(this->raw(store.schema_key()), c.stored);
  }
  EXPECT_EQ(this->raw(this->key("counter:session")), "");
}

// ---- server values -----------------------------------------------------------------------

TYPED_TEST_P(SessionStoreScenarios, ServerValuesRoundTripUnderTheirDocumentedKeys) {
  auto& store = *this->store_;
  auto missing = store.get_server_value("driver_endpoint");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store.put_server_value("driver_endpoint", "tcp://127.0.0.1:41234").ok());
  ASSERT_TRUE(store.put_server_value("other", std::string("a\0b", 3)).ok());
  EXPECT_EQ(store.get_server_value("driver_endpoint")->value_or(""), "tcp://127.0.0.1:41234");
  EXPECT_EQ(store.get_server_value("other")->value_or(""), std::string("a\0b", 3));
  EXPECT_EQ(this->raw(this->key("server:driver_endpoint")), "tcp://127.0.0.1:41234");
  ASSERT_TRUE(store.put_server_value("driver_endpoint", "tcp://127.0.0.1:5").ok());
  EXPECT_EQ(store.get_server_value("driver_endpoint")->value_or(""), "tcp://127.0.0.1:5");
  // Not a session, so never listed as one.
  EXPECT_TRUE(store.list_sessions()->empty());
}

// ---- the event log's bounds --------------------------------------------------------------

// Statements that print a lot: the log is cut by bytes long before it has 1000 events, keeps
// the newest ones without gaps, and a replay still gets the latest state.
TYPED_TEST_P(SessionStoreScenarios, EventLogIsBoundedInBytesToo) {
  using hearth::session::SessionStore;
  auto& store = *this->store_;
  const std::string body = "\"" + std::string(64 * 1024, 'x') + "\"";
  const int64_t total = (SessionStore::kRetainedEventBytes + 2 * SessionStore::kEventTrimBytes) /
                        static_cast<int64_t>(body.size());
  for (int64_t i = 1; i <= total; ++i) {
    auto seq = store.append_event(8, "statement", body);
    ASSERT_TRUE(seq.ok()) << seq.error().message;
    ASSERT_EQ(*seq, i);
  }
  auto log = store.events_since(8, 0);
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->last_seq, total);
  ASSERT_FALSE(log->events.empty());
  EXPECT_EQ(log->events.back().seq, total);
  EXPECT_EQ(log->events.back().body_json, body);
  for (std::size_t i = 1; i < log->events.size(); ++i) {
    ASSERT_EQ(log->events[i].seq, log->events[i - 1].seq + 1);
  }
  auto members = this->kv_->zrange(this->key("session:8:events"), 0, -1);
  ASSERT_TRUE(members.ok());
  int64_t stored = 0;
  for (const auto& member : *members) stored += static_cast<int64_t>(member.size());
  EXPECT_LE(stored, SessionStore::kRetainedEventBytes + SessionStore::kEventTrimBytes);
  // Cut by the bytes bound, not below it.
  EXPECT_GT(stored, SessionStore::kRetainedEventBytes - 2 * static_cast<int64_t>(body.size()));
  EXPECT_LT(static_cast<int64_t>(log->events.size()), total);

  // One event larger than the whole budget is still the one a reconnecting client gets.
  const std::string huge = "\"" + std::string(SessionStore::kRetainedEventBytes + 1, 'y') + "\"";
  auto huge_seq = store.append_event(8, "statement", huge);
  ASSERT_TRUE(huge_seq.ok()) << huge_seq.error().message;
  auto after = store.events_since(8, 0);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->events.size(), 1u);
  EXPECT_EQ(after->events[0].seq, *huge_seq);
  EXPECT_EQ(after->events[0].body_json, huge);

  // The byte count goes with the session too.
  ASSERT_TRUE(store.delete_session(8).ok());
  EXPECT_EQ(this->raw(this->key("session:8:counter:event_bytes")), "");
  EXPECT_EQ(*store.append_event(8, "session", "{}"), 1);
}

REGISTER_TYPED_TEST_SUITE_P(SessionStoreScenarios, SessionIdsStartAtZeroAndIncrease,
                            SessionRoundTripsEveryField, DefaultSessionRoundTrips,
                            RecordIsVersionedJsonUnderDocumentedKey, MissingSessionIsNullopt,
                            PutSessionOverwrites, ListSessionsIsAscendingById,
                            EmptyStoreListsNothing, CorruptSessionIsSkippedByListAndReportedByGet,
                            RecordUnderTheWrongIdIsCorrupt, IndexEntryWithoutRecordIsSkipped,
                            StatementIdsArePerSessionFromZero, StatementRoundTripsEveryField,
                            OutputIsEmbeddedJsonNotAString, InvalidOutputJsonIsRefused,
                            ListStatementsAscendingAndSkipsCorrupt,
                            DeleteStatementRemovesOnlyThatStatement,
                            DriverRecordKeepsEveryFieldAndIsListed,
                            JobsRoundTripListAndGoWithTheirSession,
                            DeleteSessionRemovesRecordIndexStatementsAndCounter,
                            DriverPutGetDelete, PrefixesKeepStoresApart,
                            EventsAreNumberedReplayedTrimmedAndGoWithTheirSession,
                            DriverRecordKeepsTheSecretsDigestNotTheSecret,
                            ANewStoreGetsTheSchemaKey,
                            RecordsWithoutASchemaKeyAreAdoptedAsVersionOne,
                            ASchemaThisServerDoesNotSpeakIsRefused,
                            ServerValuesRoundTripUnderTheirDocumentedKeys,
                            EventLogIsBoundedInBytesToo);

}  // namespace hearth::test
