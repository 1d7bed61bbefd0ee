// The driver-channel codec against PROTOCOL.md: the golden vectors (shared with the Java agent),
// hand-written invalid frames, C++ round trips and a small deterministic mutation fuzz.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "hearth/protocol/codec.hpp"
#include "hearth/protocol/messages.hpp"

namespace hearth::protocol {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

struct Vector {
  std::string name;
  std::string text;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::vector<Vector> load_vectors(const fs::path& directory) {
  std::vector<Vector> vectors;
  if (!fs::is_directory(directory)) return vectors;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      vectors.push_back({entry.path().filename().string(), read_file(entry.path())});
    }
  }
  std::sort(vectors.begin(), vectors.end(),
            [](const Vector& a, const Vector& b) { return a.name < b.name; });
  return vectors;
}

const fs::path kVectors = HEARTH_VECTORS_DIR;

std::vector<Vector> valid_vectors() { return load_vectors(kVectors); }
std::vector<Vector> invalid_vectors() { return load_vectors(kVectors / "invalid"); }

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str(), text.size());
  return document;
}

// Bodies compare key by key, where an absent key equals null: PROTOCOL.md lets an optional field
// be either, and Message cannot tell them apart (std::nullopt), so the encoder writes one form.
// Everything else compares as JSON values (RapidJSON compares numbers numerically).
::testing::AssertionResult same_frame(const rapidjson::Value& expected,
                                      const rapidjson::Value& actual) {
  if (!expected.IsObject() || !actual.IsObject()) {
    return ::testing::AssertionFailure() << "not objects";
  }
  if (expected.MemberCount() != actual.MemberCount()) {
    return ::testing::AssertionFailure() << "envelopes have different keys";
  }
  for (const auto& member : expected.GetObject()) {
    const auto other = actual.FindMember(member.name);
    if (other == actual.MemberEnd()) {
      return ::testing::AssertionFailure() << "envelope key " << member.name.GetString() << " lost";
    }
    if (std::string_view(member.name.GetString()) == "body") continue;
    if (member.value != other->value) {
      return ::testing::AssertionFailure()
             << "envelope key " << member.name.GetString() << " differs";
    }
  }
  const rapidjson::Value& a = expected["body"];
  const rapidjson::Value& b = actual["body"];
  if (!a.IsObject() || !b.IsObject()) return ::testing::AssertionFailure() << "bodies not objects";
  const rapidjson::Value null_value;
  const auto compare_one_way = [&](const rapidjson::Value& from, const rapidjson::Value& to)
      -> ::testing::AssertionResult {
    for (const auto& member : from.GetObject()) {
      const auto other = to.FindMember(member.name);
      const rapidjson::Value& value = other == to.MemberEnd() ? null_value : other->value;
      if (member.value != value) {
        return ::testing::AssertionFailure()
               << "body field " << member.name.GetString() << " differs";
      }
    }
    return ::testing::AssertionSuccess();
  };
  if (auto result = compare_one_way(a, b); !result) return result;
  return compare_one_way(b, a);
}

// The frame of a valid vector, as its "type" string says.
std::string vector_type(const std::string& text) {
  const auto document = parse_json(text);
  return document["type"].GetString();
}

TEST(ProtocolCodec, FindsTheGoldenVectors) {
  // Guards every vector test below against passing vacuously on a wrong path.
  EXPECT_GE(valid_vectors().size(), 15u) << "vectors dir: " << kVectors;
  EXPECT_GE(invalid_vectors().size(), 10u) << "vectors dir: " << kVectors;
}

TEST(ProtocolCodec, ValidVectorsDecodeAndReencodeToTheSameValue) {
  const auto vectors = valid_vectors();
  ASSERT_GE(vectors.size(), 15u);
  std::set<std::string> types_seen;
  for (const auto& vector : vectors) {
    SCOPED_TRACE(vector.name);
    const auto decoded = decode(vector.text);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(type_name(*decoded), vector_type(vector.text));
    types_seen.insert(std::string(type_name(*decoded)));

    const std::string encoded = encode(*decoded);
    const auto original = parse_json(vector.text);
    const auto reencoded = parse_json(encoded);
    ASSERT_FALSE(reencoded.HasParseError()) << encoded;
    EXPECT_TRUE(same_frame(original, reencoded)) << "original: " << vector.text
                                                  << "\nencoded:  " << encoded;

    const auto again = decode(encoded);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, *decoded);
  }
  // Every message type has at least one golden vector.
  EXPECT_EQ(types_seen.size(), std::variant_size_v<Message>);
}

