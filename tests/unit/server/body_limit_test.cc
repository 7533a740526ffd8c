// Bodies are never read past limit + 1 bytes.
#include "coordinator/server/body_limit.h"

#include <gtest/gtest.h>

#include <sstream>

namespace txc::server {
namespace {

TEST(BodyLimitTest, DeclaredLengthOverTheLimitIsRefusedUnread) {
  EXPECT_FALSE(DeclaredLengthTooLarge(std::nullopt, 10));
  EXPECT_FALSE(DeclaredLengthTooLarge(0, 10));
  EXPECT_FALSE(DeclaredLengthTooLarge(10, 10));
  EXPECT_TRUE(DeclaredLengthTooLarge(11, 10));
  EXPECT_TRUE(DeclaredLengthTooLarge(UINT64_MAX, 10));
}

TEST(BodyLimitTest, ReadsABodyUpToTheLimit) {
  std::istringstream in(std::string(10, 'x'));
  std::string body;
  EXPECT_EQ(ReadBodyBounded(in, 10, &body), BodyReadOutcome::kComplete);
  EXPECT_EQ(body, std::string(10, 'x'));

  std::istringstream empty("");
  EXPECT_EQ(ReadBodyBounded(empty, 10, &body), BodyReadOutcome::kComplete);
  EXPECT_EQ(body, "");
}

TEST(BodyLimitTest, StopsOneByteOverTheLimit) {
  const std::string sent(300'000, 'y');
  std::istringstream in(sent);
  std::string body;
  EXPECT_EQ(ReadBodyBounded(in, 100'000, &body), BodyReadOutcome::kTooLarge);
  EXPECT_EQ(body.size(), 100'001u);
  // The rest was left in the stream, not read.
  EXPECT_EQ(static_cast<size_t>(in.tellg()), 100'001u);
}

TEST(BodyLimitTest, ABrokenStreamIsReported) {
  std::istringstream in("abc");
  in.setstate(std::ios::badbit);
  std::string body;
  EXPECT_EQ(ReadBodyBounded(in, 10, &body), BodyReadOutcome::kBroken);
}

TEST(BodyLimitTest, MessageNamesTheLimitKey) {
  EXPECT_EQ(BodyTooLargeMessage(5),
            "the request body is larger than limits.max_body_bytes (5 bytes)");
}

}  // namespace
}  // namespace txc::server
