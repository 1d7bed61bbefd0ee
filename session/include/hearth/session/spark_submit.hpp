#pragma once

#include <string>
#include <vector>

#include "hearth/session/records.hpp"

namespace hearth::session {

// Where and how drivers are launched; fixed for the server's lifetime.
struct LaunchSettings {
  std::string spark_home;        // contains bin/spark-submit
  std::string master = "local[*]";
  std::string agent_jar;         // hearth-driver.jar
  std::string python;            // Python for the driver's workers ("" = Spark's default)
  std::string idle_timeout = "10m";  // the agent exits when the server is gone this long
};

// What one launch needs besides the settings.
struct DriverLaunch {
  std::string app_name;
  std::string driver_id;
  std::string server_endpoint;   // tcp://host:port of the driver channel
  std::string secret_file;       // the agent reads and deletes it
};

// The spark-submit command line for a driver hosting one session. Resources of the create
// request become Spark configuration (as Livy maps them); the secret itself never appears.
std::vector<std::string> spark_submit_command(const LaunchSettings& settings,
                                              const SessionRequest& request,
                                              const DriverLaunch& launch);

}  // namespace hearth::session