TEST(ProtocolCodec, InvalidVectorsFailToDecode) {
  const auto vectors = invalid_vectors();
  ASSERT_GE(vectors.size(), 10u);
  for (const auto& vector : vectors) {
    SCOPED_TRACE(vector.name);
    const auto decoded = decode(vector.text);
    ASSERT_FALSE(decoded.ok()) << "decoded as " << type_name(*decoded);
    EXPECT_EQ(decoded.error().code, "bad_frame");
    EXPECT_FALSE(decoded.error().message.empty());
  }
}

TEST(ProtocolCodec, ErrorMessagesSayWhatIsWrong) {
  const std::pair<std::string, std::string> cases[] = {
      {"missing_field.json", "execute: missing field 'code'"},
      {"wrong_type.json", "execute: field 'session_id' must be an integer, not a string"},
      {"unknown_body_key.json", "open_session: unknown field 'colour'"},
      {"unknown_envelope_key.json", "envelope: unknown key 'extra'"},
      {"missing_body.json", "envelope: missing key 'body'"},
      {"unknown_type.json", "unknown message type 'teleport'"},
      {"unsupported_version.json", "unsupported protocol version 4"},
      {"hello_v4.json", "unsupported protocol version 4"},
      {"execute_v1.json", "unsupported protocol version 1 for 'execute'"},
      {"execute_v2.json", "unsupported protocol version 2 (this peer speaks 3)"},
      {"driver_state_v2.json", "unsupported protocol version 2"},
      {"driver_state_missing_sessions.json", "driver_state: missing field 'sessions'"},
      {"driver_state_sessions_not_integers.json",
       "driver_state: field 'sessions' must be an array of integers, but holds a string"},
      {"welcome_v1.json", "only hello and reject are sent with version 1"},
      {"job_update_bad_state.json",
       "job_update: field 'state' is 'available', expected one of queued, running, succeeded, "
       "failed, cancelled"},
      {"job_update_progress_out_of_range.json", "job_update: field 'progress' must be in [0, 1]"},
      {"job_update_traceback_not_strings.json",
       "job_update: field 'traceback' must be an array of strings, but holds an integer"},
      {"job_update_error_not_string.json", "job_update: field 'error' must be a string"},
      {"job_update_result_lone_surrogate.json", "job_update: field 'result' holds a string"},
      {"start_job_conf_value_not_string.json",
       "start_job: field 'conf' must be an object of strings, but 'slices' is an integer"},
      {"start_job_conf_not_object.json",
       "start_job: field 'conf' must be an object of strings, not an array"},
      {"start_job_conf_duplicate_key.json",
       "start_job: field 'conf' has the key 'k' more than once"},
      {"start_job_args_missing.json", "start_job: missing field 'args'"},
      {"start_job_jar_not_string.json", "start_job: field 'jar' must be a string, not an array"},
      {"cancel_job_unknown_field.json", "cancel_job: unknown field 'force'"},
      {"bad_state.json", "session_state: field 'state' is 'sleepy'"},
      {"output_not_object.json", "statement_update: field 'output' must be an object or null"},
      {"versions_not_array.json", "hello: field 'versions' must be an array of integers"},
      {"not_object.json", "not an object"},
      {"not_json.json", "not valid JSON"},
  };
  for (const auto& [file, expected] : cases) {
    SCOPED_TRACE(file);
    const auto decoded = decode(read_file(kVectors / "invalid" / file));
    ASSERT_FALSE(decoded.ok());
    EXPECT_NE(decoded.error().message.find(expected), std::string::npos)
        << decoded.error().message;
  }
}

std::string execute_frame(const std::string& session_id) {
  return R"({"v":3,"type":"execute","body":{"session_id":)" + session_id +
         R"(,"statement_id":1,"kind":"pyspark","code":"1"}})";
}

std::string update_frame(const std::string& progress, const std::string& output) {
  return R"({"v":3,"type":"statement_update","body":{"session_id":0,"statement_id":0,)"
         R"("state":"available","progress":)" +
         progress + R"(,"started":1,"completed":2,"output":)" + output + "}}";
}

