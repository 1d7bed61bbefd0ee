#pragma once

// What a session (and its driver) is launched with: the fields of a Livy session/batch request
// (MaxCompute's SubmitParam, named for C++), plus Hearth's kind and shareLevel.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"

namespace hearth::clients {

struct SubmitParam {
  std::optional<std::string> file;        // the application (batches)
  std::optional<std::string> proxy_user;
  std::optional<std::string> class_name;  // the main class (batches)
  std::vector<std::string> args;
  std::vector<std::string> jars;
  std::vector<std::string> py_files;
  std::vector<std::string> files;
  std::vector<std::string> archives;
  std::optional<std::string> driver_memory;
  std::optional<int64_t> driver_cores;
  std::optional<std::string> executor_memory;
  std::optional<int64_t> executor_cores;
  std::optional<int64_t> num_executors;
  std::optional<std::string> queue;
  std::optional<std::string> name;
  std::map<std::string, std::string> conf;
  // Hearth session fields.
  std::optional<std::string> kind;         // pyspark, spark, sql, sparkr, shared
  std::optional<std::string> share_level;  // session or user

  // Reads a properties-style text: `key=value` (or `key: value`) lines, `#`/`!` comments, blank
  // lines. Keys are the Livy JSON names: file, proxyUser, className, args, jars, pyFiles, files,
  // archives (comma-separated lists), driverMemory, driverCores, executorMemory, executorCores,
  // numExecutors, queue, name, kind, shareLevel; `conf.KEY=value` and any `spark.*` key go to
  // conf. Error "bad_request" naming the line for an unknown key or a bad number.
  static Result<SubmitParam> parse_properties(std::string_view text);
  static Result<SubmitParam> load_properties(const std::filesystem::path& path);

  // The POST /sessions JSON body (only the fields that are set; file/className/args are batch
  // fields and are left out of it).
  std::string to_session_json() const;
  // The POST /batches JSON body (every field that is set but kind and shareLevel).
  std::string to_batch_json() const;
};

}  // namespace hearth::clients
