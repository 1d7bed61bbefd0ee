#pragma once

// The typed state store: sessions, statements and drivers as JSON records in a KeyValueStore.
//
// Key schema (all under the prefix, default "hearth:v1:"; bump the version on an incompatible
// change so an old server never misreads new records):
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
//   hearth:v1:drivers                              zset: member "<driver_id>", score created ms
//   hearth:v1:driver:<driver_id>                   JSON DriverRecord
//
// Records are JSON objects with "version": 1. Field names follow the C++ members;
// a statement's output is embedded as a JSON value (not a string holding JSON).
// Decoding is strict: bad JSON, a missing or mistyped field, an unknown state string or
// another version → Error{"corrupt_record", …} naming the key.
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
  explicit SessionStore(KeyValueStore& kv, std::string prefix = "hearth:v1:");

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

  // The session's event log (the client channel's events): numbered per session from 1, the
  // last kRetainedEvents kept (a few more until the next trim). Removed with the session.
  static constexpr int64_t kRetainedEvents = 1000;
  // Stores one event and returns its seq. kind and body_json (one JSON value) are kept as given.
  Result<int64_t> append_event(int64_t session_id, std::string_view kind, std::string_view body_json);
  // The stored events with seq > since, in order, and the last seq given out (0 when none);
  // an unreadable entry is logged and skipped.
  Result<EventLog> events_since(int64_t session_id, int64_t since);

  const std::string& prefix() const { return prefix_; }

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
  std::string events_key(int64_t session_id) const;
  std::string drivers_index_key() const;
  std::string driver_key(std::string_view driver_id) const;

  KeyValueStore& kv_;
  std::string prefix_;
};

}  // namespace hearth::session