TEST(ProtocolCodec, RejectsHandWrittenBadFrames) {
  const std::string heartbeat = R"({"v":3,"type":"heartbeat","body":{}})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty frame", ""},
      {"whitespace only", " \n\t"},
      {"trailing garbage", heartbeat + "x"},
      {"second document", heartbeat + "{}"},
      {"NUL after the object", heartbeat + std::string(1, '\0') + "garbage"},
      {"NUL inside", std::string(R"({"v":3,"type":"heart)") + '\0' + R"(beat","body":{}})"},
      {"single quotes", "{'v':2,'type':'heartbeat','body':{}}"},
      {"comment", R"({"v":3,"type":"heartbeat","body":{}} // hi)"},
      {"string frame", R"("hello")"},
      {"null frame", "null"},
      {"v missing", R"({"type":"heartbeat","body":{}})"},
      {"v as double", R"({"v":2.0,"type":"heartbeat","body":{}})"},
      {"v as string", R"({"v":"2","type":"heartbeat","body":{}})"},
      {"v zero", R"({"v":0,"type":"heartbeat","body":{}})"},
      {"v one (before the job API)", R"({"v":1,"type":"heartbeat","body":{}})"},
      {"v two (before resynchronisation)", R"({"v":2,"type":"heartbeat","body":{}})"},
      {"v four", R"({"v":4,"type":"heartbeat","body":{}})"},
      {"v negative", R"({"v":-1,"type":"hello","body":{}})"},
      {"hello v0", R"({"v":0,"type":"reject","body":{"reason":"x"}})"},
      {"unknown type with v1", R"({"v":1,"type":"teleport","body":{}})"},
      {"conf key invalid UTF-8",
       "{\"v\":3,\"type\":\"start_job\",\"body\":{\"session_id\":0,\"job_id\":0,"
       "\"class_name\":\"C\",\"args\":[],\"conf\":{\"\xff\":\"v\"}}}"},
      {"conf value lone surrogate",
       R"({"v":3,"type":"start_job","body":{"session_id":0,"job_id":0,"class_name":"C",)"
       R"("args":[],"conf":{"k":"\udc00"}}})"},
      {"traceback as object",
       R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":0,"state":"failed",)"
       R"("progress":0,"started":0,"completed":0,"traceback":{}}})"},
      {"job progress NaN",
       R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":0,"state":"running",)"
       R"("progress":NaN,"started":0,"completed":0}})"},
      {"job result trailing garbage",
       R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":0,"state":"succeeded",)"
       R"("progress":1,"started":0,"completed":0,"result":1 2}})"},
      {"type missing", R"({"v":3,"body":{}})"},
      {"type not string", R"({"v":3,"type":7,"body":{}})"},
      {"type wrong case", R"({"v":3,"type":"Heartbeat","body":{}})"},
      {"body null", R"({"v":3,"type":"heartbeat","body":null})"},
      {"body array", R"({"v":3,"type":"heartbeat","body":[]})"},
      {"duplicate envelope key", R"({"v":3,"type":"heartbeat","type":"heartbeat","body":{}})"},
      {"duplicate body key",
       R"({"v":3,"type":"close_session","body":{"session_id":1,"session_id":1}})"},
      {"field in empty body", R"({"v":3,"type":"shutdown","body":{"now":true}})"},
      {"int as double", execute_frame("1.5")},
      {"int as 1.0", execute_frame("1.0")},
      {"int as exponent", execute_frame("1e3")},
      {"int as string", execute_frame("\"1\"")},
      {"int as bool", execute_frame("true")},
      {"int as null", execute_frame("null")},
      {"int beyond int64", execute_frame("9223372036854775808")},
      {"int far beyond int64", execute_frame("123456789012345678901234567890")},
      {"NaN", update_frame("NaN", "null")},
      {"Infinity", update_frame("Infinity", "null")},
      {"huge number", update_frame("1e400", "null")},
      {"progress as string", update_frame("\"1\"", "null")},
      {"output array", update_frame("1", "[]")},
      {"output number", update_frame("1", "5")},
      {"output false", update_frame("1", "false")},
      {"output with lone surrogate", update_frame("1", R"({"a":"\udc00"})")},
      {"optional string as number",
       R"({"v":3,"type":"driver_state","body":{"state":"ready","app_id":5,"sessions":[]}})"},
      {"required string null", R"({"v":3,"type":"reject","body":{"reason":null}})"},
      {"driver state outside set",
       R"({"v":3,"type":"driver_state","body":{"state":"busy","sessions":[]}})"},
      {"driver state without sessions", R"({"v":3,"type":"driver_state","body":{"state":"ready"}})"},
      {"driver state sessions null",
       R"({"v":3,"type":"driver_state","body":{"state":"ready","sessions":null}})"},
      {"driver state sessions of strings",
       R"({"v":3,"type":"driver_state","body":{"state":"ready","sessions":["1"]}})"},
      {"driver state session id beyond int64",
       R"({"v":3,"type":"driver_state","body":{"state":"ready","sessions":[9223372036854775808]}})"},
      {"statement state outside set",
       R"({"v":3,"type":"statement_update","body":{"session_id":0,"statement_id":0,)"
       R"("state":"idle","progress":0,"started":0,"completed":0}})"},
      {"versions holding a string",
       R"({"v":3,"type":"hello","body":{"driver_id":"d","secret":"s","versions":[1,"2"],)"
       R"("pid":1,"spark_version":"4"}})"},
      {"invalid UTF-8 byte", "{\"v\":3,\"type\":\"reject\",\"body\":{\"reason\":\"\xff\"}}"},
      {"overlong UTF-8", "{\"v\":3,\"type\":\"reject\",\"body\":{\"reason\":\"\xc0\xaf\"}}"},
      {"raw surrogate UTF-8",
       "{\"v\":3,\"type\":\"reject\",\"body\":{\"reason\":\"\xed\xa0\x80\"}}"},
      {"lone low surrogate escape", R"({"v":3,"type":"reject","body":{"reason":"\udc00"}})"},
      {"lone high surrogate escape", R"({"v":3,"type":"reject","body":{"reason":"\ud800x"}})"},
      {"raw control character", "{\"v\":3,\"type\":\"reject\",\"body\":{\"reason\":\"a\nb\"}}"},
  };
  for (const auto& [what, frame] : cases) {
    SCOPED_TRACE(what);
    const auto decoded = decode(frame);
    ASSERT_FALSE(decoded.ok()) << "decoded as " << type_name(*decoded);
    EXPECT_EQ(decoded.error().code, "bad_frame");
    EXPECT_FALSE(decoded.error().message.empty());
  }
}

