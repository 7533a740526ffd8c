// participants.allow: patterns match part by part on the normalised URL; everything else is
// refused with a reason that names the field.
#include "participants/http/target_allowlist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace txc::participants::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TargetAllowlist MustCreate(const std::vector<std::string>& patterns) {
  Result<TargetAllowlist> allowlist = TargetAllowlist::Create(patterns);
  EXPECT_TRUE(allowlist.ok()) << allowlist.status().ToString();
  return allowlist.ok() ? *allowlist : *TargetAllowlist::Create({});
}

TEST(GlobMatchesTest, StarMatchesAnyRunIncludingNone) {
  EXPECT_TRUE(GlobMatches("*", ""));
  EXPECT_TRUE(GlobMatches("*", "anything/at?all"));
  EXPECT_TRUE(GlobMatches("/orders/*", "/orders/"));
  EXPECT_TRUE(GlobMatches("/orders/*", "/orders/1/cancel?x=1"));
  EXPECT_FALSE(GlobMatches("/orders/*", "/orders"));
  EXPECT_TRUE(GlobMatches("*.internal", "a.b.internal"));
  EXPECT_FALSE(GlobMatches("*.internal", "internal"));
  EXPECT_TRUE(GlobMatches("a*b*c", "axxbyyc"));
  EXPECT_FALSE(GlobMatches("a*b*c", "axxbyy"));
  EXPECT_TRUE(GlobMatches("abc", "abc"));
  EXPECT_FALSE(GlobMatches("abc", "abcd"));
  EXPECT_TRUE(GlobMatches("**", "x"));
}

TEST(TargetAllowlistTest, AnyPortOnLoopbackMatchesEveryPathOnIt) {
  const TargetAllowlist allowlist = MustCreate({"http://127.0.0.1:*"});
  EXPECT_TRUE(allowlist.Allows("http://127.0.0.1:9001/x"));
  EXPECT_TRUE(allowlist.Allows("http://127.0.0.1/x"));  // port 80 made explicit
  EXPECT_TRUE(allowlist.Allows("HTTP://127.0.0.1:9002/pay?amount=3"));
  EXPECT_FALSE(allowlist.Allows("http://127.0.0.2:9001/x"));
  EXPECT_FALSE(allowlist.Allows("http://localhost:9001/x"));
  // A '*' never crosses into another part of the URL.
  EXPECT_FALSE(allowlist.Allows("http://127.0.0.1.evil.example:9001/x"));
  EXPECT_FALSE(allowlist.Allows("http://127.0.0.1:9001@evil.example/x"));  // not a valid URL
}

TEST(TargetAllowlistTest, HostAndPortAndPathPattern) {
  const TargetAllowlist allowlist = MustCreate({"http://payments.internal:8080/*"});
  EXPECT_TRUE(allowlist.Allows("http://payments.internal:8080/pay"));
  EXPECT_TRUE(allowlist.Allows("http://PAYMENTS.internal:8080/"));
  EXPECT_FALSE(allowlist.Allows("http://payments.internal/pay"));  // port 80
  EXPECT_FALSE(allowlist.Allows("http://payments.internal:8081/pay"));
  EXPECT_FALSE(allowlist.Allows("http://payments.internal.evil:8080/pay"));
}

TEST(TargetAllowlistTest, NoPortInAPatternMeansPort80) {
  const TargetAllowlist allowlist = MustCreate({"http://orders.internal"});
  EXPECT_TRUE(allowlist.Allows("http://orders.internal/x"));
  EXPECT_TRUE(allowlist.Allows("http://orders.internal:80/x"));
  EXPECT_FALSE(allowlist.Allows("http://orders.internal:8080/x"));
}

TEST(TargetAllowlistTest, PathPatternsMatchTheWholePathAndQuery) {
  const TargetAllowlist allowlist =
      MustCreate({"http://*.internal:*/txc/*", "http://10.0.0.5:9000/exact"});
  EXPECT_TRUE(allowlist.Allows("http://a.b.internal:1/txc/pay"));
  EXPECT_FALSE(allowlist.Allows("http://a.b.internal:1/admin"));
  EXPECT_FALSE(allowlist.Allows("http://internal:1/txc/pay"));
  EXPECT_TRUE(allowlist.Allows("http://10.0.0.5:9000/exact"));
  EXPECT_FALSE(allowlist.Allows("http://10.0.0.5:9000/exact?x=1"));
  EXPECT_FALSE(allowlist.Allows("http://10.0.0.5:9000/exactly"));
  // Dot segments are refused by the URL parser, so they cannot climb out of /txc/.
  EXPECT_FALSE(allowlist.Allows("http://a.internal:1/txc/../admin"));
}

