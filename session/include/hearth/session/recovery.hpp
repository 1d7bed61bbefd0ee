#pragma once

// What a starting server takes over from the store: the drivers an earlier server process (or
// this one, before a crash) launched and that may still run, the sessions on them with their
// unfinished work, and the active sessions that cannot come back.
//
// plan_recovery only reads; the SessionManager applies the plan (marks the adopted sessions
// `recovering`, ends the orphans, waits for the adopted drivers to reconnect). Each record is
// read on its own: a corrupt one is skipped by the store with a log line naming its key, so one
// bad record never stops a start.

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/records.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::session {

// A session whose driver is still on record: it is adopted and waits for the driver.
struct AdoptedSession {
  SessionRecord record;
  // Unfinished statements and jobs, ascending id: they are handed to the driver again once it
  // has reconnected (the agent runs each id once, see protocol/PROTOCOL.md).
  std::vector<int64_t> unfinished_statements;
  std::vector<int64_t> unfinished_jobs;
};

// A driver on record that has not finished: adopted until it reconnects or is declared lost.
struct AdoptedDriver {
  DriverRecord record;
  std::vector<int64_t> sessions;  // the adopted sessions on it, ascending
};

// An active session that cannot be recovered (no driver on record, or its driver finished):
// it ends `dead` with `reason`, and so does its unfinished work.
struct OrphanedSession {
  SessionRecord record;
  std::string reason;
  std::vector<int64_t> unfinished_statements;
  std::vector<int64_t> unfinished_jobs;
};

struct RecoveryPlan {
  std::vector<AdoptedDriver> drivers;
  std::vector<AdoptedSession> sessions;
  std::vector<OrphanedSession> orphans;
  // Finished driver records (dead, error): to be deleted.
  std::vector<std::string> finished_drivers;
};

// Reads sessions, drivers and the unfinished statements and jobs of every active session.
// Fails only when the store fails ("store_unavailable", "store_error").
Result<RecoveryPlan> plan_recovery(SessionStore& store);

}  // namespace hearth::session