TEST(ProtocolCodec, AcceptsWhatTheSpecAllows) {
  // Optional fields absent or null, any key order, whitespace, an integer progress.
  auto decoded = decode(R"( { "body" : { "message" : null, "state" : "ready", "app_id" : null,
                                        "sessions" : [ ] },
                              "type" : "driver_state", "v" : 3 } )");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<DriverStatus>(*decoded), (DriverStatus{"ready", {}, {}, {}, {}}));

  decoded = decode(update_frame("1", "null"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<StatementUpdate>(*decoded).progress, 1.0);
  EXPECT_FALSE(std::get<StatementUpdate>(*decoded).output_json.has_value());

  decoded = decode(execute_frame("-9223372036854775808"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<Execute>(*decoded).session_id, std::numeric_limits<int64_t>::min());

  // The output object is kept whole (nested values, unicode, escapes) as compact JSON.
  decoded = decode(update_frame("0.5", R"( { "a" : [ 1 , 2.5 , null , true , "x\u00e9\"\n" ] ,
                                              "b" : { } , "c" : 18446744073709551615 } )"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<StatementUpdate>(*decoded).output_json,
            R"({"a":[1,2.5,null,true,"x)"
            "\xc3\xa9"
            R"(\"\n"],"b":{},"c":18446744073709551615})");
}

TEST(ProtocolCodec, HelloAndRejectAreReadWithVersionOneOrThreeAndEverythingElseOnlyWithThree) {
  // Every valid vector re-sent with each "v": only hello and reject pass with 1, nothing with
  // 0, 2 (the version before) or 4, everything with 3 (PROTOCOL.md "Versioning").
  const auto vectors = valid_vectors();
  ASSERT_GE(vectors.size(), 15u);
  for (const auto& vector : vectors) {
    SCOPED_TRACE(vector.name);
    const std::string type = vector_type(vector.text);
    const bool handshake = type == "hello" || type == "reject";
    const std::string body = vector.text.substr(vector.text.find(','));  // after {"v":N
    for (const int64_t version : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}}) {
      SCOPED_TRACE(version);
      const auto decoded = decode("{\"v\":" + std::to_string(version) + body);
      const bool expected = version == kVersion || (handshake && version == kHandshakeVersion);
      ASSERT_EQ(decoded.ok(), expected) << (decoded.ok() ? "" : decoded.error().message);
      if (decoded.ok()) {
        EXPECT_EQ(wire_version(*decoded), handshake ? kHandshakeVersion : kVersion);
      }
    }
  }
}

