#include "hearth/session/records.hpp"

namespace hearth::session {

DriverProfile profile_of(const SessionRequest& request) {
  DriverProfile profile;
  profile.driver_memory = request.driver_memory;
  profile.executor_memory = request.executor_memory;
  profile.queue = request.queue;
  profile.driver_cores = request.driver_cores;
  profile.executor_cores = request.executor_cores;
  profile.num_executors = request.num_executors;
  profile.conf = request.conf;
  return profile;
}

}  // namespace hearth::session
