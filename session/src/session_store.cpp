#include "hearth/session/session_store.hpp"

#include <charconv>
#include <cstdio>
#include <string>
#include <utility>

#include "record_json.hpp"

namespace hearth::session {
namespace {

// Reports a record that recovery/listing skips. One fprintf per line so lines from concurrent
// threads do not interleave mid-line.
// error.message already names the key.
void log_skipped(const Error& error) {
  std::fprintf(stderr, "[hearth] skipping unreadable record (%s): %s\n", error.code.c_str(),
               error.message.c_str());
}

Error corrupt_at(const std::string& key, const Error& error) {
  return make_error(error.code, key + ": " + error.message);
}

std::optional<int64_t> parse_id(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

// Counters start at 1 (Redis INCR); ids start at 0 (Livy).
Result<int64_t> id_from_counter(Result<int64_t> counter) {
  if (!counter) return counter.error();
  return *counter - 1;
}

}  // namespace

SessionStore::SessionStore(KeyValueStore& kv, std::string prefix, std::string schema_key)
    : kv_(kv), prefix_(std::move(prefix)), schema_key_(std::move(schema_key)) {}

std::string SessionStore::session_counter_key() const { return prefix_ + "counter:session"; }
std::string SessionStore::sessions_index_key() const { return prefix_ + "sessions"; }
std::string SessionStore::session_key(int64_t id) const {
  return prefix_ + "session:" + std::to_string(id);
}
std::string SessionStore::statement_counter_key(int64_t session_id) const {
  return session_key(session_id) + ":counter:statement";
}
std::string SessionStore::statements_index_key(int64_t session_id) const {
  return session_key(session_id) + ":statements";
}
std::string SessionStore::statement_key(int64_t session_id, int64_t statement_id) const {
  return session_key(session_id) + ":statement:" + std::to_string(statement_id);
}
std::string SessionStore::event_counter_key(int64_t session_id) const {
  return session_key(session_id) + ":counter:event";
}
std::string SessionStore::event_bytes_counter_key(int64_t session_id) const {
  return session_key(session_id) + ":counter:event_bytes";
}
std::string SessionStore::events_key(int64_t session_id) const {
  return session_key(session_id) + ":events";
}
std::string SessionStore::job_counter_key(int64_t session_id) const {
  return session_key(session_id) + ":counter:job";
}
std::string SessionStore::jobs_index_key(int64_t session_id) const {
  return session_key(session_id) + ":jobs";
}
std::string SessionStore::job_key(int64_t session_id, int64_t job_id) const {
  return session_key(session_id) + ":job:" + std::to_string(job_id);
}
std::string SessionStore::drivers_index_key() const { return prefix_ + "drivers"; }
std::string SessionStore::driver_key(std::string_view driver_id) const {
  return prefix_ + "driver:" + std::string(driver_id);
}
std::string SessionStore::server_value_key(std::string_view name) const {
  return prefix_ + "server:" + std::string(name);
}

// ---- schema ------------------------------------------------------------------------------

Result<void> SessionStore::check_schema(std::string_view store_name) {
  const std::string where(store_name);
  const std::string current = std::to_string(kSchemaVersion);
  auto stored = kv_.get(schema_key_);
  if (!stored) return stored.error();
  if (!*stored) {
    auto found = holds_records();
    if (!found) return found.error();
    if (*found) {
      // Written by the release before the schema key: its records are version 1 already, but
      // its driver records hold secrets in the clear.
      std::fprintf(stderr,
                   "[hearth] %s has Hearth records but no %s: adopting them as schema version "
                   "%s\n",
                   where.c_str(), schema_key_.c_str(), current.c_str());
      if (auto rewritten = rewrite_driver_records(); !rewritten) return rewritten;
    }
    return kv_.set(schema_key_, current);
  }
  const std::string& text = **stored;
  int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return make_error("schema_mismatch",
                      where + " holds \"" + text + "\" under " + schema_key_ +
                          ", which is no Hearth schema version; this hearth-server speaks " +
                          current + ": point it at another Redis database");
  }
  if (version > kSchemaVersion) {
    return make_error("schema_mismatch",
                      where + " holds Hearth schema version " + std::to_string(version) + " (" +
                          schema_key_ + "); this hearth-server speaks " + current +
                          ": upgrade hearth-server or point it at another Redis database");
  }
  if (version < kOldestReadableSchema) {
    return make_error("schema_mismatch",
                      where + " holds Hearth schema version " + std::to_string(version) + " (" +
                          schema_key_ + "), older than this hearth-server reads; it speaks " +
                          current + ": run the hearth-server release that wrote it or point "
                          "this one at another Redis database");
  }
  return Ok{};
}

Result<bool> SessionStore::holds_records() {
  // Every server writes one of these before any other key of the prefix (a session id, or a
  // driver of the warm pool), so checking them is enough and needs no SCAN of the database.
  auto counter = kv_.get(session_counter_key());
  if (!counter) return counter.error();
  if (*counter) return true;
  for (const std::string& index : {sessions_index_key(), drivers_index_key()}) {
    auto size = kv_.zcard(index);
    if (!size) return size.error();
    if (*size > 0) return true;
  }
  return false;
}

Result<void> SessionStore::rewrite_driver_records() {
  // get_driver reads an old record's clear secret as its digest; writing it back drops the
  // secret.
  auto drivers = list_drivers();
  if (!drivers) return drivers.error();
  for (const DriverRecord& record : *drivers) {
    if (auto put = put_driver(record); !put) return put;
  }
  return Ok{};
}

// ---- sessions ----------------------------------------------------------------------------

Result<int64_t> SessionStore::next_session_id() {
  return id_from_counter(kv_.incr(session_counter_key()));
}

Result<void> SessionStore::put_session(const SessionRecord& record) {
  // Record first, index second: a crash in between leaves an invisible record rather than an
  // index entry that points nowhere (both are tolerated by readers).
  if (auto r = kv_.set(session_key(record.id), record_json::encode_session(record)); !r) return r;
  return kv_.zadd(sessions_index_key(), record.id, std::to_string(record.id));
}

Result<std::optional<SessionRecord>> SessionStore::get_session(int64_t id) {
  const std::string key = session_key(id);
  auto text = kv_.get(key);
  if (!text) return text.error();
  if (!*text) return std::optional<SessionRecord>();
  auto record = record_json::decode_session(**text);
  if (!record) return corrupt_at(key, record.error());
  if (record->id != id) {
    return make_error("corrupt_record", key + ": holds session " + std::to_string(record->id));
  }
  return std::optional<SessionRecord>(std::move(*record));
}

Result<std::vector<SessionRecord>> SessionStore::list_sessions() {
  const std::string index_key = sessions_index_key();
  auto members = kv_.zrange(index_key, 0, -1);
  if (!members) return members.error();
  std::vector<SessionRecord> sessions;
  sessions.reserve(members->size());
  for (const std::string& member : *members) {
    auto id = parse_id(member);
    if (!id) {
      log_skipped(make_error("corrupt_record", index_key + ": bad member \"" + member + "\""));
      continue;
    }
    auto record = get_session(*id);
    if (!record) {
      if (record.error().code != "corrupt_record") return record.error();
      log_skipped(record.error());
      continue;
    }
    if (*record) sessions.push_back(std::move(**record));
  }
  return sessions;
}

Result<void> SessionStore::delete_session(int64_t id) {
  // Statements first and the session record last, so a failure part-way leaves the session
  // visible and a retry finishes the job.
  const std::string index_key = statements_index_key(id);
  auto members = kv_.zrange(index_key, 0, -1);
  if (!members) return members.error();
  for (const std::string& member : *members) {
    if (auto statement_id = parse_id(member)) {
      if (auto r = kv_.del(statement_key(id, *statement_id)); !r) return r;
    }
  }
  if (auto r = kv_.del(index_key); !r) return r;
  if (auto r = kv_.del(statement_counter_key(id)); !r) return r;
  const std::string jobs_key = jobs_index_key(id);
  auto jobs = kv_.zrange(jobs_key, 0, -1);
  if (!jobs) return jobs.error();
  for (const std::string& member : *jobs) {
    if (auto job_id = parse_id(member)) {
      if (auto r = kv_.del(job_key(id, *job_id)); !r) return r;
    }
  }
  if (auto r = kv_.del(jobs_key); !r) return r;
  if (auto r = kv_.del(job_counter_key(id)); !r) return r;
  if (auto r = kv_.del(events_key(id)); !r) return r;
  if (auto r = kv_.del(event_counter_key(id)); !r) return r;
  if (auto r = kv_.del(event_bytes_counter_key(id)); !r) return r;
  if (auto r = kv_.zrem(sessions_index_key(), std::to_string(id)); !r) return r;
  return kv_.del(session_key(id));
}

// ---- statements --------------------------------------------------------------------------

Result<int64_t> SessionStore::next_statement_id(int64_t session_id) {
  return id_from_counter(kv_.incr(statement_counter_key(session_id)));
}

Result<void> SessionStore::put_statement(const StatementRecord& record) {
  auto text = record_json::encode_statement(record);
  if (!text) return text.error();
  if (auto r = kv_.set(statement_key(record.session_id, record.id), *text); !r) return r;
  return kv_.zadd(statements_index_key(record.session_id), record.id, std::to_string(record.id));
}

Result<void> SessionStore::delete_statement(int64_t session_id, int64_t statement_id) {
  // Index entry first: a failure part-way leaves an unlisted record, never a listed hole.
  if (auto r = kv_.zrem(statements_index_key(session_id), std::to_string(statement_id)); !r) {
    return r;
  }
  return kv_.del(statement_key(session_id, statement_id));
}

Result<std::optional<StatementRecord>> SessionStore::get_statement(int64_t session_id,
                                                                   int64_t statement_id) {
  const std::string key = statement_key(session_id, statement_id);
  auto text = kv_.get(key);
  if (!text) return text.error();
  if (!*text) return std::optional<StatementRecord>();
  auto record = record_json::decode_statement(**text);
  if (!record) return corrupt_at(key, record.error());
  if (record->session_id != session_id || record->id != statement_id) {
    return make_error("corrupt_record", key + ": holds statement " +
                                            std::to_string(record->session_id) + "/" +
                                            std::to_string(record->id));
  }
  return std::optional<StatementRecord>(std::move(*record));
}

Result<std::vector<StatementRecord>> SessionStore::list_statements(int64_t session_id) {
  return list_statements(session_id, 0, -1);
}

Result<int64_t> SessionStore::count_statements(int64_t session_id) {
  return kv_.zcard(statements_index_key(session_id));
}

Result<std::vector<StatementRecord>> SessionStore::list_statements(int64_t session_id, int64_t first,
                                                                   int64_t last) {
  const std::string index_key = statements_index_key(session_id);
  auto members = kv_.zrange(index_key, first, last);
  if (!members) return members.error();
  std::vector<StatementRecord> statements;
  statements.reserve(members->size());
  for (const std::string& member : *members) {
    auto id = parse_id(member);
    if (!id) {
      log_skipped(make_error("corrupt_record", index_key + ": bad member \"" + member + "\""));
      continue;
    }
    auto record = get_statement(session_id, *id);
    if (!record) {
      if (record.error().code != "corrupt_record") return record.error();
      log_skipped(record.error());
      continue;
    }
    if (*record) statements.push_back(std::move(**record));
  }
  return statements;
}

// ---- jobs --------------------------------------------------------------------------------

Result<int64_t> SessionStore::next_job_id(int64_t session_id) {
  return id_from_counter(kv_.incr(job_counter_key(session_id)));
}

Result<void> SessionStore::put_job(const JobRecord& record) {
  auto text = record_json::encode_job(record);
  if (!text) return text.error();
  if (auto r = kv_.set(job_key(record.session_id, record.id), *text); !r) return r;
  return kv_.zadd(jobs_index_key(record.session_id), record.id, std::to_string(record.id));
}

Result<std::optional<JobRecord>> SessionStore::get_job(int64_t session_id, int64_t job_id) {
  const std::string key = job_key(session_id, job_id);
  auto text = kv_.get(key);
  if (!text) return text.error();
  if (!*text) return std::optional<JobRecord>();
  auto record = record_json::decode_job(**text);
  if (!record) return corrupt_at(key, record.error());
  if (record->session_id != session_id || record->id != job_id) {
    return make_error("corrupt_record", key + ": holds job " + std::to_string(record->session_id) +
                                            "/" + std::to_string(record->id));
  }
  return std::optional<JobRecord>(std::move(*record));
}

Result<std::vector<JobRecord>> SessionStore::list_jobs(int64_t session_id) {
  const std::string index_key = jobs_index_key(session_id);
  auto members = kv_.zrange(index_key, 0, -1);
  if (!members) return members.error();
  std::vector<JobRecord> jobs;
  for (const std::string& member : *members) {
    auto id = parse_id(member);
    if (!id) {
      log_skipped(make_error("corrupt_record", index_key + ": bad member \"" + member + "\""));
      continue;
    }
    auto record = get_job(session_id, *id);
    if (!record) {
      if (record.error().code != "corrupt_record") return record.error();
      log_skipped(record.error());
      continue;
    }
    if (*record) jobs.push_back(std::move(**record));
  }
  return jobs;
}

Result<void> SessionStore::delete_job(int64_t session_id, int64_t job_id) {
  if (auto r = kv_.zrem(jobs_index_key(session_id), std::to_string(job_id)); !r) return r;
  return kv_.del(job_key(session_id, job_id));
}

// ---- drivers -----------------------------------------------------------------------------

Result<void> SessionStore::put_driver(const DriverRecord& record) {
  if (auto r = kv_.set(driver_key(record.id), record_json::encode_driver(record)); !r) return r;
  return kv_.zadd(drivers_index_key(), record.created_ms, record.id);
}

Result<std::vector<DriverRecord>> SessionStore::list_drivers() {
  auto members = kv_.zrange(drivers_index_key(), 0, -1);
  if (!members) return members.error();
  std::vector<DriverRecord> drivers;
  for (const std::string& member : *members) {
    auto record = get_driver(member);
    if (!record) {
      if (record.error().code != "corrupt_record") return record.error();
      log_skipped(record.error());
      continue;
    }
    if (*record) drivers.push_back(std::move(**record));
  }
  return drivers;
}

Result<std::optional<DriverRecord>> SessionStore::get_driver(std::string_view driver_id) {
  const std::string key = driver_key(driver_id);
  auto text = kv_.get(key);
  if (!text) return text.error();
  if (!*text) return std::optional<DriverRecord>();
  auto record = record_json::decode_driver(**text);
  if (!record) return corrupt_at(key, record.error());
  if (record->id != driver_id) {
    return make_error("corrupt_record", key + ": holds driver " + record->id);
  }
  return std::optional<DriverRecord>(std::move(*record));
}

Result<void> SessionStore::delete_driver(std::string_view driver_id) {
  if (auto r = kv_.zrem(drivers_index_key(), std::string(driver_id)); !r) return r;
  return kv_.del(driver_key(driver_id));
}

// ---- events ------------------------------------------------------------------------------

Result<int64_t> SessionStore::append_event(int64_t session_id, std::string_view kind,
                                           std::string_view body_json) {
  auto seq = kv_.incr(event_counter_key(session_id));
  if (!seq) return seq.error();
  // The member carries its seq, so equal bodies stay distinct members.
  const std::string member =
      record_json::encode_event(StoredEvent{*seq, std::string(kind), std::string(body_json)});
  const auto size = static_cast<int64_t>(member.size());
  // Counted before the event is added: if the add fails, the count is only too high, which
  // brings the next trim forward.
  auto appended = kv_.incrby(event_bytes_counter_key(session_id), size);
  if (!appended) return appended.error();
  const std::string key = events_key(session_id);
  if (auto added = kv_.zadd(key, *seq, member); !added) return added.error();
  // Trimmed now and then rather than on each event: the common path stays three round trips.
  // The bytes bound needs the sizes, hence a read of the whole log; it is done only when the
  // running total crosses another multiple of kEventTrimBytes, and never while everything ever
  // appended fits the bound (most sessions). The count bound needs no read.
  if (*appended > kRetainedEventBytes &&
      *appended / kEventTrimBytes != (*appended - size) / kEventTrimBytes) {
    if (auto trimmed = trim_events(key); !trimmed) return trimmed.error();
  } else if (*seq % kEventTrimPeriod == 0) {
    if (auto trimmed = kv_.zremrangebyrank(key, 0, -(kRetainedEvents + 1)); !trimmed) {
      return trimmed.error();
    }
  }
  return *seq;
}

Result<void> SessionStore::trim_events(const std::string& key) {
  auto members = kv_.zrange(key, 0, -1);
  if (!members) return members.error();
  // From the newest back: as many as fit both bounds, and the newest whatever its size.
  int64_t kept = 0;
  int64_t bytes = 0;
  for (auto it = members->rbegin(); it != members->rend() && kept < kRetainedEvents; ++it) {
    const auto size = static_cast<int64_t>(it->size());
    if (kept > 0 && bytes + size > kRetainedEventBytes) break;
    bytes += size;
    ++kept;
  }
  if (kept == static_cast<int64_t>(members->size())) return Ok{};
  // Counted from the end, so an event appended since the read is kept (one more old one goes)
  // rather than cut.
  return kv_.zremrangebyrank(key, 0, -(kept + 1));
}

Result<EventLog> SessionStore::events_since(int64_t session_id, int64_t since) {
  EventLog log;
  auto counter = kv_.get(event_counter_key(session_id));
  if (!counter) return counter.error();
  if (*counter) {
    if (auto last = parse_id(**counter)) log.last_seq = *last;
  }
  const std::string key = events_key(session_id);
  auto members = kv_.zrange(key, 0, -1);
  if (!members) return members.error();
  for (const auto& member : *members) {
    auto event = record_json::decode_event(member);
    if (!event) {
      log_skipped(make_error(event.error().code, key + ": an event: " + event.error().message));
      continue;
    }
    if (event->seq > since) log.events.push_back(std::move(*event));
  }
  return log;
}

// ---- server values -----------------------------------------------------------------------

Result<std::optional<std::string>> SessionStore::get_server_value(std::string_view name) {
  return kv_.get(server_value_key(name));
}

Result<void> SessionStore::put_server_value(std::string_view name, std::string_view value) {
  return kv_.set(server_value_key(name), value);
}

}  // namespace hearth::session
