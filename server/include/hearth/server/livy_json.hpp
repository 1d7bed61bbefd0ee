#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/protocol/result.hpp"
#include "hearth/session/records.hpp"

namespace hearth::server {

// Livy's JSON, both ways: request bodies parsed strictly (unknown fields and wrong types are
// "bad_request" errors, as Livy's Jackson mapping rejects them) and responses rendered with
// exactly Livy's key sets.

// Session kinds as Livy accepts them, normalized: scala→spark, python→pyspark, r→sparkr.
std::optional<std::string> normalize_session_kind(std::string_view kind);
// Statement kinds: pyspark, spark, sql, sparkr (with the same aliases).
std::optional<std::string> normalize_statement_kind(std::string_view kind);

Result<session::SessionRequest> parse_create_session(std::string_view body);

struct StatementRequest {
  std::string code;
  std::optional<std::string> kind;  // normalized
};
Result<StatementRequest> parse_create_statement(std::string_view body);

struct CompletionRequest {
  std::string code;
  std::string kind;     // normalized; required, as in Livy
  int64_t cursor = -1;  // absent: the end of code
};
Result<CompletionRequest> parse_completion(std::string_view body);
std::string render_candidates(const std::vector<std::string>& candidates);

// The {"uri": …} body of add-jar, add-pyfile and add-file.
Result<std::string> parse_add_artifact(std::string_view body);
// Which artifact URIs a client may add (Livy's livy.file.local-dir-whitelist): remote schemes
// pass; a local path (file: or absolute, no scheme) only below a whitelisted directory.
// Returns the URI to hand to Spark.
Result<std::string> check_artifact_uri(std::string_view uri, const std::vector<std::string>& whitelist);

std::string render_session(const session::SessionRecord& session,
                           const std::vector<std::string>& log_tail);
std::string render_session_list(int64_t from, int64_t total,
                                const std::vector<std::string>& rendered_sessions);
std::string render_statement(const session::StatementRecord& statement);
std::string render_statement_list(int64_t total, const std::vector<std::string>& rendered);
std::string render_state(int64_t id, std::string_view state);
std::string render_log(int64_t id, int64_t from, int64_t total, const std::vector<std::string>& lines);
std::string render_version(std::string_view version);
std::string render_message(std::string_view message);  // {"msg": …}

// Client channel bodies: {"lines": […]} of a log event; {"upload": name, "bytes": n} answering
// an upload part; {"session": id|null, "seq": n} answering (un)subscribe.
std::string render_log_lines(const std::vector<std::string>& lines);
std::string render_upload_progress(std::string_view upload, int64_t bytes);
std::string render_subscription(std::optional<int64_t> session, int64_t seq);

// Hearth's own resources (not Livy's): drivers and jobs.
std::string render_driver(const session::DriverView& driver);
std::string render_driver_list(const std::vector<std::string>& rendered);
// {"className": …, "jar": …, "args": […], "conf": {…}}; className is required.
Result<session::JobRequest> parse_start_job(std::string_view body);
std::string render_job(const session::JobRecord& job);
std::string render_job_list(int64_t total, const std::vector<std::string>& rendered);

}  // namespace hearth::server
