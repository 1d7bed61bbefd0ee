#pragma once

// The typed state store: sessions, statements and drivers as JSON records in a KeyValueStore.
//
// Key schema. One key outside the versioned prefix says which schema the database holds, so
// any Hearth server, of whatever version, can read it before it touches anything else:
//
//   hearth:schema                                  integer: the schema version (now 1)
//
// Everything else is under the prefix, default "hearth:v1:"; an incompatible change bumps the
// schema version and the prefix, so an old server never misreads new records:
//
//   hearth:v1:counter:session                      INCR counter; session id = value - 1
//   hearth:v1:sessions                             zset: member "<id>", score <id>
//   hearth:v1:session:<id>                         JSON SessionRecord
//   hearth:v1:session:<id>:counter:statement       INCR counter; statement id = value - 1
//   hearth:v1:session:<id>:statements              zset: member "<sid>", score <sid>
//   hearth:v1:session:<id>:statement:<sid>         JSON StatementRecord
//   hearth:v1:session:<id>:counter:job             INCR counter; job id = value - 1
//   hearth:v1:session:<id>:jobs                    zset: member "<jid>", score <jid>
//   hearth:v1:session:<id>:job:<jid>               JSON JobRecord
//   hearth:v1:session:<id>:counter:event           INCR counter; the last event seq given out
//   hearth:v1:session:<id>:counter:event_bytes     INCRBY counter: bytes of events ever appended
//   hearth:v1:session:<id>:events                  zset: member JSON StoredEvent, score <seq>
//   hearth:v1:drivers                              zset: member "<driver_id>", score created ms
//   hearth:v1:driver:<driver_id>                   JSON DriverRecord
//   hearth:v1:server:<name>                        a value the server keeps about itself
//
// Records are JSON objects with "version": 1. Field names follow the C++ members;
// a statement's output is embedded as a JSON value (not a string holding JSON).
// Decoding is strict: bad JSON, a missing or mistyped field, an unknown state string or
// another version → Error{"corrupt_record", …} naming the key.
//
// A driver record holds the SHA-256 of the driver's secret (secret_sha256, see
// driver_secret.hpp), never the secret: reading Redis is not enough to pose as a driver, and
// it is enough for a restarted server to verify a reconnecting one.
//
// Writes are not transactional (each put is two commands: record, then index entry; delete
// removes the index entry before the record). An index entry without a record is skipped by
// list_*; a record without an index entry (a crash between the two writes of a put) is not
// listed but is still readable by id, and the next put of it repairs the index.
//
// Thread-safe if the KeyValueStore is (both Redis and in-memory stores are): SessionStore keeps
// no mutable state of its own. The KeyValueStore must outlive the SessionStore.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/kv_store.hpp"
#include "hearth/session/records.hpp"

namespace hearth::session {

class SessionStore {
 public:
  // The schema version this server writes, and the oldest one it reads (without migrating).
  static constexpr int64_t kSchemaVersion = 1;
  static constexpr int64_t kOldestReadableSchema = 1;
  static constexpr std::string_view kDefaultPrefix = "hearth:v1:";
  static constexpr std::string_view kDefaultSchemaKey = "hearth:schema";

  // prefix and schema_key are the documented ones unless a test keeps stores apart in one Redis
  // (it then passes "<root>v1:" and "<root>schema", the same layout under another root).
  explicit SessionStore(KeyValueStore& kv, std::string prefix = std::string(kDefaultPrefix),
                        std::string schema_key = std::string(kDefaultSchemaKey));

  // Checks, once at start-up and before any other call, that the database holds a schema this
  // server speaks; store_name names the database in messages (e.g. "Redis unix:///…/redis.sock").
  //  - the schema key holds kSchemaVersion: ok.
  //  - no schema key and no records (none of the counter:session, sessions and drivers keys a
  //    server writes first): a new database; the key is written.
  //  - no schema key but those keys exist: a database of the Hearth release before the schema
  //    key, whose records are version 1. They are adopted: driver records that still hold the
  //    secret itself are rewritten with its digest, then the key is written (the only migration
  //    there is; a failure part-way leaves the key unwritten, so the next start redoes it).
  //  - a newer or an older version, or a value that is no version: Error "schema_mismatch",
  //    a message naming the database, the version found and the one this server speaks.
  // Store failures travel as they are ("store_unavailable", "store_error").
  Result<void> check_schema(std::string_view store_name = "the store");

  // Ids from 0 like Livy: INCR counter:session, minus 1. Never reused, even after delete.
  Result<int64_t> next_session_id();
  // Writes the record and its index entry (overwrites an existing record with the same id).
  Result<void> put_session(const SessionRecord& record);
  // nullopt if there is no such session; "corrupt_record" if it cannot be decoded.
  Result<std::optional<SessionRecord>> get_session(int64_t id);
  // All indexed sessions, ascending id. A corrupt record is logged to stderr and skipped; a
  // missing record (index entry without a record) is skipped silently. Fails only when the
  // store itself fails.
  Result<std::vector<SessionRecord>> list_sessions();
  // Removes the record, its index entry, its statements and jobs, their indexes and
  // counters. Deleting a missing session is not an error.
  Result<void> delete_session(int64_t id);

