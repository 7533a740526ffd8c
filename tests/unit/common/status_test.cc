#include "coordinator/common/status.h"

#include <gtest/gtest.h>

namespace txc {
namespace {

TEST(StatusTest, OkByDefault) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status status = Status::Corruption("seg-1.log at offset 42: CRC mismatch");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_EQ(status.ToString(), "corruption: seg-1.log at offset 42: CRC mismatch");
}

Status FailsThenStops(bool fail, int* reached) {
  TXC_RETURN_IF_ERROR(fail ? Status::IoError("disk") : Status::Ok());
  ++*reached;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorStopsOnlyOnError) {
  int reached = 0;
  EXPECT_EQ(FailsThenStops(true, &reached).code(), StatusCode::kIoError);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(FailsThenStops(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::NotFound("gid x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace txc