TEST(ProtocolCodec, JobVectorsDecodeToTheirFields) {
  const auto start = decode(read_file(kVectors / "start_job.json"));
  ASSERT_TRUE(start.ok()) << start.error().message;
  EXPECT_EQ(std::get<StartJob>(*start),
            (StartJob{0,
                      3,
                      "com.example.WordCount",
                      {"hdfs:///data/in", "--top", "10"},
                      {{"wordcount.lowercase", "true"}, {"wordcount.stopwords", "a,an,the"}},
                      "file:///var/hearth/artifacts/0/wordcount-1.2.jar"}));
  const auto no_jar = decode(read_file(kVectors / "start_job_no_jar.json"));
  ASSERT_TRUE(no_jar.ok()) << no_jar.error().message;
  EXPECT_EQ(std::get<StartJob>(*no_jar), (StartJob{2, 0, "com.example.Pi", {}, {}, std::nullopt}));

  const auto succeeded = decode(read_file(kVectors / "job_update_succeeded.json"));
  ASSERT_TRUE(succeeded.ok()) << succeeded.error().message;
  const auto& update = std::get<JobUpdate>(*succeeded);
  EXPECT_EQ(update.state, "succeeded");
  EXPECT_EQ(update.progress, 1.0);
  EXPECT_EQ(update.started, 1763770000123);
  EXPECT_EQ(update.completed, 1763770004567);
  EXPECT_EQ(update.result_json, R"({"words":1234,"top":[["the",98],["spark",12]],"ratio":0.25,)"
                                R"("note":")"
                                "\xc3\xbcn\xc3\xaf"
                                R"(code","empty":null})");
  EXPECT_FALSE(update.error.has_value());
  EXPECT_TRUE(update.traceback.empty());

  const auto scalar = decode(read_file(kVectors / "job_update_succeeded_scalar.json"));
  ASSERT_TRUE(scalar.ok()) << scalar.error().message;
  EXPECT_EQ(std::get<JobUpdate>(*scalar).result_json, "3.14159");
  const auto text = decode(read_file(kVectors / "job_update_succeeded_string.json"));
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(std::get<JobUpdate>(*text).result_json, R"("done")");
  // A null result, error and traceback are the same as absent ones.
  const auto none = decode(read_file(kVectors / "job_update_succeeded_no_result.json"));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(std::get<JobUpdate>(*none),
            (JobUpdate{1, 2, "succeeded", 1.0, 1763770000123, 1763770000456, {}, {}, {}}));

  const auto failed = decode(read_file(kVectors / "job_update_failed.json"));
  ASSERT_TRUE(failed.ok()) << failed.error().message;
  const auto& failure = std::get<JobUpdate>(*failed);
  EXPECT_EQ(failure.state, "failed");
  EXPECT_FALSE(failure.result_json.has_value());
  EXPECT_EQ(failure.error, "java.lang.IllegalArgumentException: no such path: hdfs:///data/in");
  ASSERT_EQ(failure.traceback.size(), 3u);
  EXPECT_EQ(failure.traceback[1], "\tat com.example.WordCount.call(WordCount.java:21)");

  const auto cancel = decode(read_file(kVectors / "cancel_job.json"));
  ASSERT_TRUE(cancel.ok()) << cancel.error().message;
  EXPECT_EQ(std::get<CancelJob>(*cancel), (CancelJob{0, 5}));
}

TEST(ProtocolCodec, EncodesJobMessagesAsSpecified) {
  EXPECT_EQ(encode(CancelJob{1, 2}),
            R"({"v":3,"type":"cancel_job","body":{"session_id":1,"job_id":2}})");
  // No jar: the key is left out; conf is written as an object (sorted: it is a std::map).
  EXPECT_EQ(encode(StartJob{0, 7, "a.B", {"x", ""}, {{"z", "1"}, {"a", "2"}}, std::nullopt}),
            R"({"v":3,"type":"start_job","body":{"session_id":0,"job_id":7,"class_name":"a.B",)"
            R"("args":["x",""],"conf":{"a":"2","z":"1"}}})");
  // An empty traceback and absent result and error are left out.
  EXPECT_EQ(encode(JobUpdate{0, 7, "queued", 0, 0, 0, {}, {}, {}}),
            R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":7,"state":"queued",)"
            R"("progress":0.0,"started":0,"completed":0}})");
  // Any JSON value is a result, written compactly.
  EXPECT_EQ(encode(JobUpdate{0, 7, "succeeded", 1, 1, 2, " [ 1 , {\"a\" : true} ] ", {}, {}}),
            R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":7,"state":"succeeded",)"
            R"("progress":1.0,"started":1,"completed":2,"result":[1,{"a":true}]}})");
  EXPECT_EQ(encode(JobUpdate{0, 7, "failed", 0.5, 1, 2, {}, "E: m", {"E: m", "\tat x"}}),
            R"({"v":3,"type":"job_update","body":{"session_id":0,"job_id":7,"state":"failed",)"
            R"("progress":0.5,"started":1,"completed":2,"error":"E: m",)"
            R"("traceback":["E: m","\tat x"]}})");
}

