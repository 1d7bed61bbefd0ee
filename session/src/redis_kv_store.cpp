// KeyValueStore over Redis with hiredis (blocking API): a small pool of connections, argv-style
// (binary-safe) commands, connect and command timeouts, and reconnect-after-error.

#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include "hearth/session/kv_store.hpp"

namespace hearth::session {
namespace {

constexpr timeval kConnectTimeout{5, 0};
constexpr timeval kCommandTimeout{5, 0};

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string describe(const RedisAddress& address) {
  std::string out = "redis at ";
  if (!address.unix_path.empty()) {
    out += "unix:" + address.unix_path;
  } else {
    out += address.host + ":" + std::to_string(address.port);
  }
  if (address.db != 0) out += " db " + std::to_string(address.db);
  return out;
}

// hiredis writes with write(2); if Redis has closed the connection that raises SIGPIPE, whose
// default action ends the process. A library should not change process-wide signal handling, so
// SIGPIPE is blocked in the calling thread for the duration of one command, and a SIGPIPE it
// caused is consumed before unblocking. The failed write itself surfaces as EPIPE → an error.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    already_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  ~ScopedSigpipeBlock() {
    if (!already_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec no_wait{0, 0};
        sigtimedwait(&pipe_, nullptr, &no_wait);
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
  bool already_pending_ = false;
};

// Runs one command on `context`. nullptr means the context failed (I/O error, timeout, protocol
// error): context->err/errstr say why and the context must not be used again.
ReplyPtr run_command(redisContext* context, std::initializer_list<std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (std::string_view arg : args) {
    argv.push_back(arg.data());
    argvlen.push_back(arg.size());
  }
  ScopedSigpipeBlock no_sigpipe;
  return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(argv.size()), argv.data(), argvlen.data())));
}

class RedisKeyValueStore final : public KeyValueStore {
 public:
  RedisKeyValueStore(RedisAddress address, int pool_size)
      : address_(std::move(address)),
        description_(describe(address_)),
        pool_size_(pool_size < 1 ? 1 : pool_size) {}

