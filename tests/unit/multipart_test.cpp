#include <gtest/gtest.h>

#include "hearth/server/multipart.hpp"

namespace hearth::server {
namespace {

TEST(Multipart, SplitsFieldsAndFilesAsRequestsSendsThem) {
  std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"helpers.py\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n"
      "def hello():\r\n    return 'hi'\n\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
      "plain\r\n"
      "--XyZ--\r\n";
  body += std::string("\0binary", 7);  // epilogue bytes are ignored
  auto parts = parse_multipart(body, "XyZ");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "file");
  EXPECT_EQ((*parts)[0].filename, "helpers.py");
  EXPECT_EQ((*parts)[0].data, "def hello():\r\n    return 'hi'\n");
  EXPECT_EQ((*parts)[1].name, "note");
  EXPECT_FALSE((*parts)[1].filename.has_value());
  EXPECT_EQ((*parts)[1].data, "plain");
}

TEST(Multipart, KeepsBinaryDataExactly) {
  std::string data("PK\x03\x04\0\r\n--not-the-boundary\r\n\xff", 28);
  std::string body = "--b\r\nContent-Disposition: form-data; name=\"jar\"; filename=\"a.jar\"\r\n\r\n" +
                     data + "\r\n--b--";
  auto parts = parse_multipart(body, "b");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, data);
}

TEST(Multipart, RefusesMalformedBodies) {
  for (const char* body : {"", "no boundary here", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nunterminated",
                           "--b\r\nno-colon-header\r\n\r\nx\r\n--b--",
                           "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
                           "--bX"}) {
    auto parts = parse_multipart(body, "b");
    ASSERT_FALSE(parts) << body;
    EXPECT_EQ(parts.error().code, "bad_request");
  }
  EXPECT_FALSE(parse_multipart("--\r\n", ""));
}

}  // namespace
}  // namespace hearth::server
