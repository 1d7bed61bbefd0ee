// The API's route table against docs/openapi.json: every operation the server answers is
// documented and nothing else, and the operations documented as not served (501) are exactly
// the ones the server answers 501. REST and the ZeroMQ client channel both serve this table.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <set>
#include <sstream>

#include "hearth/server/api.hpp"
#include "hearth/session/kv_store.hpp"
#include "hearth/session/session_manager.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::server {
namespace {

using Operation = std::pair<std::string, std::string>;  // (METHOD, OpenAPI path)

rapidjson::Document openapi() {
  std::ifstream in(std::string(HEARTH_SOURCE_DIR) + "/docs/openapi.json");
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  EXPECT_FALSE(doc.HasParseError());
  return doc;
}

// Replaces each ":name" segment of a route pattern with what `fill` makes of the name.
template <typename Fill>
std::string fill_parameters(const std::string& pattern, Fill fill) {
  std::string out;
  std::istringstream segments(pattern);
  std::string segment;
  while (std::getline(segments, segment, '/')) {
    if (segment.empty()) continue;
    out += '/';
    out += segment.front() == ':' ? fill(segment.substr(1)) : segment;
  }
  return out.empty() ? "/" : out;
}

std::string openapi_path(const std::string& pattern) {
  return fill_parameters(pattern, [](const std::string& name) { return "{" + name + "}"; });
}

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  std::unique_ptr<session::KeyValueStore> kv_ = session::make_in_memory_kv_store();
  session::SessionStore store_{*kv_};
  session::SessionManager sessions_{store_, session::SessionManagerSettings{}};
  Api api_{sessions_, ApiOptions{}};
  rapidjson::Document doc_ = openapi();

  std::set<Operation> served() {
    std::set<Operation> ops;
    for (const auto& route : api_.routes()) {
      ops.insert({route.method, openapi_path(route.pattern)});
    }
    return ops;
  }

  std::set<Operation> documented(bool only_not_served) {
    std::set<Operation> ops;
    for (const auto& path : doc_["paths"].GetObject()) {
      for (const auto& op : path.value.GetObject()) {
        std::string method = op.name.GetString();
        if (method != "get" && method != "post" && method != "delete") continue;
        if (only_not_served && !op.value["responses"].HasMember("501")) continue;
        ops.insert({upper(method), path.name.GetString()});
      }
    }
    return ops;
  }
};

TEST_F(ApiRoutesTest, EveryRouteIsDocumentedAndNothingElse) {
  auto routes = served();
  auto docs = documented(false);
  ASSERT_GE(routes.size(), 30u);
  for (const auto& op : routes) EXPECT_TRUE(docs.count(op)) << op.first << " " << op.second << " is not documented";
  for (const auto& op : docs) EXPECT_TRUE(routes.count(op)) << op.first << " " << op.second << " is not served";
}

TEST_F(ApiRoutesTest, TheNotServedOperationsAnswer501AndTheOthersDoNot) {
  auto not_served = documented(true);
  ASSERT_FALSE(not_served.empty());
  for (const auto& route : api_.routes()) {
    ApiRequest request;
    request.method = route.method;
    // Unknown ids and empty bodies: every served operation fails before reaching a driver.
    request.path = fill_parameters(route.pattern, [](const std::string&) { return std::string("404404"); });
    auto answer = api_.handle(request);
    Operation op{route.method, openapi_path(route.pattern)};
    EXPECT_EQ(answer.status == 501, not_served.count(op) == 1) << op.first << " " << op.second << " -> "
                                                                << answer.status << " " << answer.body;
  }
}

TEST_F(ApiRoutesTest, UnknownPathsAndMethodsAre404WithAMessage) {
  for (auto [method, path] : {Operation{"GET", "/nope"}, Operation{"PUT", "/sessions"},
                              Operation{"POST", "/sessions/1/statements/2/3"}}) {
    auto answer = api_.handle(ApiRequest{method, path, {}, "", std::nullopt, std::nullopt, std::nullopt});
    EXPECT_EQ(answer.status, 404);
    EXPECT_EQ(answer.body, "{\"msg\":\"no such resource: " + path + "\"}");
  }
}

TEST(ApiTargetTest, SplitsPathAndDecodesTheQuery) {
  auto [path, query] = Api::split_target("/sessions/7/log?from=1&size=%32%30&name=a+b&flag&from=9");
  EXPECT_EQ(path, "/sessions/7/log");
  EXPECT_EQ(query, (std::map<std::string, std::string>{{"from", "1"}, {"size", "20"}, {"name", "a b"}, {"flag", ""}}));
  EXPECT_EQ(Api::split_target("/version").first, "/version");
  EXPECT_TRUE(Api::split_target("/version?").second.empty());
  EXPECT_EQ(Api::split_target("/x?bad=%zz%4").second.at("bad"), "%zz%4");
}

TEST(ApiTargetTest, UploadFields) {
  EXPECT_EQ(Api::upload_field("/sessions/3/upload-jar"), "jar");
  EXPECT_EQ(Api::upload_field("/sessions/name/upload-pyfile"), "file");
  EXPECT_EQ(Api::upload_field("/sessions/3/upload-file"), "file");
  EXPECT_EQ(Api::upload_field("/sessions/3/add-jar"), std::nullopt);
  EXPECT_EQ(Api::upload_field("/upload-jar"), std::nullopt);
}

TEST(ApiErrorTableTest, CodesToStatuses) {
  EXPECT_EQ(Api::status_for("bad_request"), 400);
  EXPECT_EQ(Api::status_for("session_not_active"), 400);
  EXPECT_EQ(Api::status_for("not_found"), 404);
  EXPECT_EQ(Api::status_for("statement_not_found"), 404);
  EXPECT_EQ(Api::status_for("too_large"), 413);
  EXPECT_EQ(Api::status_for("store_unavailable"), 503);
  EXPECT_EQ(Api::status_for("something_else"), 500);
  auto internal = Api::error_response(make_error("store_error", "secret detail"));
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace hearth::server
