// One logfmt line per event, values quoted only when they must be.
#include "coordinator/server/structured_logger.h"

#include <gtest/gtest.h>

#include <sstream>

namespace txc::server {
namespace {

TEST(StructuredLoggerTest, WritesOneLogfmtLinePerEvent) {
  ManualClock clock(1'800'000'000'123);
  std::ostringstream out;
  StructuredLogger logger(out, clock);
  logger.Info("listening", {{"listen", "127.0.0.1:8080"}, {"node_id", "c1"}});
  logger.Error("log_open_failed", {{"error", "failed_precondition: \"dir\" is locked\nby x"}});
  logger.Warn("empty", {{"value", ""}});
  EXPECT_EQ(out.str(),
            "ts=2027-01-15T08:00:00.123Z level=info event=listening listen=127.0.0.1:8080 "
            "node_id=c1\n"
            "ts=2027-01-15T08:00:00.123Z level=error event=log_open_failed "
            "error=\"failed_precondition: \\\"dir\\\" is locked\\nby x\"\n"
            "ts=2027-01-15T08:00:00.123Z level=warn event=empty value=\"\"\n");
}

TEST(StructuredLoggerTest, WritesOneJsonObjectPerLineWhenAskedTo) {
  ManualClock clock(1'800'000'000'123);
  std::ostringstream out;
  StructuredLogger logger(out, clock);
  logger.SetFormat(LogFormat::kJson);
  logger.Warn("transaction_stuck",
              {{"gid", "order-1"}, {"why", "branch \"a\" needs\tan\noperator\x01"}});
  EXPECT_EQ(
      out.str(),
      "{\"ts\":\"2027-01-15T08:00:00.123Z\",\"level\":\"warn\",\"event\":\"transaction_stuck\","
      "\"gid\":\"order-1\",\"why\":\"branch \\\"a\\\" needs\\tan\\noperator\\u0001\"}\n");
}

TEST(StructuredLoggerTest, FormatsUtcMilliseconds) {
  EXPECT_EQ(FormatUtcMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatUtcMillis(1'000'000'000'007), "2001-09-09T01:46:40.007Z");
}

}  // namespace
}  // namespace txc::server
