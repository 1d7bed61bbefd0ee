#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hearth/session/kv_store.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::session {
namespace {

SessionRecord full_session(int64_t id) {
  SessionRecord r;
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
  r.owner = "bob";
  r.state = SessionState::kIdle;
  r.app_id = "application_1716200000000_0001";
  r.spark_ui_url = "http://host:4040/";
  r.driver_id = "drv-" + std::to_string(id);
  r.created_ms = 1716200000123;
  return r;
}

StatementRecord full_statement(int64_t session_id, int64_t id) {
  StatementRecord s;
  s.session_id = session_id;
  s.id = id;
  s.kind = "pyspark";
  s.code = "print('héllo ✓')\nx = {\"a\": 1}";
  s.state = StatementState::kAvailable;
  s.output_json =
      R"({"status":"ok","execution_count":3,"data":{"text/plain":"héllo ✓ 日本語","application/json":{"nested":[1,2.5,{"deep":null,"t":true}],"empty":{}}}})";
  s.progress = 0.1 + 0.2;  // not exactly representable: must survive bit-for-bit
  s.started_ms = 1716200000000;
  s.completed_ms = 1716200000123;
  return s;
}

class SessionStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<KeyValueStore> kv_ = make_in_memory_kv_store();
  SessionStore store_{*kv_};
};

TEST_F(SessionStoreTest, SessionIdsStartAtZeroAndIncrease) {
  for (int64_t expected = 0; expected < 5; ++expected) {
    auto id = store_.next_session_id();
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(*id, expected);
  }
  auto counter = kv_->get("hearth:v1:counter:session");
  ASSERT_TRUE(counter.ok());
  EXPECT_EQ(counter->value_or(""), "5");
}

TEST_F(SessionStoreTest, SessionRoundTripsEveryField) {
  const SessionRecord record = full_session(7);
  ASSERT_TRUE(store_.put_session(record).ok());
  auto got = store_.get_session(7);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, record);
}

TEST_F(SessionStoreTest, DefaultSessionRoundTrips) {
  SessionRecord record;  // every optional empty, every list empty
  ASSERT_TRUE(store_.put_session(record).ok());
  auto got = store_.get_session(0);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, record);
  EXPECT_FALSE((*got)->request.num_executors.has_value());
}

TEST_F(SessionStoreTest, RecordIsVersionedJsonUnderDocumentedKey) {
  ASSERT_TRUE(store_.put_session(full_session(3)).ok());
  auto raw = kv_->get("hearth:v1:session:3");
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw->has_value());
  EXPECT_NE((*raw)->find(R"("version":1)"), std::string::npos) << **raw;
  EXPECT_NE((*raw)->find(R"("state":"idle")"), std::string::npos) << **raw;
  auto members = kv_->zrange("hearth:v1:sessions", 0, -1);
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, std::vector<std::string>{"3"});
}

TEST_F(SessionStoreTest, MissingSessionIsNullopt) {
  auto got = store_.get_session(42);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(SessionStoreTest, PutSessionOverwrites) {
  SessionRecord record = full_session(1);
  ASSERT_TRUE(store_.put_session(record).ok());
  record.state = SessionState::kBusy;
  record.app_id.reset();
  ASSERT_TRUE(store_.put_session(record).ok());
  auto got = store_.get_session(1);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, record);
  auto all = store_.list_sessions();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(SessionStoreTest, ListSessionsIsAscendingById) {
  for (int64_t id : {10, 2, 1, 100}) ASSERT_TRUE(store_.put_session(full_session(id)).ok());
  auto all = store_.list_sessions();
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::vector<int64_t> ids;
  for (const auto& r : *all) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 10, 100}));
  EXPECT_EQ((*all)[2], full_session(10));
}

TEST_F(SessionStoreTest, EmptyStoreListsNothing) {
  auto sessions = store_.list_sessions();
  ASSERT_TRUE(sessions.ok());
  EXPECT_TRUE(sessions->empty());
  auto statements = store_.list_statements(0);
  ASSERT_TRUE(statements.ok());
  EXPECT_TRUE(statements->empty());
}

