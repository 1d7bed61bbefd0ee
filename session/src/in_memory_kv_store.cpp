// In-memory KeyValueStore for unit tests: Redis semantics (including WRONGTYPE errors and INCR
// on a non-integer) over std containers, one mutex around everything.

#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <variant>

#include "hearth/session/kv_store.hpp"

namespace hearth::session {
namespace {

struct SortedSet {
  std::map<std::string, int64_t, std::less<>> scores;    // member → score
  std::set<std::pair<int64_t, std::string>> ordered;     // (score, member): Redis order
};

using Value = std::variant<std::string, SortedSet>;

Error wrong_type() {
  return make_error("store_error",
                    "WRONGTYPE Operation against a key holding the wrong kind of value");
}

class InMemoryKeyValueStore final : public KeyValueStore {
 public:
  Result<std::optional<std::string>> get(std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    if (it == data_.end()) return std::optional<std::string>();
    const auto* s = std::get_if<std::string>(&it->second);
    if (s == nullptr) return wrong_type();
    return std::optional<std::string>(*s);
  }

  Result<void> set(std::string_view key, std::string_view value) override {
    std::lock_guard lock(mutex_);
    data_.insert_or_assign(std::string(key), Value(std::string(value)));
    return Ok{};
  }

  Result<void> del(std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    if (it != data_.end()) data_.erase(it);
    return Ok{};
  }

  Result<int64_t> incr(std::string_view key) override { return incrby(key, 1); }

  Result<int64_t> incrby(std::string_view key, int64_t amount) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    int64_t current = 0;
    if (it != data_.end()) {
      const auto* s = std::get_if<std::string>(&it->second);
      if (s == nullptr) return wrong_type();
      auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), current);
      if (ec != std::errc() || end != s->data() + s->size() || s->empty()) {
        return make_error("store_error", "ERR value is not an integer or out of range");
      }
    }
    if ((amount > 0 && current > std::numeric_limits<int64_t>::max() - amount) ||
        (amount < 0 && current < std::numeric_limits<int64_t>::min() - amount)) {
      return make_error("store_error", "ERR increment or decrement would overflow");
    }
    current += amount;
    data_.insert_or_assign(std::string(key), Value(std::to_string(current)));
    return current;
  }

  Result<void> zadd(std::string_view key, int64_t score, std::string_view member) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    if (it == data_.end()) it = data_.emplace(std::string(key), Value(SortedSet{})).first;
    auto* zset = std::get_if<SortedSet>(&it->second);
    if (zset == nullptr) return wrong_type();
    auto existing = zset->scores.find(member);
    if (existing != zset->scores.end()) {
      zset->ordered.erase({existing->second, existing->first});
      existing->second = score;
    } else {
      zset->scores.emplace(std::string(member), score);
    }
    zset->ordered.emplace(score, std::string(member));
    return Ok{};
  }

  Result<void> zrem(std::string_view key, std::string_view member) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    if (it == data_.end()) return Ok{};
    auto* zset = std::get_if<SortedSet>(&it->second);
    if (zset == nullptr) return wrong_type();
    auto existing = zset->scores.find(member);
    if (existing == zset->scores.end()) return Ok{};
    zset->ordered.erase({existing->second, existing->first});
    zset->scores.erase(existing);
    if (zset->scores.empty()) data_.erase(it);  // Redis removes empty sets
    return Ok{};
  }

  Result<std::vector<std::string>> zrange(std::string_view key, int64_t start,
                                          int64_t stop) override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    auto it = data_.find(key);
    if (it == data_.end()) return out;
    const auto* zset = std::get_if<SortedSet>(&it->second);
    if (zset == nullptr) return wrong_type();
    const auto size = static_cast<int64_t>(zset->ordered.size());
    // Redis index semantics (zrangeGenericCommand).
    if (start < 0) start += size;
    if (stop < 0) stop += size;
    if (start < 0) start = 0;
    if (start > stop || start >= size) return out;
    if (stop >= size) stop = size - 1;
    int64_t index = 0;
    for (const auto& [score, member] : zset->ordered) {
      if (index > stop) break;
      if (index >= start) out.push_back(member);
      ++index;
    }
    return out;
  }

  Result<void> zremrangebyrank(std::string_view key, int64_t start, int64_t stop) override {
    auto doomed = zrange(key, start, stop);
    if (!doomed) return doomed.error();
    for (const auto& member : *doomed) {
      if (auto removed = zrem(key, member); !removed) return removed;
    }
    return Ok{};
  }

  Result<int64_t> zcard(std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = data_.find(key);
    if (it == data_.end()) return int64_t{0};
    const auto* zset = std::get_if<SortedSet>(&it->second);
    if (zset == nullptr) return wrong_type();
    return static_cast<int64_t>(zset->scores.size());
  }

  Result<void> ping() override { return Ok{}; }

 private:
  std::mutex mutex_;
  std::map<std::string, Value, std::less<>> data_;
};

}  // namespace

std::unique_ptr<KeyValueStore> make_in_memory_kv_store() {
  return std::make_unique<InMemoryKeyValueStore>();
}

}  // namespace hearth::session