  Result<std::optional<std::string>> get(std::string_view key) override {
    auto reply = command({"GET", key});
    if (!reply) return reply.error();
    if ((*reply)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
    if ((*reply)->type != REDIS_REPLY_STRING) return unexpected("GET");
    return std::optional<std::string>(std::in_place, (*reply)->str, (*reply)->len);
  }

  Result<void> set(std::string_view key, std::string_view value) override {
    return expect_ok(command({"SET", key, value}), REDIS_REPLY_STATUS, "SET");
  }

  Result<void> del(std::string_view key) override {
    return expect_ok(command({"DEL", key}), REDIS_REPLY_INTEGER, "DEL");
  }

  Result<int64_t> incr(std::string_view key) override {
    return integer(command({"INCR", key}), "INCR");
  }

  Result<int64_t> incrby(std::string_view key, int64_t amount) override {
    const std::string amount_text = std::to_string(amount);
    return integer(command({"INCRBY", key, amount_text}), "INCRBY");
  }

  Result<void> zadd(std::string_view key, int64_t score, std::string_view member) override {
    const std::string score_text = std::to_string(score);
    return expect_ok(command({"ZADD", key, score_text, member}), REDIS_REPLY_INTEGER, "ZADD");
  }

  Result<void> zrem(std::string_view key, std::string_view member) override {
    return expect_ok(command({"ZREM", key, member}), REDIS_REPLY_INTEGER, "ZREM");
  }

  Result<std::vector<std::string>> zrange(std::string_view key, int64_t start,
                                          int64_t stop) override {
    const std::string start_text = std::to_string(start);
    const std::string stop_text = std::to_string(stop);
    auto reply = command({"ZRANGE", key, start_text, stop_text});
    if (!reply) return reply.error();
    if ((*reply)->type != REDIS_REPLY_ARRAY) return unexpected("ZRANGE");
    std::vector<std::string> members;
    members.reserve((*reply)->elements);
    for (size_t i = 0; i < (*reply)->elements; ++i) {
      const redisReply* element = (*reply)->element[i];
      if (element == nullptr || element->type != REDIS_REPLY_STRING) return unexpected("ZRANGE");
      members.emplace_back(element->str, element->len);
    }
    return members;
  }

  Result<int64_t> zcard(std::string_view key) override {
    return integer(command({"ZCARD", key}), "ZCARD");
  }

  Result<void> zremrangebyrank(std::string_view key, int64_t start, int64_t stop) override {
    const std::string start_text = std::to_string(start);
    const std::string stop_text = std::to_string(stop);
    return expect_ok(command({"ZREMRANGEBYRANK", key, start_text, stop_text}), REDIS_REPLY_INTEGER,
                     "ZREMRANGEBYRANK");
  }

  Result<void> ping() override { return expect_ok(command({"PING"}), REDIS_REPLY_STATUS, "PING"); }

 private:
  // Runs a command on a pooled connection. Connection failures → "store_unavailable" (and the
  // connection is closed); Redis error replies → "store_error" (the connection stays usable).
  Result<ReplyPtr> command(std::initializer_list<std::string_view> args) {
    auto context = acquire();
    if (!context) return context.error();
    ReplyPtr reply = run_command(context->get(), args);
    if (!reply) {
      Error error = unavailable(context->get());
      discard(std::move(*context));
      return error;
    }
    release(std::move(*context));
    if (reply->type == REDIS_REPLY_ERROR) {
      return make_error("store_error",
                        description_ + ": " + std::string(reply->str, reply->len));
    }
    return reply;
  }

  // Takes an idle connection, or opens one if fewer than pool_size are open, or waits for one
  // to be released. Connecting happens outside the lock so a slow connect does not stall
  // threads that could use an idle connection. Every connection handed out is given back with
  // release() or discard(), which is what bounds the wait.
  Result<ContextPtr> acquire() {
    {
      std::unique_lock lock(mutex_);
      released_.wait(lock, [&] { return !idle_.empty() || open_ < pool_size_; });
      if (!idle_.empty()) {
        ContextPtr context = std::move(idle_.back());
        idle_.pop_back();
        return context;
      }
      ++open_;  // reserve a slot for the connection opened below
    }
    auto context = connect();
    if (!context) {
      std::lock_guard lock(mutex_);
      --open_;
      released_.notify_one();
    }
    return context;
  }

  void release(ContextPtr context) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(context));
    released_.notify_one();
  }

  // A context that failed is never reused (hiredis leaves it in an undefined protocol state);
  // the next acquire() opens a fresh connection. A failed connection usually means Redis went
  // away or restarted, so the idle ones are dropped too: otherwise each stale connection would
  // fail one more caller in turn before the pool recovered.
  void discard(ContextPtr context) {
    context.reset();
    std::vector<ContextPtr> stale;
    {
      std::lock_guard lock(mutex_);
      stale.swap(idle_);
      open_ -= 1 + static_cast<int>(stale.size());
      released_.notify_all();
    }
    // stale closes its connections here, outside the lock.
  }

  Result<ContextPtr> connect() {
    ContextPtr context(address_.unix_path.empty()
                           ? redisConnectWithTimeout(address_.host.c_str(), address_.port,
                                                     kConnectTimeout)
                           : redisConnectUnixWithTimeout(address_.unix_path.c_str(),
                                                         kConnectTimeout));
    if (!context) {
      return make_error("store_unavailable", description_ + ": cannot allocate a connection");
    }
    if (context->err != 0) return unavailable(context.get());
    // hiredis 0.14 opens its socket without close-on-exec; children are spawned closing all
    // but stdio anyway (ChildProcess), this keeps any other exec from inheriting it.
    ::fcntl(context->fd, F_SETFD, FD_CLOEXEC);
    if (redisSetTimeout(context.get(), kCommandTimeout) != REDIS_OK) {
      return unavailable(context.get());
    }
    if (address_.unix_path.empty()) redisEnableKeepAlive(context.get());
    if (address_.db != 0) {
      const std::string db = std::to_string(address_.db);
      ReplyPtr reply = run_command(context.get(), {"SELECT", db});
      if (!reply) return unavailable(context.get());
      if (reply->type == REDIS_REPLY_ERROR) {
        return make_error("store_unavailable", description_ + ": SELECT " + db + " failed: " +
                                                   std::string(reply->str, reply->len));
      }
    }
    return context;
  }

  Error unavailable(const redisContext* context) const {
    std::string reason = context->errstr[0] != '\0' ? context->errstr : "connection error";
    return make_error("store_unavailable", description_ + ": " + reason);
  }

  Error unexpected(const char* command_name) const {
    return make_error("store_error",
                      description_ + ": unexpected reply type to " + command_name);
  }

  Result<void> expect_ok(Result<ReplyPtr> reply, int type, const char* command_name) const {
    if (!reply) return reply.error();
    if ((*reply)->type != type) return unexpected(command_name);
    return Ok{};
  }

  Result<int64_t> integer(Result<ReplyPtr> reply, const char* command_name) const {
    if (!reply) return reply.error();
    if ((*reply)->type != REDIS_REPLY_INTEGER) return unexpected(command_name);
    return static_cast<int64_t>((*reply)->integer);
  }

  const RedisAddress address_;
  const std::string description_;
  const int pool_size_;

  std::mutex mutex_;                    // guards idle_ and open_
  std::condition_variable released_;    // signalled when idle_ grows or open_ shrinks
  std::vector<ContextPtr> idle_;        // connected, ready for a command
  int open_ = 0;                        // idle + handed out + being connected
};

