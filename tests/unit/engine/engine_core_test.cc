#include "coordinator/engine/engine_core.h"

#include <gtest/gtest.h>

namespace txc::engine {
namespace {

TEST(BackoffTest, DoublesUpToTheCapWithEqualJitter) {
  const RetryPolicy policy{100, 1000};
  for (uint64_t random : {0ull, 1ull, 12345ull, ~0ull}) {
    const int64_t first = BackoffDelayMs(policy, 1, false, random);
    EXPECT_GE(first, 50);
    EXPECT_LE(first, 100);
    const int64_t third = BackoffDelayMs(policy, 3, false, random);
    EXPECT_GE(third, 200);
    EXPECT_LE(third, 400);
    const int64_t capped = BackoffDelayMs(policy, 60, false, random);  // no overflow
    EXPECT_GE(capped, 500);
    EXPECT_LE(capped, 1000);
    const int64_t longest = BackoffDelayMs(policy, 1, true, random);
    EXPECT_GE(longest, 500);
    EXPECT_LE(longest, 1000);
  }
  // The jitter spreads: not every random gives the same delay.
  EXPECT_NE(BackoffDelayMs(policy, 4, false, 3), BackoffDelayMs(policy, 4, false, 250));
}

}  // namespace
}  // namespace txc::engine
