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
      {"unsupported_version.json", "unsupported protocol version 2"},
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
  return R"({"v":1,"type":"execute","body":{"session_id":)" + session_id +
         R"(,"statement_id":1,"kind":"pyspark","code":"1"}})";
}

std::string update_frame(const std::string& progress, const std::string& output) {
  return R"({"v":1,"type":"statement_update","body":{"session_id":0,"statement_id":0,)"
         R"("state":"available","progress":)" +
         progress + R"(,"started":1,"completed":2,"output":)" + output + "}}";
}

TEST(ProtocolCodec, RejectsHandWrittenBadFrames) {
  const std::string heartbeat = R"({"v":1,"type":"heartbeat","body":{}})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty frame", ""},
      {"whitespace only", " \n\t"},
      {"trailing garbage", heartbeat + "x"},
      {"second document", heartbeat + "{}"},
      {"NUL after the object", heartbeat + std::string(1, '\0') + "garbage"},
      {"NUL inside", std::string(R"({"v":1,"type":"heart)") + '\0' + R"(beat","body":{}})"},
      {"single quotes", "{'v':1,'type':'heartbeat','body':{}}"},
      {"comment", R"({"v":1,"type":"heartbeat","body":{}} // hi)"},
      {"string frame", R"("hello")"},
      {"null frame", "null"},
      {"v missing", R"({"type":"heartbeat","body":{}})"},
      {"v as double", R"({"v":1.0,"type":"heartbeat","body":{}})"},
      {"v as string", R"({"v":"1","type":"heartbeat","body":{}})"},
      {"v zero", R"({"v":0,"type":"heartbeat","body":{}})"},
      {"type missing", R"({"v":1,"body":{}})"},
      {"type not string", R"({"v":1,"type":7,"body":{}})"},
      {"type wrong case", R"({"v":1,"type":"Heartbeat","body":{}})"},
      {"body null", R"({"v":1,"type":"heartbeat","body":null})"},
      {"body array", R"({"v":1,"type":"heartbeat","body":[]})"},
      {"duplicate envelope key", R"({"v":1,"type":"heartbeat","type":"heartbeat","body":{}})"},
      {"duplicate body key",
       R"({"v":1,"type":"close_session","body":{"session_id":1,"session_id":1}})"},
      {"field in empty body", R"({"v":1,"type":"shutdown","body":{"now":true}})"},
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
       R"({"v":1,"type":"driver_state","body":{"state":"ready","app_id":5}})"},
      {"required string null", R"({"v":1,"type":"reject","body":{"reason":null}})"},
      {"driver state outside set", R"({"v":1,"type":"driver_state","body":{"state":"busy"}})"},
      {"statement state outside set",
       R"({"v":1,"type":"statement_update","body":{"session_id":0,"statement_id":0,)"
       R"("state":"idle","progress":0,"started":0,"completed":0}})"},
      {"versions holding a string",
       R"({"v":1,"type":"hello","body":{"driver_id":"d","secret":"s","versions":[1,"2"],)"
       R"("pid":1,"spark_version":"4"}})"},
      {"invalid UTF-8 byte", "{\"v\":1,\"type\":\"reject\",\"body\":{\"reason\":\"\xff\"}}"},
      {"overlong UTF-8", "{\"v\":1,\"type\":\"reject\",\"body\":{\"reason\":\"\xc0\xaf\"}}"},
      {"raw surrogate UTF-8",
       "{\"v\":1,\"type\":\"reject\",\"body\":{\"reason\":\"\xed\xa0\x80\"}}"},
      {"lone low surrogate escape", R"({"v":1,"type":"reject","body":{"reason":"\udc00"}})"},
      {"lone high surrogate escape", R"({"v":1,"type":"reject","body":{"reason":"\ud800x"}})"},
      {"raw control character", "{\"v\":1,\"type\":\"reject\",\"body\":{\"reason\":\"a\nb\"}}"},
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
  auto decoded = decode(R"( { "body" : { "message" : null, "state" : "ready", "app_id" : null },
                              "type" : "driver_state", "v" : 1 } )");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<DriverStatus>(*decoded), (DriverStatus{"ready", {}, {}, {}}));

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

TEST(ProtocolCodec, FrameSizeLimit) {
  const std::string heartbeat = R"({"v":1,"type":"heartbeat","body":{}})";
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
  EXPECT_EQ(encode(Heartbeat{}), R"({"v":1,"type":"heartbeat","body":{}})");
  EXPECT_EQ(encode(CloseSession{7}), R"({"v":1,"type":"close_session","body":{"session_id":7}})");
  // Absent optionals are left out.
  EXPECT_EQ(encode(SessionStatus{3, "idle", {}}),
            R"({"v":1,"type":"session_state","body":{"session_id":3,"state":"idle"}})");
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
      DriverStatus{"ready", "local-1", "http://127.0.0.1:4040", std::nullopt},
      DriverStatus{"stopping", {}, {}, {}},
      DriverStatus{"error", {}, {}, kTrickyText},
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