TEST(ProtocolCodec, FrameSizeLimit) {
  const std::string heartbeat = R"({"v":3,"type":"heartbeat","body":{}})";
  std::string at_limit = heartbeat + std::string(kMaxFrameBytes - heartbeat.size(), ' ');
  ASSERT_EQ(at_limit.size(), kMaxFrameBytes);
  const auto accepted = decode(at_limit);
  EXPECT_TRUE(accepted.ok()) << accepted.error().message;

  at_limit.push_back(' ');
  const auto refused = decode(at_limit);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("over the limit"), std::string::npos);
}

TEST(ProtocolCodec, DeepNestingDoesNotOverflowTheStack) {
  // Deep enough that one call frame per level would overflow an 8 MiB stack.
  constexpr std::size_t kDepth = 200'000;
  const std::string arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  EXPECT_FALSE(decode(arrays).ok());
  EXPECT_FALSE(decode(std::string(kDepth, '[')).ok());
  EXPECT_FALSE(decode(std::string(kDepth, '{')).ok());

  // Deep but valid output: accepted (PROTOCOL.md sets no depth limit) and re-encoded.
  const auto decoded = decode(update_frame("1", "{\"a\":" + arrays + "}"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const std::string encoded = encode(*decoded);
  const auto again = decode(encoded);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *decoded);
}

TEST(ProtocolCodec, EncodesCompactFramesWithTheVersion) {
  EXPECT_EQ(encode(Heartbeat{}), R"({"v":3,"type":"heartbeat","body":{}})");
  // hello and reject go out with v 1, which a peer of any version can read.
  EXPECT_EQ(encode(Reject{"no"}), R"({"v":1,"type":"reject","body":{"reason":"no"}})");
  EXPECT_EQ(encode(Hello{"d", "s", {3}, 1, "4"}),
            R"({"v":1,"type":"hello","body":{"driver_id":"d","secret":"s","versions":[3],)"
            R"("pid":1,"spark_version":"4"}})");
  EXPECT_EQ(encode(Welcome{}), R"({"v":3,"type":"welcome","body":{"version":3,"heartbeat_ms":0}})");
  EXPECT_EQ(encode(CloseSession{7}), R"({"v":3,"type":"close_session","body":{"session_id":7}})");
  // driver_state always lists the sessions held, also none.
  EXPECT_EQ(encode(DriverStatus{"stopping", {}, {}, {}, {}}),
            R"({"v":3,"type":"driver_state","body":{"state":"stopping","sessions":[]}})");
  EXPECT_EQ(encode(DriverStatus{"ready", "local-1", {}, {}, {4, 0, 9}}),
            R"({"v":3,"type":"driver_state","body":{"state":"ready","app_id":"local-1",)"
            R"("sessions":[4,0,9]}})");
  // Absent optionals are left out.
  EXPECT_EQ(encode(SessionStatus{3, "idle", {}}),
            R"({"v":3,"type":"session_state","body":{"session_id":3,"state":"idle"}})");
}

const std::string kTrickyText =
    "quotes \" and \\ backslash, newline \n tab \t, NUL \0 inside, unicode \xc3\xbc\xc3\xaf "
    "\xe2\x82\xac \xf0\x9f\x94\xa5, control \x01\x1f, slash /, end"s;

std::vector<Message> sample_messages() {
  return {
      Hello{"d-1", "5f2b9c", {1, 2, 3}, 41231, "4.3.0"},
      Hello{"", "", {}, 0, ""},
      Welcome{1, 2000},
      Reject{"wrong secret: " + kTrickyText},
      Heartbeat{},
      DriverStatus{"ready", "local-1", "http://127.0.0.1:4040", std::nullopt, {}},
      DriverStatus{"ready", "local-1", std::nullopt, std::nullopt,
                   {0, 7, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}},
      DriverStatus{"stopping", {}, {}, {}, {}},
      DriverStatus{"error", {}, {}, kTrickyText, {}},
      OpenSession{std::numeric_limits<int64_t>::max(), "shared"},
      SessionStatus{3, "error", "python3: not found"},
      SessionStatus{0, "idle", {}},
      Execute{0, 12, "pyspark", "x = \"\xc3\xbcn\xc3\xaf" "code\\n\"\nprint(x)\n" + kTrickyText},
      StatementUpdate{0, 12, "running", 0.25, 1763770000123, 0, {}},
      StatementUpdate{1, 2, "available", 1.0, 1763770000123, 1763770000456,
                      R"({"status":"ok","execution_count":2,"data":{"text/plain":"a \"b\"\n)"
                      "\xe2\x82\xac"
                      R"(","application/json":{"schema":{"type":"struct"},)"
                      R"("data":[[1,null,2.5]]}}})"},
      StatementUpdate{0, 1, "available", 1.0, 1, 2,
                      R"({"status":"error","execution_count":1,"ename":"NameError",)"
                      R"("evalue":"x","traceback":["a\n","b\n"]})"},
      StatementUpdate{0, 4, "cancelled", 1.0 / 3.0, -1, std::numeric_limits<int64_t>::min(), "{}"},
      CloseSession{0},
      Shutdown{},
      ErrorReply{"not_authenticated", "send hello first"},
      CancelStatement{4, 9},
      Complete{0, 17, "pyspark", "spark.ran" + kTrickyText, 9},
      Completion{0, 17, {"range", kTrickyText, ""}},
      Completion{1, 18, {}},
      AddArtifact{0, 19, "jar", "file:///var/hearth/artifacts/0/" + kTrickyText},
      ArtifactAdded{0, 19, std::nullopt},
      ArtifactAdded{0, 20, "java.io.FileNotFoundException: " + kTrickyText},
      StartJob{0, 3, "com.example.WordCount", {"in", kTrickyText, ""},
               {{"k", kTrickyText}, {kTrickyText, ""}, {"", "empty key"}},
               "file:///x/" + kTrickyText},
      StartJob{std::numeric_limits<int64_t>::max(), 0, "", {}, {}, std::nullopt},
      JobUpdate{0, 3, "queued", 0, 0, 0, {}, {}, {}},
      JobUpdate{0, 3, "running", 0.25, 1763770000123, 0, {}, {}, {}},
      JobUpdate{0, 3, "succeeded", 1.0, 1, 2, R"({"a":[1,2.5,null,true,"x"],"b":{}})", {}, {}},
      JobUpdate{0, 4, "succeeded", 1.0, 1, 2, "-12", {}, {}},
      JobUpdate{0, 5, "succeeded", 1.0, 1, 2, R"("text \" \n)" "\xe2\x82\xac" R"(")", {}, {}},
      JobUpdate{0, 6, "succeeded", 1.0, 1, 2, "[]", {}, {}},
      JobUpdate{0, 7, "succeeded", 1.0, 1, 2, "false", {}, {}},
      JobUpdate{1, 8, "failed", 1.0 / 3.0, 1, 2, {}, "java.lang.RuntimeException: " + kTrickyText,
                {"java.lang.RuntimeException: boom", "\tat A.b(A.java:1)", kTrickyText}},
      JobUpdate{1, 9, "cancelled", 0.5, -1, std::numeric_limits<int64_t>::min(), {}, {}, {}},
      CancelJob{4, 9},
  };
}

TEST(ProtocolCodec, RoundTripsEveryMessageType) {
  std::set<std::size_t> alternatives;
  for (const Message& message : sample_messages()) {
    SCOPED_TRACE(std::string(type_name(message)));
    alternatives.insert(message.index());
    const std::string frame = encode(message);
    const auto decoded = decode(frame);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message << "\nframe: " << frame;
    EXPECT_EQ(*decoded, message) << "frame: " << frame;
  }
  EXPECT_EQ(alternatives.size(), std::variant_size_v<Message>);
}

TEST(ProtocolCodec, ProgressRoundTripsExactly) {
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> values = {0.0, -0.0, 1.0, 0.1, 1.0 / 3.0, 5e-324, 2.2250738585072014e-308,
                                0.9999999999999999};
  for (int i = 0; i < 2000; ++i) values.push_back(unit(random));
  for (const double progress : values) {
    const Message message = StatementUpdate{0, 0, "running", progress, 0, 0, {}};
    const auto decoded = decode(encode(message));
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(std::get<StatementUpdate>(*decoded).progress, progress) << encode(message);
  }
}

TEST(ProtocolCodec, EncodeReplacesInvalidUtf8SoTheFrameStaysDecodable) {
  const auto decoded = decode(encode(Reject{"bad \xff byte"}));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<Reject>(*decoded).reason, "bad \xef\xbf\xbd byte");
}

