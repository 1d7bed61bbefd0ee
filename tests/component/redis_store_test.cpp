// The Redis KeyValueStore and SessionStore against a real redis-server (see redis_fixture.hpp).

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "redis_fixture.hpp"
#include "session_store_scenarios.hpp"
#include <gtest/gtest.h>
#include <signal.h>

#include "hearth/session/kv_store.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::test {

// Every store over the shared redis-server, under a key prefix of its own. The shared
// SessionStore scenarios (tests/common/session_store_scenarios.hpp) run on it too.
class RedisStore : public SessionStoreFixture {
 protected:
  std::unique_ptr<hearth::session::KeyValueStore> make_kv_store() override {
    return hearth::session::make_redis_kv_store(redis_address());
  }
  // The production layout ("<root>schema" beside "<root>v1:") under a root of its own.
  std::unique_ptr<hearth::session::SessionStore> make_session_store(
      hearth::session::KeyValueStore& kv) override {
    const std::string root = unique_prefix();
    return std::make_unique<hearth::session::SessionStore>(kv, root + "v1:", root + "schema");
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, SessionStoreScenarios, RedisStore);

}  // namespace hearth::test

namespace hearth::session {
namespace {

using hearth::test::redis_address;
// The Redis-only tests below share the scenarios' fixture.
using RedisStoreTest = hearth::test::RedisStore;

// ---- URL parsing --------------------------------------------------------------------------

TEST(ParseRedisUrlTest, AcceptsTcpAndUnixForms) {
  auto a = parse_redis_url("redis://localhost");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 0);
  EXPECT_TRUE(a->unix_path.empty());

  auto b = parse_redis_url("redis://10.0.0.5:6380/3");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->host, "10.0.0.5");
  EXPECT_EQ(b->port, 6380);
  EXPECT_EQ(b->db, 3);

  auto c = parse_redis_url("redis://[::1]:7000/");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 7000);
  EXPECT_EQ(c->db, 0);

  auto d = parse_redis_url("unix:///var/run/redis/redis.sock");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->unix_path, "/var/run/redis/redis.sock");
  EXPECT_EQ(d->db, 0);

  auto e = parse_redis_url("unix:///tmp/r.sock?db=5");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->unix_path, "/tmp/r.sock");
  EXPECT_EQ(e->db, 5);
}

TEST(ParseRedisUrlTest, RejectsMalformedUrls) {
  for (const char* url :
       {"", "localhost:6379", "http://localhost", "redis://", "redis://:6379", "redis://host:",
        "redis://host:0", "redis://host:65536", "redis://host:port", "redis://host:6379/x",
        "redis://host:6379/-1", "redis://user:pw@host", "redis://[::1", "redis://[::1]x",
        "unix://", "unix://relative.sock", "unix:///", "unix:///tmp/r.sock?db=",
        "unix:///tmp/r.sock?db=a", "unix:///tmp/r.sock?foo=1", "rediss://host"}) {
    auto parsed = parse_redis_url(url);
    ASSERT_FALSE(parsed.ok()) << url;
    EXPECT_EQ(parsed.error().code, "bad_config") << url;
  }
}

// ---- the key/value layer ------------------------------------------------------------------

TEST_F(RedisStoreTest, Ping) { EXPECT_TRUE(kv_->ping().ok()); }

TEST_F(RedisStoreTest, KeyValueSemantics) {
  const std::string p = prefix_;
  auto missing = kv_->get(p + "missing");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(*kv_->incr(p + "n"), 1);
  EXPECT_EQ(*kv_->incr(p + "n"), 2);
  ASSERT_TRUE(kv_->set(p + "s", "abc").ok());
  auto not_int = kv_->incr(p + "s");
  ASSERT_FALSE(not_int.ok());
  EXPECT_EQ(not_int.error().code, "store_error");

  ASSERT_TRUE(kv_->zadd(p + "z", 3, "c").ok());
  ASSERT_TRUE(kv_->zadd(p + "z", 1, "a").ok());
  ASSERT_TRUE(kv_->zadd(p + "z", 2, "b").ok());
  ASSERT_TRUE(kv_->zadd(p + "z", 2, "a2").ok());
  ASSERT_TRUE(kv_->zadd(p + "z", 0, "c").ok());
  EXPECT_EQ(*kv_->zrange(p + "z", 0, -1), (std::vector<std::string>{"c", "a", "a2", "b"}));
  EXPECT_EQ(*kv_->zrange(p + "z", -2, -1), (std::vector<std::string>{"a2", "b"}));
  EXPECT_EQ(*kv_->zrange(p + "z", 2, 100), (std::vector<std::string>{"a2", "b"}));
  EXPECT_TRUE(kv_->zrange(p + "z", 3, 1)->empty());
  EXPECT_TRUE(kv_->zrange(p + "missing", 0, -1)->empty());
  EXPECT_EQ(*kv_->zcard(p + "z"), 4);
  ASSERT_TRUE(kv_->zrem(p + "z", "a").ok());
  ASSERT_TRUE(kv_->zrem(p + "z", "nope").ok());
  EXPECT_EQ(*kv_->zcard(p + "z"), 3);
  EXPECT_EQ(*kv_->zcard(p + "missing"), 0);
  EXPECT_EQ(*kv_->incrby(p + "n", 40), 42);
  EXPECT_EQ(*kv_->incrby(p + "n", -50), -8);
  EXPECT_EQ(*kv_->incrby(p + "fresh", 7), 7);
  EXPECT_EQ(kv_->incrby(p + "s", 1).error().code, "store_error");

  auto wrong = kv_->get(p + "z");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "store_error");
  EXPECT_NE(wrong.error().message.find("WRONGTYPE"), std::string::npos);
  // An error reply leaves the connection usable.
  EXPECT_TRUE(kv_->ping().ok());
}

