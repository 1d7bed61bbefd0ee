#include "hearth/session/recovery.hpp"

#include <map>

#include "hearth/session/states.hpp"

namespace hearth::session {
namespace {

struct Unfinished {
  std::vector<int64_t> statements, jobs;
};

Result<Unfinished> unfinished_work(SessionStore& store, int64_t session_id) {
  Unfinished out;
  auto statements = store.list_statements(session_id);
  if (!statements) return statements.error();
  for (const auto& s : *statements) {
    if (!is_terminal(s.state)) out.statements.push_back(s.id);
  }
  auto jobs = store.list_jobs(session_id);
  if (!jobs) return jobs.error();
  for (const auto& j : *jobs) {
    if (!is_terminal(j.state)) out.jobs.push_back(j.id);
  }
  return out;
}

}  // namespace

Result<RecoveryPlan> plan_recovery(SessionStore& store) {
  RecoveryPlan plan;
  auto drivers = store.list_drivers();
  if (!drivers) return drivers.error();
  std::map<std::string, std::size_t> live_drivers;  // id → index in plan.drivers
  for (auto& record : *drivers) {
    if (is_finished(record.state)) {
      plan.finished_drivers.push_back(record.id);
      continue;
    }
    live_drivers[record.id] = plan.drivers.size();
    plan.drivers.push_back(AdoptedDriver{std::move(record), {}});
  }

  auto sessions = store.list_sessions();
  if (!sessions) return sessions.error();
  for (auto& record : *sessions) {
    if (is_finished(record.state)) continue;
    auto work = unfinished_work(store, record.id);
    if (!work) return work.error();
    auto driver = live_drivers.find(record.driver_id);
    if (record.driver_id.empty() || driver == live_drivers.end() ||
        record.state == SessionState::kShuttingDown) {
      std::string reason =
          record.state == SessionState::kShuttingDown
              ? "The server stopped while the session was shutting down."
              : "The server restarted and the session's driver is gone.";
      plan.orphans.push_back(OrphanedSession{std::move(record), std::move(reason),
                                             std::move(work->statements), std::move(work->jobs)});
      continue;
    }
    plan.drivers[driver->second].sessions.push_back(record.id);
    plan.sessions.push_back(
        AdoptedSession{std::move(record), std::move(work->statements), std::move(work->jobs)});
  }
  return plan;
}

}  // namespace hearth::session
