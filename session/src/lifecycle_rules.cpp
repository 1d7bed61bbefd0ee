#include "hearth/session/lifecycle_rules.hpp"

#include <set>

#include "hearth/session/duration.hpp"
#include "hearth/session/states.hpp"

namespace hearth::session {

LifecycleVerdict expired_sessions(int64_t now_ms, const LifecycleSettings& settings,
                                  const std::vector<SessionRecord>& sessions,
                                  const std::map<int64_t, SessionActivity>& activity,
                                  std::map<int64_t, int64_t> finished_since_ms) {
  LifecycleVerdict verdict;
  auto& expired = verdict.expired;
  std::set<int64_t> listed;
  for (const auto& session : sessions) {
    listed.insert(session.id);
    if (is_finished(session.state)) {
      auto [since, inserted] = finished_since_ms.try_emplace(session.id, now_ms);
      if (now_ms - since->second >= settings.state_retain.count()) {
        expired.push_back({session.id, "finished " +
                                           std::to_string(settings.state_retain.count() / 1000) +
                                           " s ago"});
      }
      continue;
    }
    const auto& request = session.request;
    if (request.ttl) {
      auto ttl = parse_duration(*request.ttl);
      if (ttl && now_ms - session.created_ms > ttl->count()) {
        expired.push_back({session.id, "its ttl of " + *request.ttl + " passed"});
        continue;
      }
    }
    auto it = activity.find(session.id);
    if (it == activity.end()) continue;
    const SessionActivity& live = it->second;
    if (request.heartbeat_timeout_s > 0 &&
        now_ms - live.last_request_ms > request.heartbeat_timeout_s * 1000) {
      expired.push_back({session.id, "no request for " + std::to_string(request.heartbeat_timeout_s) +
                                         " s (heartbeatTimeoutInSecond)"});
      continue;
    }
    int64_t idle_limit = settings.session_timeout.count();
    if (request.idle_timeout) {
      if (auto t = parse_duration(*request.idle_timeout)) idle_limit = t->count();
    }
    if (idle_limit > 0 && session.state != SessionState::kBusy && !live.has_work &&
        now_ms - live.last_activity_ms > idle_limit) {
      expired.push_back({session.id, "idle for longer than " + std::to_string(idle_limit / 1000) + " s"});
    }
  }
  // Forget finished-times of sessions that are gone.
  for (auto it = finished_since_ms.begin(); it != finished_since_ms.end();) {
    it = listed.count(it->first) ? std::next(it) : finished_since_ms.erase(it);
  }
  verdict.finished_since_ms = std::move(finished_since_ms);
  return verdict;
}

std::vector<std::string> unused_drivers(int64_t now_ms, std::chrono::milliseconds unused_timeout,
                                        const std::vector<DriverUse>& drivers) {
  std::vector<std::string> unused;
  if (unused_timeout.count() <= 0) return unused;
  for (const auto& d : drivers) {
    if (d.share_level == "user" && !d.pooled && !d.has_sessions && !d.stopping && !d.exited &&
        now_ms - d.last_used_ms > unused_timeout.count()) {
      unused.push_back(d.driver_id);
    }
  }
  return unused;
}

LivenessVerdict judge_liveness(const DriverSilence& driver, std::chrono::steady_clock::time_point now,
                               int64_t now_ms, std::chrono::milliseconds silent_after,
                               std::chrono::milliseconds lost_after) {
  LivenessVerdict verdict;
  if (driver.exited_or_stopping) return verdict;
  if (driver.last_heard) {
    verdict.silent_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - *driver.last_heard);
  } else if (driver.adopted) {
    verdict.silent_for = std::chrono::milliseconds(now_ms - driver.adopted_ms);
  } else {
    return verdict;
  }
  if (verdict.silent_for < silent_after) return verdict;
  verdict.becomes_silent = !driver.silent;
  verdict.lost = verdict.silent_for >= lost_after;
  return verdict;
}

}  // namespace hearth::session
