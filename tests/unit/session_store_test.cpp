#include <memory>
#include <string>
#include <vector>

#include "session_store_scenarios.hpp"
#include <gtest/gtest.h>

#include "hearth/session/driver_secret.hpp"
#include "hearth/session/kv_store.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::session {
namespace {

// The scenarios spell keys as prefix + rest; this pins the documented default prefix itself.
TEST(SessionStoreTest, DefaultPrefixIsTheDocumentedV1Schema) {
  auto kv = make_in_memory_kv_store();
  SessionStore store(*kv);
  EXPECT_EQ(store.prefix(), "hearth:v1:");
  ASSERT_TRUE(store.next_session_id().ok());
  ASSERT_TRUE(store.put_session(hearth::test::full_session(3)).ok());
  ASSERT_TRUE(store.put_statement(hearth::test::full_statement(3, 0)).ok());
  ASSERT_TRUE(store.put_driver(hearth::test::driver_record("drv-3", "secret", 1, 2)).ok());
  EXPECT_EQ(kv->get("hearth:v1:counter:session")->value_or(""), "1");
  EXPECT_TRUE(kv->get("hearth:v1:session:3")->has_value());
  EXPECT_EQ(*kv->zrange("hearth:v1:sessions", 0, -1), std::vector<std::string>{"3"});
  EXPECT_TRUE(kv->get("hearth:v1:session:3:statement:0")->has_value());
  EXPECT_EQ(*kv->zrange("hearth:v1:session:3:statements", 0, -1),
            std::vector<std::string>{"0"});
  EXPECT_TRUE(kv->get("hearth:v1:driver:drv-3")->has_value());
  ASSERT_TRUE(store.append_event(3, "session", "{}").ok());
  EXPECT_EQ(kv->get("hearth:v1:session:3:counter:event")->value_or(""), "1");
  EXPECT_TRUE(kv->get("hearth:v1:session:3:counter:event_bytes")->has_value());
  EXPECT_EQ(*kv->zcard("hearth:v1:session:3:events"), 1);
  ASSERT_TRUE(store.put_server_value("driver_endpoint", "tcp://127.0.0.1:1").ok());
  EXPECT_EQ(kv->get("hearth:v1:server:driver_endpoint")->value_or(""), "tcp://127.0.0.1:1");
}

// The schema key lives outside the versioned prefix, where a server of any version looks.
TEST(SessionStoreTest, SchemaKeyIsHearthSchemaOutsideThePrefix) {
  auto kv = make_in_memory_kv_store();
  SessionStore store(*kv);
  EXPECT_EQ(store.schema_key(), "hearth:schema");
  ASSERT_TRUE(store.check_schema().ok());
  EXPECT_EQ(kv->get("hearth:schema")->value_or(""), "1");
  ASSERT_TRUE(kv->set("hearth:schema", "2").ok());
  auto refused = store.check_schema("Redis redis://127.0.0.1:6379/0");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "Redis redis://127.0.0.1:6379/0 holds Hearth schema version 2 (hearth:schema); this "
            "hearth-server speaks 1: upgrade hearth-server or point it at another Redis database");
}

TEST(DriverSecretTest, DigestIsSha256InLowercaseHex) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(secret_digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(secret_matches(secret_digest("abc"), "abc"));
  EXPECT_FALSE(secret_matches(secret_digest("abc"), "abd"));
  EXPECT_FALSE(secret_matches(secret_digest("abc"), "ab"));
  // The same digest in capitals, shortened or empty is not a digest this server wrote.
  EXPECT_FALSE(secret_matches("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "abc"));
  EXPECT_FALSE(secret_matches(secret_digest("abc").substr(0, 63), "abc"));
  EXPECT_FALSE(secret_matches("", ""));
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
  EXPECT_EQ(*kv->incrby("n", 40), 42);
  EXPECT_EQ(*kv->incrby("n", -50), -8);
  EXPECT_EQ(*kv->incrby("fresh", 7), 7);
  EXPECT_EQ(kv->incrby("s", 1).error().code, "store_error");

  ASSERT_TRUE(kv->set(binary, binary).ok());
  EXPECT_EQ(kv->get(binary)->value_or(""), binary);
  ASSERT_TRUE(kv->del(binary).ok());
  EXPECT_FALSE(kv->get(binary)->has_value());
  ASSERT_TRUE(kv->del(binary).ok());
}

}  // namespace
}  // namespace hearth::session

// The shared SessionStore scenarios (tests/common/session_store_scenarios.hpp) over the
// in-memory store, with the default prefix a server uses.
namespace hearth::test {
class InMemoryStore : public SessionStoreFixture {
  std::unique_ptr<hearth::session::KeyValueStore> make_kv_store() override {
    return hearth::session::make_in_memory_kv_store();
  }
};
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, SessionStoreScenarios, InMemoryStore);
}  // namespace hearth::test