TEST(ProtocolCodec, EncodeRefusesAnOutputThatIsNotAnObject) {
  for (const std::string output : {"", "[]", "\"ok\"", "{", "{} {}", "null"}) {
    SCOPED_TRACE(output);
    EXPECT_THROW(encode(StatementUpdate{0, 0, "available", 1, 0, 0, output}),
                 std::invalid_argument);
  }
  EXPECT_THROW(encode(StatementUpdate{0, 0, "running", std::nan(""), 0, 0, {}}),
               std::invalid_argument);
}

TEST(ProtocolCodec, EncodeRefusesAResultThatIsNotOneJsonValue) {
  const std::vector<std::string> results = {"", "{", "1 2", "nan", "'x'", "[1,]", "\"a", "1\0"s};
  for (const std::string& result : results) {
    SCOPED_TRACE(result);
    EXPECT_THROW(encode(JobUpdate{0, 0, "succeeded", 1, 0, 0, result, {}, {}}),
                 std::invalid_argument);
  }
  EXPECT_THROW(encode(JobUpdate{0, 0, "running", std::nan(""), 0, 0, {}, {}, {}}),
               std::invalid_argument);
  const double infinity = std::numeric_limits<double>::infinity();
  EXPECT_THROW(encode(JobUpdate{0, 0, "running", infinity, 0, 0, {}, {}, {}}),
               std::invalid_argument);
}

