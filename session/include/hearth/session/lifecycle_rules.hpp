#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hearth/session/records.hpp"

namespace hearth::session {

// Livy's session lifecycle rules (livy.server.session.*) as a function of plain inputs, so they
// are testable with any clock. Times are milliseconds since the epoch.
struct LifecycleSettings {
  std::chrono::milliseconds session_timeout{0};  // idle limit without the session's idleTimeout; 0 = never
  std::chrono::milliseconds state_retain{0};     // how long a finished session is kept
};

// What the server knows of a session it holds on a driver.
struct SessionActivity {
  int64_t last_activity_ms = 0;  // statements, cancel, completion, connect
  int64_t last_request_ms = 0;   // any request about it
  bool has_work = false;         // unfinished statements or jobs
};

struct ExpiredSession {
  int64_t session_id = 0;
  std::string reason;  // for the log
  bool operator==(const ExpiredSession&) const = default;
};

struct LifecycleVerdict {
  std::vector<ExpiredSession> expired;  // in the order of `sessions`
  // Since when each listed finished session has been seen finished: the next call's input.
  // Sessions no longer listed are dropped from it.
  std::map<int64_t, int64_t> finished_since_ms;
};

// The sessions that must go at `now_ms`: a finished one state_retain after it was first seen
// finished; an unfinished one when older than its ttl, with no request within its
// heartbeatTimeoutInSecond, or idle (not busy, no unfinished work) longer than its idleTimeout
// (else settings.session_timeout). Sessions missing from `activity` only expire by ttl or once
// finished.
LifecycleVerdict expired_sessions(int64_t now_ms, const LifecycleSettings& settings,
                                  const std::vector<SessionRecord>& sessions,
                                  const std::map<int64_t, SessionActivity>& activity,
                                  std::map<int64_t, int64_t> finished_since_ms);

// What the server knows of a driver for the unused-driver rule.
struct DriverUse {
  std::string driver_id;
  std::string share_level;  // "session" or "user"
  bool pooled = false;
  bool has_sessions = false;
  bool stopping = false;
  bool exited = false;
  int64_t last_used_ms = 0;
};

// Shared ("user") drivers, not pooled, without a session, neither stopping nor exited, unused
// for longer than `unused_timeout` (0 = never), in the order given.
std::vector<std::string> unused_drivers(int64_t now_ms, std::chrono::milliseconds unused_timeout,
                                        const std::vector<DriverUse>& drivers);

// What the server knows of a driver's liveness.
struct DriverSilence {
  bool exited_or_stopping = false;  // not judged
  // When the channel last heard from it; nullopt while it has not connected.
  std::optional<std::chrono::steady_clock::time_point> last_heard;
  bool adopted = false;     // from an earlier server process: silent since adopted_ms until heard
  int64_t adopted_ms = 0;   // milliseconds since the epoch
  bool silent = false;      // already judged silent
};

struct LivenessVerdict {
  std::chrono::milliseconds silent_for{0};
  bool becomes_silent = false;  // silent for silent_after, not judged so before: sessions recover
  bool lost = false;            // silent for silent_after and lost_after: given up
};

// The liveness rule: a driver launched by this server and not connected yet is not judged (its
// process is watched); an adopted one counts as silent since it was adopted.
LivenessVerdict judge_liveness(const DriverSilence& driver, std::chrono::steady_clock::time_point now,
                               int64_t now_ms, std::chrono::milliseconds silent_after,
                               std::chrono::milliseconds lost_after);

}  // namespace hearth::session
