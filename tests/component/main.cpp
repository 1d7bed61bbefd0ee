// main() of hearth-component-tests: one real redis-server for the whole binary
// (see redis_fixture.hpp), then every test.

#include <gtest/gtest.h>

#include "redis_fixture.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // gtest owns (and deletes) the environment.
  ::testing::AddGlobalTestEnvironment(new hearth::test::RedisEnvironment());
  return RUN_ALL_TESTS();
}