  // Per session, from 0.
  Result<int64_t> next_statement_id(int64_t session_id);
  // Writes the record and its entry in the session's statement index.
  Result<void> put_statement(const StatementRecord& record);
  // Removes one statement (its record and index entry); a missing one is not an error.
  Result<void> delete_statement(int64_t session_id, int64_t statement_id);
  Result<std::optional<StatementRecord>> get_statement(int64_t session_id, int64_t statement_id);
  // Ascending id; corrupt records are logged to stderr and skipped.
  Result<std::vector<StatementRecord>> list_statements(int64_t session_id);
  // The same for the index ranks first..last (0 = the oldest; -1 = the newest), inclusive.
  Result<std::vector<StatementRecord>> list_statements(int64_t session_id, int64_t first, int64_t last);
  // How many statements the session's index holds (one round trip).
  Result<int64_t> count_statements(int64_t session_id);

  // Per session, from 0.
  Result<int64_t> next_job_id(int64_t session_id);
  // Writes the record and its entry in the session's job index.
  Result<void> put_job(const JobRecord& record);
  Result<std::optional<JobRecord>> get_job(int64_t session_id, int64_t job_id);
  // Ascending id; corrupt records are logged to stderr and skipped.
  Result<std::vector<JobRecord>> list_jobs(int64_t session_id);
  Result<void> delete_job(int64_t session_id, int64_t job_id);

  // Writes the record and its index entry.
  Result<void> put_driver(const DriverRecord& record);
  Result<std::optional<DriverRecord>> get_driver(std::string_view driver_id);
  // All indexed drivers, oldest first; corrupt records are logged and skipped.
  Result<std::vector<DriverRecord>> list_drivers();
  // Removes the record and its index entry; deleting a missing driver is not an error.
  Result<void> delete_driver(std::string_view driver_id);

  // The session's event log (the client channel's events), numbered per session from 1 and
  // removed with the session. It keeps the newest events, at most kRetainedEvents of them and at
  // most kRetainedEventBytes of stored (encoded) events, whichever bound is reached first; the
  // newest event is kept even when it alone is larger. The log is trimmed every
  // kEventTrimPeriod events and whenever another kEventTrimBytes have been appended, so between
  // trims it may hold up to kEventTrimPeriod - 1 events and kEventTrimBytes more.
  // Why these bounds: an event carries the whole resource (a statement's code and output), and a
  // client that was overrun replays what it missed from here, so the log must hold a thousand
  // events of tens of KiB; 32 MiB allows 32 KiB on average. Without the bytes bound a session
  // whose statements print megabytes (frames may be 16 MiB) could keep gigabytes in Redis.
  static constexpr int64_t kRetainedEvents = 1000;
  static constexpr int64_t kRetainedEventBytes = int64_t{32} << 20;
  static constexpr int64_t kEventTrimPeriod = 50;
  static constexpr int64_t kEventTrimBytes = kRetainedEventBytes / 8;
  // Stores one event and returns its seq. kind and body_json (one JSON value) are kept as given.
  Result<int64_t> append_event(int64_t session_id, std::string_view kind, std::string_view body_json);
  // The stored events with seq > since, in order, and the last seq given out (0 when none);
  // an unreadable entry is logged and skipped.
  Result<EventLog> events_since(int64_t session_id, int64_t since);

  // Small values the server keeps about itself rather than about a session (e.g. the driver
  // channel's endpoint, so a restarted server can bind the same port), under
  // <prefix>server:<name>. nullopt when never put.
  Result<std::optional<std::string>> get_server_value(std::string_view name);
  Result<void> put_server_value(std::string_view name, std::string_view value);

  const std::string& prefix() const { return prefix_; }
  const std::string& schema_key() const { return schema_key_; }

 private:
  std::string session_counter_key() const;
  std::string sessions_index_key() const;
  std::string session_key(int64_t id) const;
  std::string statement_counter_key(int64_t session_id) const;
  std::string statements_index_key(int64_t session_id) const;
  std::string statement_key(int64_t session_id, int64_t statement_id) const;
  std::string job_counter_key(int64_t session_id) const;
  std::string jobs_index_key(int64_t session_id) const;
  std::string job_key(int64_t session_id, int64_t job_id) const;
  std::string event_counter_key(int64_t session_id) const;
  std::string event_bytes_counter_key(int64_t session_id) const;
  std::string events_key(int64_t session_id) const;
  std::string drivers_index_key() const;
  std::string driver_key(std::string_view driver_id) const;
  std::string server_value_key(std::string_view name) const;

  // True when any of the keys a server writes first exists (the store is not new).
  Result<bool> holds_records();
  // Rewrites every listed driver record, so none keeps a secret in the clear.
  Result<void> rewrite_driver_records();
  // Cuts the event log at key down to the retained events and bytes (reads the whole log).
  Result<void> trim_events(const std::string& key);

  KeyValueStore& kv_;
  std::string prefix_;
  std::string schema_key_;
};

}  // namespace hearth::session
