// MapHttpOutcome, row by row (the table in status_mapping.h, from API.md's participant
// contract), and the body excerpts quoted in reasons.
#include "participants/http/status_mapping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace txc::participants::http {
namespace {

using ::testing::HasSubstr;

HttpOutcome Answered(int status, std::string body = "") {
  HttpOutcome outcome;
  outcome.delivery = Delivery::kAnswered;
  outcome.url = "http://127.0.0.1:9002/pay";
  outcome.status = status;
  outcome.body = std::move(body);
  return outcome;
}

struct StatusRow {
  int status;
  CallOutcome expected;
};

class StatusRowTest : public ::testing::TestWithParam<StatusRow> {};

TEST_P(StatusRowTest, MapsAsTheContractSays) {
  const CallResult result = MapHttpOutcome(Answered(GetParam().status, "why"));
  EXPECT_EQ(CallOutcomeName(result.outcome), std::string(CallOutcomeName(GetParam().expected)))
      << "HTTP " << GetParam().status;
  if (result.ok()) {
    EXPECT_EQ(result.reason, "");
  } else {
    EXPECT_THAT(result.reason, HasSubstr("HTTP " + std::to_string(GetParam().status) +
                                         " from http://127.0.0.1:9002/pay"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Contract, StatusRowTest,
    ::testing::Values(
        StatusRow{200, CallOutcome::kOk}, StatusRow{201, CallOutcome::kOk},
        StatusRow{202, CallOutcome::kOk}, StatusRow{204, CallOutcome::kOk},
        StatusRow{299, CallOutcome::kOk}, StatusRow{409, CallOutcome::kRefused},
        StatusRow{408, CallOutcome::kTransient}, StatusRow{425, CallOutcome::kTransient},
        StatusRow{429, CallOutcome::kTransient}, StatusRow{500, CallOutcome::kTransient},
        StatusRow{502, CallOutcome::kTransient}, StatusRow{503, CallOutcome::kTransient},
        StatusRow{504, CallOutcome::kTransient}, StatusRow{599, CallOutcome::kTransient},
        StatusRow{400, CallOutcome::kPermanent}, StatusRow{401, CallOutcome::kPermanent},
        StatusRow{403, CallOutcome::kPermanent}, StatusRow{404, CallOutcome::kPermanent},
        StatusRow{405, CallOutcome::kPermanent}, StatusRow{410, CallOutcome::kPermanent},
        StatusRow{422, CallOutcome::kPermanent}, StatusRow{499, CallOutcome::kPermanent},
        StatusRow{300, CallOutcome::kPermanent}, StatusRow{301, CallOutcome::kPermanent},
        StatusRow{302, CallOutcome::kPermanent}, StatusRow{307, CallOutcome::kPermanent},
        StatusRow{308, CallOutcome::kPermanent}, StatusRow{101, CallOutcome::kPermanent},
        StatusRow{600, CallOutcome::kPermanent}, StatusRow{0, CallOutcome::kPermanent}));

TEST(MapHttpOutcomeTest, ReasonQuotesTheBody) {
  EXPECT_EQ(MapHttpOutcome(Answered(409, "insufficient funds")).reason,
            "HTTP 409 from http://127.0.0.1:9002/pay: insufficient funds");
  EXPECT_EQ(MapHttpOutcome(Answered(404)).reason, "HTTP 404 from http://127.0.0.1:9002/pay");
  EXPECT_EQ(MapHttpOutcome(Answered(301)).reason,
            "HTTP 301 from http://127.0.0.1:9002/pay (redirects are not followed)");
}

TEST(MapHttpOutcomeTest, TransportRows) {
  HttpOutcome outcome;
  outcome.url = "http://127.0.0.1:9/x";
  outcome.detail = "could not connect: Connection refused";

  outcome.delivery = Delivery::kNotSent;
  CallResult result = MapHttpOutcome(outcome);
  EXPECT_EQ(result.outcome, CallOutcome::kTransient);
  EXPECT_EQ(result.reason,
            "not sent to http://127.0.0.1:9/x: could not connect: Connection refused");

  outcome.delivery = Delivery::kTimedOutAfterSend;
  outcome.detail = "no reply within 200 ms";
  result = MapHttpOutcome(outcome);
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown);
  EXPECT_EQ(result.reason,
            "no reply from http://127.0.0.1:9/x: no reply within 200 ms (the request was sent; it "
            "may have taken effect)");

  outcome.delivery = Delivery::kLostAfterSend;
  outcome.detail = "the server closed the connection without replying";
  result = MapHttpOutcome(outcome);
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown);
  EXPECT_THAT(result.reason, HasSubstr("lost after the request was sent"));
  EXPECT_THAT(result.reason, HasSubstr("may have taken effect"));

  outcome.delivery = Delivery::kNoCallForOp;
  outcome.detail = "branch 'b' has no prepare call";
  result = MapHttpOutcome(outcome);
  EXPECT_EQ(result.outcome, CallOutcome::kPermanent);
  EXPECT_EQ(result.reason, "branch 'b' has no prepare call");

  outcome.delivery = Delivery::kInvalidRequest;
  outcome.detail = "gid is not 1-128 of [A-Za-z0-9._-]";
  result = MapHttpOutcome(outcome);
  EXPECT_EQ(result.outcome, CallOutcome::kPermanent);
  EXPECT_THAT(result.reason, HasSubstr("not sent to http://127.0.0.1:9/x: gid"));
}

TEST(BodyExcerptTest, FoldsWhitespaceAndControlCharacters) {
  EXPECT_EQ(BodyExcerpt("  {\"error\":\n\t\"no\\r\"}\r\n"), "{\"error\": \"no\\r\"}");
  EXPECT_EQ(BodyExcerpt(std::string("a\0b\x1b[31mc", 9)), "a b [31mc");
  EXPECT_EQ(BodyExcerpt(""), "");
  EXPECT_EQ(BodyExcerpt("\n\n"), "");
}

TEST(BodyExcerptTest, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(BodyExcerpt("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(BodyExcerpt("a\xff"
                        "b"),
            "a?b");
  EXPECT_EQ(BodyExcerpt("a\xc3"), "a?");               // truncated sequence
  EXPECT_EQ(BodyExcerpt("\xc0\xaf"), "??");            // overlong '/'
  EXPECT_EQ(BodyExcerpt("\xed\xa0\x80"), "???");       // UTF-16 surrogate
  EXPECT_EQ(BodyExcerpt("\xf4\x90\x80\x80"), "????");  // over U+10FFFF
}

TEST(BodyExcerptTest, CutsAtTheBoundNeverInsideACharacter) {
  EXPECT_EQ(BodyExcerpt(std::string(300, 'x')), std::string(200, 'x') + "...");
  EXPECT_EQ(BodyExcerpt("abc", 3), "abc");
  EXPECT_EQ(BodyExcerpt("abcd", 3), "abc...");
  EXPECT_EQ(BodyExcerpt("ab\xc3\xa9", 3), "ab...");  // é is two bytes: it does not fit
}

TEST(MapHttpOutcomeTest, LongBodiesAreQuotedBounded) {
  const CallResult result = MapHttpOutcome(Answered(500, std::string(64 << 10, 'e')));
  EXPECT_EQ(result.outcome, CallOutcome::kTransient);
  EXPECT_LT(result.reason.size(), 300u);
  EXPECT_THAT(result.reason, ::testing::EndsWith("eee..."));
}

}  // namespace
}  // namespace txc::participants::http