// Decoding anything must not crash; whatever decodes must re-encode to a frame that decodes to
// the same message.
void check_decode_is_safe(std::string_view frame) {
  const auto decoded = decode(frame);
  if (!decoded.ok()) {
    ASSERT_EQ(decoded.error().code, "bad_frame");
    ASSERT_FALSE(decoded.error().message.empty());
    return;
  }
  const std::string encoded = encode(*decoded);
  const auto again = decode(encoded);
  ASSERT_TRUE(again.ok()) << again.error().message << "\nfrom: " << frame;
  ASSERT_EQ(*again, *decoded) << "from: " << frame;
}

TEST(ProtocolCodec, MutatedVectorsNeverCrash) {
  auto vectors = valid_vectors();
  for (const auto& vector : invalid_vectors()) vectors.push_back(vector);
  ASSERT_GE(vectors.size(), 25u);
  std::mt19937 random(20250101);  // fixed seed: the same inputs on every run
  std::size_t decoded_frames = 0;
  for (const auto& vector : vectors) {
    SCOPED_TRACE(vector.name);
    const std::string& text = vector.text;
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
      check_decode_is_safe(std::string_view(text).substr(0, cut));
      check_decode_is_safe(std::string_view(text).substr(cut));
      ++decoded_frames;
    }
    for (std::size_t offset = 0; offset < text.size(); ++offset) {
      for (const unsigned char flip : {0x01, 0x20, 0x80, 0xff}) {
        std::string mutated = text;
        mutated[offset] = static_cast<char>(static_cast<unsigned char>(mutated[offset]) ^ flip);
        check_decode_is_safe(mutated);
        ++decoded_frames;
      }
      std::string with_byte = text;
      with_byte.insert(offset, 1, static_cast<char>(random() & 0xff));
      check_decode_is_safe(with_byte);
      ++decoded_frames;
    }
    // Random splices of two vectors and random byte runs.
    for (int i = 0; i < 200; ++i) {
      const auto& other = vectors[random() % vectors.size()].text;
      const std::size_t head = random() % (text.size() + 1);
      const std::size_t tail = random() % (other.size() + 1);
      const std::string spliced = text.substr(0, head) + other.substr(tail);
      check_decode_is_safe(spliced);
      std::string noise(random() % 64, '\0');
      for (auto& c : noise) c = static_cast<char>(random() & 0xff);
      check_decode_is_safe(noise);
      decoded_frames += 2;
    }
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(decoded_frames, 10000u);
}

}  // namespace
}  // namespace hearth::protocol
