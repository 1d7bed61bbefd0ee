#pragma once

// The JSON of the REST resources (docs/rest-api.md, docs/jobs.md, docs/shared-drivers.md) as the
// client library reads and writes it, in one place. Private to hearth::clients (the unit tests
// include it). Readers are lenient about extra keys (the server may add some) and strict about
// the ones they need: a missing or mistyped required key is Error "server_error" (a reply the
// library cannot read is the server's fault, not the caller's).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/clients/client.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::clients::detail {

// ---- reading replies and event bodies ----
Result<Session> session_from_json(std::string_view json);
// A statement JSON has no session id; the caller knows it.
Result<Statement> statement_from_json(std::string_view json, int64_t session_id);
// A job JSON carries "sessionId"; `session_id` is used when it is absent.
Result<Job> job_from_json(std::string_view json, int64_t session_id);
Result<Driver> driver_from_json(std::string_view json);

// {"sessions": [...]}, {"statements": [...]}, {"jobs": [...]}, {"drivers": [...]}.
Result<std::vector<Session>> sessions_from_json(std::string_view json);
Result<std::vector<Statement>> statements_from_json(std::string_view json, int64_t session_id);
Result<std::vector<Job>> jobs_from_json(std::string_view json, int64_t session_id);
Result<std::vector<Driver>> drivers_from_json(std::string_view json);
// {"log": [...]} of GET /sessions/{id}/log.
Result<std::vector<std::string>> log_from_json(std::string_view json);
// {"candidates": [...]} of POST /sessions/{id}/completion.
Result<std::vector<std::string>> candidates_from_json(std::string_view json);
// An integer member of a JSON object ("total" of a list, "seq" of a subscribe reply);
// `fallback` when it is missing or the text is not such an object.
int64_t int_field_of(std::string_view json, const char* key, int64_t fallback = 0);
// The "msg" of an error body {"msg": "..."}; the body itself when it is not such an object.
std::string error_message_of(std::string_view body_json);

// ---- writing request bodies ----
// A JSON string literal (quotes and escapes included).
std::string json_string(std::string_view text);
// {"code": ..., "kind": ...?} of POST /sessions/{id}/statements.
std::string statement_request_json(std::string_view code, const std::optional<std::string>& kind);
// {"code", "kind", "cursor"} of POST /sessions/{id}/completion.
std::string completion_request_json(std::string_view code, std::string_view kind, int64_t cursor);
// {"className", "jar"?, "args", "conf"} of POST /sessions/{id}/jobs.
std::string job_request_json(const JobSpec& spec);
// {"uri": ...} of POST /sessions/{id}/add-jar.
std::string uri_request_json(std::string_view uri);

}  // namespace hearth::clients::detail
