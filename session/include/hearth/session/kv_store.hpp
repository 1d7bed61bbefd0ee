#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::session {

// The small key/value layer under SessionStore: a subset of Redis commands with Redis
// semantics. Redis in production; the in-memory one is for unit tests only.
//
// Thread-safe: every method may be called from many threads at once. Every call blocks until
// the backend answered (the Redis store bounds that with a command timeout). Keys and values
// are binary-safe byte strings.
//
// Errors: "store_unavailable" (cannot reach the backend; retrying later may work),
// "store_error" (the backend refused the command, e.g. a key of the wrong type).
class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  // nullopt when the key does not exist.
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;
  virtual Result<void> set(std::string_view key, std::string_view value) = 0;
  // Deleting a missing key is not an error.
  virtual Result<void> del(std::string_view key) = 0;
  // Like Redis INCR: a missing key counts as 0, so the first call returns 1.
  virtual Result<int64_t> incr(std::string_view key) = 0;
  // Like Redis INCRBY: adds amount (may be negative) and returns the new value.
  virtual Result<int64_t> incrby(std::string_view key, int64_t amount) = 0;
  // Sorted sets: add (or re-score) a member; remove a member (missing is not an error).
  virtual Result<void> zadd(std::string_view key, int64_t score, std::string_view member) = 0;
  virtual Result<void> zrem(std::string_view key, std::string_view member) = 0;
  // Members by score ascending (ties by member bytes), Redis index semantics: inclusive,
  // negative indexes count from the end (-1 = last). A missing key is an empty set.
  virtual Result<std::vector<std::string>> zrange(std::string_view key, int64_t start,
                                                  int64_t stop) = 0;
  virtual Result<int64_t> zcard(std::string_view key) = 0;
  // Removes the members ranked start..stop (Redis ZREMRANGEBYRANK index semantics, as zrange).
  virtual Result<void> zremrangebyrank(std::string_view key, int64_t start, int64_t stop) = 0;
  // Ok when the backend answers.
  virtual Result<void> ping() = 0;
};

// For unit tests only: a process-local map, nothing persists.
std::unique_ptr<KeyValueStore> make_in_memory_kv_store();

// Where Redis lives: TCP (host, port) unless unix_path is non-empty. db is the SELECTed database.
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;
  int db = 0;
};

// Accepts redis://host[:port][/db] (port defaults to 6379, db to 0; IPv6 hosts in brackets)
// and unix:///path/to.sock[?db=N]. Anything else → Error{"bad_config", …}.
Result<RedisAddress> parse_redis_url(std::string_view url);

// A Redis-backed store with a pool of up to pool_size connections. Never connects in the
// constructor: connections are opened lazily on first use, so an unreachable Redis shows up as
// "store_unavailable" results (and a later call reconnects), not as an exception.
std::unique_ptr<KeyValueStore> make_redis_kv_store(RedisAddress address, int pool_size = 4);

}  // namespace hearth::session