TEST_F(SessionStoreTest, CorruptSessionIsSkippedByListAndReportedByGet) {
  for (int64_t id : {0, 1, 2, 3, 4, 5, 6}) ASSERT_TRUE(store_.put_session(full_session(id)).ok());
  const std::vector<std::pair<int64_t, std::string>> garbage = {
      {1, "\x01\x02 not json at all"},
      {2, R"({"version":1,"id":2})"},  // missing fields
      {3, R"({"version":2,"id":3})"},  // unknown version
      {4, ""},                         // empty
  };
  for (const auto& [id, text] : garbage) {
    ASSERT_TRUE(kv_->set("hearth:v1:session:" + std::to_string(id), text).ok());
  }
  // A well-formed record with an unknown state string, and one with a wrong type.
  std::string raw = *kv_->get("hearth:v1:session:5").value();
  raw.replace(raw.find(R"("state":"idle")"), 14, R"("state":"sleepy")");
  ASSERT_TRUE(kv_->set("hearth:v1:session:5", raw).ok());
  raw = *kv_->get("hearth:v1:session:6").value();
  raw.replace(raw.find(R"("created_ms":)"), 13, R"("created_ms":"x",)" R"("_":)");
  ASSERT_TRUE(kv_->set("hearth:v1:session:6", raw).ok());

  auto all = store_.list_sessions();
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0], full_session(0));

  for (int64_t id : {1, 2, 3, 4, 5, 6}) {
    auto got = store_.get_session(id);
    ASSERT_FALSE(got.ok()) << id;
    EXPECT_EQ(got.error().code, "corrupt_record") << id;
    EXPECT_NE(got.error().message.find("hearth:v1:session:" + std::to_string(id)),
              std::string::npos)
        << got.error().message;
  }
  EXPECT_NE(store_.get_session(5).error().message.find("sleepy"), std::string::npos);
}

TEST_F(SessionStoreTest, RecordUnderTheWrongIdIsCorrupt) {
  ASSERT_TRUE(store_.put_session(full_session(8)).ok());
  ASSERT_TRUE(kv_->set("hearth:v1:session:9", *kv_->get("hearth:v1:session:8").value()).ok());
  auto got = store_.get_session(9);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, "corrupt_record");
}

TEST_F(SessionStoreTest, IndexEntryWithoutRecordIsSkipped) {
  ASSERT_TRUE(store_.put_session(full_session(1)).ok());
  ASSERT_TRUE(kv_->zadd("hearth:v1:sessions", 0, "0").ok());
  ASSERT_TRUE(kv_->zadd("hearth:v1:sessions", 5, "not-a-number").ok());
  auto all = store_.list_sessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, 1);
}

TEST_F(SessionStoreTest, StatementIdsArePerSessionFromZero) {
  EXPECT_EQ(*store_.next_statement_id(0), 0);
  EXPECT_EQ(*store_.next_statement_id(0), 1);
  EXPECT_EQ(*store_.next_statement_id(1), 0);
  EXPECT_EQ(*store_.next_statement_id(0), 2);
  EXPECT_EQ(*store_.next_statement_id(1), 1);
}

TEST_F(SessionStoreTest, StatementRoundTripsEveryField) {
  const StatementRecord statement = full_statement(4, 0);
  ASSERT_TRUE(store_.put_statement(statement).ok());
  auto got = store_.get_statement(4, 0);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, statement);

  StatementRecord waiting;
  waiting.session_id = 4;
  waiting.id = 1;
  waiting.code = "";
  ASSERT_TRUE(store_.put_statement(waiting).ok());
  auto got_waiting = store_.get_statement(4, 1);
  ASSERT_TRUE(got_waiting.ok() && got_waiting->has_value());
  EXPECT_EQ(**got_waiting, waiting);
  EXPECT_FALSE((*got_waiting)->output_json.has_value());
}

TEST_F(SessionStoreTest, OutputIsEmbeddedJsonNotAString) {
  ASSERT_TRUE(store_.put_statement(full_statement(4, 0)).ok());
  auto raw = kv_->get("hearth:v1:session:4:statement:0");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_NE((*raw)->find(R"("output":{"status":"ok")"), std::string::npos) << **raw;
}

TEST_F(SessionStoreTest, InvalidOutputJsonIsRefused) {
  StatementRecord statement = full_statement(4, 0);
  statement.output_json = R"({"status":"ok")";
  auto put = store_.put_statement(statement);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, "invalid_record");
  auto got = store_.get_statement(4, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(SessionStoreTest, ListStatementsAscendingAndSkipsCorrupt) {
  for (int64_t id : {11, 0, 2, 1}) ASSERT_TRUE(store_.put_statement(full_statement(5, id)).ok());
  ASSERT_TRUE(store_.put_statement(full_statement(6, 0)).ok());
  ASSERT_TRUE(kv_->set("hearth:v1:session:5:statement:1", R"({"version":1,"state":7})").ok());
  auto list = store_.list_statements(5);
  ASSERT_TRUE(list.ok()) << list.error().message;
  std::vector<int64_t> ids;
  for (const auto& s : *list) ids.push_back(s.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 2, 11}));
  EXPECT_EQ((*list)[2], full_statement(5, 11));
  auto bad = store_.get_statement(5, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "corrupt_record");
  auto other = store_.list_statements(6);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), 1u);
}