TEST(TargetAllowlistTest, AnIpv4PatternMatchesAddressesNotNames) {
  const TargetAllowlist allowlist = MustCreate({"http://10.0.0.*:*", "http://10.1.*:80"});
  EXPECT_TRUE(allowlist.Allows("http://10.0.0.7:9001/x"));
  EXPECT_TRUE(allowlist.Allows("http://10.1.2.3/x"));
  EXPECT_FALSE(allowlist.Allows("http://10.0.0.evil.example:9001/x"));
  EXPECT_FALSE(allowlist.Allows("http://10.1.evil.example/x"));
  EXPECT_FALSE(allowlist.Allows("http://10.0.0.07:9001/x"));  // not the one spelling
  EXPECT_FALSE(allowlist.Allows("http://10.0.0.256:9001/x"));
  // A name pattern still matches names.
  EXPECT_TRUE(MustCreate({"http://*:*"}).Allows("http://payments.internal:1/x"));
}

TEST(TargetAllowlistTest, Ipv6Patterns) {
  const TargetAllowlist allowlist = MustCreate({"http://[::1]:*"});
  EXPECT_TRUE(allowlist.Allows("http://[::1]:9001/x"));
  EXPECT_FALSE(allowlist.Allows("http://[::2]:9001/x"));
}

TEST(TargetAllowlistTest, AnEmptyListAllowsNothing) {
  const TargetAllowlist allowlist = MustCreate({});
  EXPECT_FALSE(allowlist.Allows("http://127.0.0.1:9001/x"));
}

TEST(TargetAllowlistTest, CheckNamesTheFieldAndTheUrlWithoutItsQuery) {
  const TargetAllowlist allowlist = MustCreate({"http://127.0.0.1:*"});
  Result<HttpUrl> url = ParseHttpUrl("http://10.1.2.3:9001/pay?token=secret", "u");
  ASSERT_TRUE(url.ok());
  const Status status = allowlist.Check(*url, "branches[1].prepare.url");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              StartsWith("branches[1].prepare.url: http://10.1.2.3:9001/pay is not allowed"));
  EXPECT_THAT(status.message(), HasSubstr("participants.allow"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("secret")));

  Result<HttpUrl> allowed = ParseHttpUrl("http://127.0.0.1:9001/pay", "u");
  ASSERT_TRUE(allowed.ok());
  EXPECT_TRUE(allowlist.Check(*allowed, "f").ok());
}

TEST(TargetAllowlistTest, RefusesBadPatternsNamingThem) {
  const auto error = [](const std::vector<std::string>& patterns) {
    Result<TargetAllowlist> allowlist = TargetAllowlist::Create(patterns);
    return allowlist.ok() ? std::string("ok") : allowlist.status().message();
  };
  EXPECT_THAT(error({"http://127.0.0.1:*", "127.0.0.1:*"}),
              StartsWith("participants.allow[1]: '127.0.0.1:*' must start with http://"));
  EXPECT_THAT(error({"https://h:*"}), StartsWith("participants.allow[0]: "));
  EXPECT_THAT(error({"http://:80"}), HasSubstr("has no host"));
  EXPECT_THAT(error({"http://h:"}), HasSubstr("port pattern must be digits or '*'"));
  EXPECT_THAT(error({"http://h:8x"}), HasSubstr("port pattern must be digits or '*'"));
  EXPECT_THAT(error({"http://h:70000"}), HasSubstr("port is not from 1 to 65535"));
  EXPECT_THAT(error({"http://h!:80"}), HasSubstr("host pattern"));
  EXPECT_THAT(error({"http://h:80/a b"}), HasSubstr("space, control or non-ASCII"));
  EXPECT_THAT(error({"http://h:80/x#y"}), HasSubstr("#fragment"));
  EXPECT_THAT(error(std::vector<std::string>(kAllowPatternsMax + 1, "http://h")),
              StartsWith("participants.allow: has 257 patterns; at most 256"));
}

}  // namespace
}  // namespace txc::participants::http
