#include "hearth/session/spark_submit.hpp"

#include <map>
#include <numeric>

namespace hearth::session {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

}  // namespace

std::vector<std::string> spark_submit_command(const LaunchSettings& settings,
                                              const SessionRequest& request,
                                              const DriverLaunch& launch) {
  // Request conf first, then the named request fields, which win as in Livy.
  std::map<std::string, std::string> conf = request.conf;
  auto set_if = [&conf](const char* key, const auto& value) {
    if (value) {
      if constexpr (std::is_same_v<std::decay_t<decltype(*value)>, std::string>) {
        conf[key] = *value;
      } else {
        conf[key] = std::to_string(*value);
      }
    }
  };
  set_if("spark.driver.memory", request.driver_memory);
  set_if("spark.driver.cores", request.driver_cores);
  set_if("spark.executor.memory", request.executor_memory);
  set_if("spark.executor.cores", request.executor_cores);
  set_if("spark.executor.instances", request.num_executors);
  set_if("spark.yarn.queue", request.queue);
  auto merge_list = [&conf](const char* key, const std::vector<std::string>& items) {
    if (items.empty()) return;
    std::string value = join(items);
    if (auto it = conf.find(key); it != conf.end() && !it->second.empty()) {
      value += "," + it->second;
    }
    conf[key] = value;
  };
  merge_list("spark.jars", request.jars);
  merge_list("spark.submit.pyFiles", request.py_files);
  merge_list("spark.files", request.files);
  merge_list("spark.archives", request.archives);
  // Each statement runs in its session's FAIR pool so one heavy job cannot starve the rest.
  conf.try_emplace("spark.scheduler.mode", "FAIR");
  if (!settings.python.empty()) conf.try_emplace("spark.pyspark.python", settings.python);

  std::vector<std::string> argv = {
      settings.spark_home + "/bin/spark-submit",
      "--master", settings.master,
      "--name", launch.app_name,
      "--class", "io.hearth.driver.HearthDriver",
  };
  for (const auto& [key, value] : conf) {
    argv.push_back("--conf");
    argv.push_back(key + "=" + value);
  }
  argv.insert(argv.end(), {
      settings.agent_jar,
      "--server", launch.server_endpoint,
      "--driver-id", launch.driver_id,
      "--secret-file", launch.secret_file,
      "--idle-timeout", settings.idle_timeout,
  });
  return argv;
}

}  // namespace hearth::session