bool parse_int(std::string_view text, int min, int max, int& out) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (value < min || value > max) return false;
  out = value;
  return true;
}

Error bad_url(std::string_view url, std::string_view why) {
  return make_error("bad_config", "invalid Redis URL \"" + std::string(url) + "\": " +
                                      std::string(why) +
                                      " (expected redis://host[:port][/db] or "
                                      "unix:///path/to.sock[?db=N])");
}

constexpr int kMaxDb = 1 << 20;

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  constexpr std::string_view kRedis = "redis://";
  constexpr std::string_view kUnix = "unix://";
  RedisAddress address;
  if (url.starts_with(kUnix)) {
    std::string_view rest = url.substr(kUnix.size());
    if (auto query = rest.find('?'); query != std::string_view::npos) {
      std::string_view params = rest.substr(query + 1);
      rest = rest.substr(0, query);
      if (!params.starts_with("db=") || !parse_int(params.substr(3), 0, kMaxDb, address.db)) {
        return bad_url(url, "the only query parameter is db=<non-negative integer>");
      }
    }
    if (!rest.starts_with('/') || rest.size() < 2) {
      return bad_url(url, "the socket path must be absolute");
    }
    address.unix_path = std::string(rest);
    address.host.clear();
    address.port = 0;
    return address;
  }
  if (!url.starts_with(kRedis)) return bad_url(url, "unknown scheme");
  std::string_view rest = url.substr(kRedis.size());
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !parse_int(db, 0, kMaxDb, address.db)) {
      return bad_url(url, "the database must be a non-negative integer");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return bad_url(url, "credentials in the URL are not supported");
  }
  if (authority.find('?') != std::string_view::npos) {
    return bad_url(url, "query parameters are not supported for redis://");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(url, "unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return bad_url(url, "junk after [IPv6] host");
      port = after.substr(1);
      if (port.empty()) return bad_url(url, "empty port");
    }
  } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return bad_url(url, "empty port");
  }
  if (host.empty()) return bad_url(url, "missing host");
  if (!port.empty() && !parse_int(port, 1, 65535, address.port)) {
    return bad_url(url, "the port must be an integer from 1 to 65535");
  }
  address.host = std::string(host);
  return address;
}

std::unique_ptr<KeyValueStore> make_redis_kv_store(RedisAddress address, int pool_size) {
  return std::make_unique<RedisKeyValueStore>(std::move(address), pool_size);
}

}  // namespace hearth::session