TEST_F(RedisStoreTest, KeysAndValuesAreBinarySafe) {
  const std::string key = prefix_ + std::string("k\0 %s\r\n*1", 10);
  const std::string value("\0\x01\xff\r\n$-1\r\n", 10);
  ASSERT_TRUE(kv_->set(key, value).ok());
  auto got = kv_->get(key);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->value_or(""), value);
  ASSERT_TRUE(kv_->zadd(prefix_ + "z", 1, value).ok());
  EXPECT_EQ(*kv_->zrange(prefix_ + "z", 0, -1), std::vector<std::string>{value});
  ASSERT_TRUE(kv_->del(key).ok());
  EXPECT_FALSE(kv_->get(key)->has_value());
}

TEST_F(RedisStoreTest, DatabasesAreSeparate) {
  RedisAddress db3 = redis_address();
  db3.db = 3;
  auto other = make_redis_kv_store(db3);
  ASSERT_TRUE(kv_->set(prefix_ + "k", "db0").ok());
  ASSERT_TRUE(other->set(prefix_ + "k", "db3").ok());
  EXPECT_EQ(kv_->get(prefix_ + "k")->value_or(""), "db0");
  EXPECT_EQ(other->get(prefix_ + "k")->value_or(""), "db3");
  auto via_url = parse_redis_url("unix://" + hearth::test::redis_socket_path() + "?db=3");
  ASSERT_TRUE(via_url.ok());
  EXPECT_EQ(make_redis_kv_store(*via_url)->get(prefix_ + "k")->value_or(""), "db3");
}

TEST_F(RedisStoreTest, UnselectableDatabaseIsUnavailable) {
  RedisAddress bad = redis_address();
  bad.db = 100000;  // redis-server has 16 databases by default
  auto result = make_redis_kv_store(bad)->ping();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, "store_unavailable");
  EXPECT_NE(result.error().message.find("SELECT"), std::string::npos) << result.error().message;
}

TEST(RedisUnavailableTest, MissingSocketIsUnavailableNotACrash) {
  RedisAddress nowhere;
  nowhere.unix_path = "/nonexistent/hearth-test/redis.sock";
  auto kv = make_redis_kv_store(nowhere);
  auto ping = kv->ping();
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.error().code, "store_unavailable");
  EXPECT_NE(ping.error().message.find(nowhere.unix_path), std::string::npos)
      << ping.error().message;
  auto get = kv->get("k");
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, "store_unavailable");
  auto incr = kv->incr("k");
  ASSERT_FALSE(incr.ok());
  EXPECT_EQ(incr.error().code, "store_unavailable");
  // A failing store never blocks the typed layer either.
  SessionStore store(*kv);
  auto list = store.list_sessions();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, "store_unavailable");
}

// A store whose server dies answers store_unavailable (it never crashes or hangs, and a
// connection that failed is not reused), and works again once a server is back on the address.
TEST(RedisUnavailableTest, RecoversAfterServerRestart) {
  hearth::test::RedisServerProcess server;
  server.start();
  RedisAddress address;
  address.unix_path = server.socket_path();
  auto kv = make_redis_kv_store(address, 2);
  // Open two pooled connections so both go stale.
  std::thread other([&] { ASSERT_TRUE(kv->set("a", "1").ok()); });
  ASSERT_TRUE(kv->set("b", "2").ok());
  other.join();

  server.stop(SIGKILL);
  auto down = kv->set("c", "3");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, "store_unavailable");
  EXPECT_NE(down.error().message.find(server.socket_path()), std::string::npos)
      << down.error().message;
  auto still_down = kv->ping();
  ASSERT_FALSE(still_down.ok());
  EXPECT_EQ(still_down.error().code, "store_unavailable");

  server.start();  // fresh, empty server on the same socket path
  auto back = kv->set("d", "4");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(kv->get("d")->value_or(""), "4");
  EXPECT_TRUE(kv->ping().ok());
}

TEST_F(RedisStoreTest, ConcurrentIncrementsAreDistinct) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  const std::string key = prefix_ + "counter";
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto value = kv_->incr(key);
        if (value.ok()) seen[t].push_back(*value);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<int64_t> all;
  size_t total = 0;
  for (const auto& values : seen) {
    total += values.size();
    all.insert(values.begin(), values.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kPerThread));
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);
}

TEST_F(RedisStoreTest, ConcurrentSessionIdsAreDistinct) {
  std::vector<std::vector<int64_t>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto id = store_->next_session_id();
        if (id.ok()) seen[t].push_back(*id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<int64_t> all;
  for (const auto& ids : seen) all.insert(ids.begin(), ids.end());
  ASSERT_EQ(all.size(), 200u);
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 199);
}

// ---- the typed store over Redis -----------------------------------------------------------
// (The scenarios common to every store are in tests/common/session_store_scenarios.hpp.)

// A second server process (a restarted hearth-server) sees what the first one wrote.
TEST_F(RedisStoreTest, ANewStoreSeesEarlierWrites) {
  ASSERT_TRUE(store_->put_session(hearth::test::full_session(4)).ok());
  ASSERT_TRUE(store_->put_statement(hearth::test::full_statement(4, 0)).ok());
  auto kv2 = make_redis_kv_store(redis_address(), 1);
  SessionStore store2(*kv2, prefix_);
  auto all = store2.list_sessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0], hearth::test::full_session(4));
  auto statements = store2.list_statements(4);
  ASSERT_TRUE(statements.ok());
  ASSERT_EQ(statements->size(), 1u);
  EXPECT_EQ((*statements)[0], hearth::test::full_statement(4, 0));
}

}  // namespace
}  // namespace hearth::session