TEST_F(SessionStoreTest, DeleteSessionRemovesRecordIndexStatementsAndCounter) {
  ASSERT_TRUE(store_.put_session(full_session(1)).ok());
  ASSERT_TRUE(store_.put_session(full_session(2)).ok());
  for (int i = 0; i < 3; ++i) {
    auto sid = store_.next_statement_id(1);
    ASSERT_TRUE(sid.ok());
    ASSERT_TRUE(store_.put_statement(full_statement(1, *sid)).ok());
  }
  ASSERT_TRUE(store_.put_statement(full_statement(2, 0)).ok());

  ASSERT_TRUE(store_.delete_session(1).ok());

  auto got = store_.get_session(1);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto all = store_.list_sessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, 2);
  for (const char* key : {"hearth:v1:session:1", "hearth:v1:session:1:statement:0",
                          "hearth:v1:session:1:statement:2",
                          "hearth:v1:session:1:counter:statement"}) {
    auto raw = kv_->get(key);
    ASSERT_TRUE(raw.ok());
    EXPECT_FALSE(raw->has_value()) << key;
  }
  EXPECT_EQ(*kv_->zcard("hearth:v1:session:1:statements"), 0);
  auto statements = store_.list_statements(1);
  ASSERT_TRUE(statements.ok());
  EXPECT_TRUE(statements->empty());
  // The other session is untouched.
  auto kept = store_.list_statements(2);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
  // Deleting again (or a session that never existed) is fine.
  EXPECT_TRUE(store_.delete_session(1).ok());
  EXPECT_TRUE(store_.delete_session(99).ok());
  // Session ids are never reused.
  ASSERT_TRUE(store_.next_session_id().ok());
}

TEST_F(SessionStoreTest, DriverPutGetDelete) {
  DriverRecord driver{"drv-1", "s3cr3t\x01\xff", 4242, 1716200000000};
  ASSERT_TRUE(store_.put_driver(driver).ok());
  auto got = store_.get_driver("drv-1");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, driver);
  auto missing = store_.get_driver("drv-2");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_.delete_driver("drv-1").ok());
  auto gone = store_.get_driver("drv-1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ASSERT_TRUE(kv_->set("hearth:v1:driver:drv-3", "{").ok());
  auto corrupt = store_.get_driver("drv-3");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, "corrupt_record");
}

TEST_F(SessionStoreTest, PrefixesKeepStoresApart) {
  SessionStore other(*kv_, "hearth:other:");
  ASSERT_TRUE(store_.put_session(full_session(1)).ok());
  EXPECT_EQ(*other.next_session_id(), 0);
  auto listed = other.list_sessions();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto raw = kv_->get("hearth:other:counter:session");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->value_or(""), "1");
}

// The in-memory store must behave like Redis, or unit tests would pass against it and fail in
// production.
TEST(InMemoryKeyValueStoreTest, BehavesLikeRedis) {
  auto kv = make_in_memory_kv_store();
  EXPECT_TRUE(kv->ping().ok());
  EXPECT_EQ(*kv->incr("n"), 1);
  EXPECT_EQ(*kv->incr("n"), 2);
  ASSERT_TRUE(kv->set("s", "abc").ok());
  auto not_int = kv->incr("s");
  ASSERT_FALSE(not_int.ok());
  EXPECT_EQ(not_int.error().code, "store_error");

  ASSERT_TRUE(kv->zadd("z", 3, "c").ok());
  ASSERT_TRUE(kv->zadd("z", 1, "a").ok());
  ASSERT_TRUE(kv->zadd("z", 2, "b").ok());
  ASSERT_TRUE(kv->zadd("z", 2, "a2").ok());
  ASSERT_TRUE(kv->zadd("z", 0, "c").ok());  // re-score
  EXPECT_EQ(*kv->zrange("z", 0, -1), (std::vector<std::string>{"c", "a", "a2", "b"}));
  EXPECT_EQ(*kv->zrange("z", -2, -1), (std::vector<std::string>{"a2", "b"}));
  EXPECT_EQ(*kv->zrange("z", 1, 1), (std::vector<std::string>{"a"}));
  EXPECT_EQ(*kv->zrange("z", 2, 100), (std::vector<std::string>{"a2", "b"}));
  EXPECT_EQ(*kv->zrange("z", -100, 0), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(kv->zrange("z", 3, 1)->empty());
  EXPECT_TRUE(kv->zrange("z", 4, -1)->empty());
  EXPECT_TRUE(kv->zrange("missing", 0, -1)->empty());
  EXPECT_EQ(*kv->zcard("z"), 4);
  ASSERT_TRUE(kv->zrem("z", "a").ok());
  ASSERT_TRUE(kv->zrem("z", "nope").ok());
  EXPECT_EQ(*kv->zcard("z"), 3);
  EXPECT_EQ(*kv->zcard("missing"), 0);

  auto wrong = kv->get("z");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "store_error");
  auto wrong_zadd = kv->zadd("s", 1, "x");
  ASSERT_FALSE(wrong_zadd.ok());
  EXPECT_EQ(wrong_zadd.error().code, "store_error");

  const std::string binary("a\0b\r\n", 5);
  ASSERT_TRUE(kv->set(binary, binary).ok());
  EXPECT_EQ(kv->get(binary)->value_or(""), binary);
  ASSERT_TRUE(kv->del(binary).ok());
  EXPECT_FALSE(kv->get(binary)->has_value());
  ASSERT_TRUE(kv->del(binary).ok());
}

}  // namespace
}  // namespace hearth::session
