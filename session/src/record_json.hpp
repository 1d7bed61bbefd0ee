#pragma once

// JSON codec for the records SessionStore keeps (private to hearth::session).
// Format: one JSON object per record with "version": 1 and snake_case field names matching the
// C++ members; optionals are written as null; a statement's output is embedded as a JSON value.

#include <string>
#include <string_view>

#include "hearth/protocol/result.hpp"
#include "hearth/session/records.hpp"

namespace hearth::session::record_json {

inline constexpr int kRecordVersion = 1;

std::string encode_session(const SessionRecord& record);
// Error "invalid_record" if output_json is not valid JSON or progress is not finite: such a
// record would be unreadable, so it is refused before it is written.
Result<std::string> encode_statement(const StatementRecord& record);
std::string encode_driver(const DriverRecord& record);
// Error "invalid_record" if result_json is not valid JSON or progress is not finite.
Result<std::string> encode_job(const JobRecord& record);

// Strict: bad JSON, another version, a missing required field, a wrong type or an unknown state
// string → Error{"corrupt_record", <what is wrong>}. Missing optional fields read as nullopt and
// unknown fields are ignored (so a later version-1 writer may add fields).
//
// A driver's secret_sha256 must be 64 lowercase hex digits (an empty one — a record that never
// had a secret — reads as empty). A driver record of the release before the schema key, which
// held the secret itself in "secret" and no "secret_sha256", reads as the secret's digest.
//
// output_json is returned in RapidJSON's compact form, which equals the stored text whenever it
// was compact JSON written by RapidJSON (no insignificant whitespace, no \u escapes for
// non-ASCII characters).
Result<SessionRecord> decode_session(std::string_view json);
Result<StatementRecord> decode_statement(std::string_view json);
Result<DriverRecord> decode_driver(std::string_view json);
Result<JobRecord> decode_job(std::string_view json);

// A stored event: {"version":1,"seq":…,"kind":…,"body":<the JSON value>}. body_json must hold
// one JSON value (the caller renders it); if it does not, null is stored instead.
std::string encode_event(const StoredEvent& event);
Result<StoredEvent> decode_event(std::string_view json);

}  // namespace hearth::session::record_json
