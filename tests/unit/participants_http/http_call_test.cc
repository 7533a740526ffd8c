// HttpCall and HttpUrl: what a submission's call object may hold, and that every refusal names
// the field it is about (it becomes the 400 answer).
#include "participants/http/http_call.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace txc::participants::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

HttpUrl MustParse(const std::string& text) {
  Result<HttpUrl> url = ParseHttpUrl(text, "url");
  EXPECT_TRUE(url.ok()) << text << ": " << url.status().ToString();
  return url.ok() ? *url : HttpUrl{};
}

TEST(ParseHttpUrlTest, NormalisesHostCaseAndMakesThePortExplicit) {
  const HttpUrl url = MustParse("HTTP://Payments.Internal/Pay?Amount=30");
  EXPECT_EQ(url.host, "payments.internal");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.target, "/Pay?Amount=30");  // paths and queries are case-sensitive
  EXPECT_EQ(url.Normalized(), "http://payments.internal:80/Pay?Amount=30");
  EXPECT_EQ(url.Redacted(), "http://payments.internal:80/Pay");
  EXPECT_EQ(url.HostHeader(), "payments.internal");
}

TEST(ParseHttpUrlTest, KeepsAnExplicitPortAndDefaultsThePath) {
  const HttpUrl url = MustParse("http://127.0.0.1:9001");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 9001);
  EXPECT_EQ(url.target, "/");
  EXPECT_EQ(url.HostHeader(), "127.0.0.1:9001");
  EXPECT_EQ(MustParse("http://127.0.0.1:9001?x=1").target, "/?x=1");
}

TEST(ParseHttpUrlTest, AcceptsIpv6LiteralsInBrackets) {
  const HttpUrl url = MustParse("http://[::1]:9001/x");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 9001);
  EXPECT_EQ(url.Authority(), "[::1]:9001");
  EXPECT_EQ(url.Normalized(), "http://[::1]:9001/x");
}

TEST(ParseHttpUrlTest, AcceptsPercentEscapesAndSubDelimiters) {
  EXPECT_EQ(MustParse("http://h/a%20b/c;v=1,2?q=a+b&r=$").target, "/a%20b/c;v=1,2?q=a+b&r=$");
}

struct BadUrl {
  const char* url;
  const char* message;  // expected in the error after "f.url: "
};

class ParseHttpUrlRefusesTest : public ::testing::TestWithParam<BadUrl> {};

TEST_P(ParseHttpUrlRefusesTest, NamesTheFieldAndSaysWhy) {
  Result<HttpUrl> url = ParseHttpUrl(GetParam().url, "branches[1].prepare.url");
  ASSERT_FALSE(url.ok()) << GetParam().url;
  EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(url.status().message(), StartsWith("branches[1].prepare.url: "));
  EXPECT_THAT(url.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseHttpUrlRefusesTest,
    ::testing::Values(BadUrl{"", "is empty"}, BadUrl{"127.0.0.1:9001/x", "absolute http:// URL"},
                      BadUrl{"https://127.0.0.1/x", "https is not supported yet"},
                      BadUrl{"ftp://127.0.0.1/x", "scheme 'ftp' is not supported"},
                      BadUrl{"http:///x", "has no host"},
                      BadUrl{"http://user:pw@127.0.0.1/x", "user:password@"},
                      BadUrl{"http://127.0.0.1:/x", "port is empty"},
                      BadUrl{"http://127.0.0.1:0/x", "port 0 is not from 1 to 65535"},
                      BadUrl{"http://127.0.0.1:65536/x", "port 65536 is not from 1 to 65535"},
                      BadUrl{"http://127.0.0.1:80a/x", "is not a number"},
                      BadUrl{"http://exa mple/x", "space, control or non-ASCII"},
                      BadUrl{"http://h/x\r\nHost: evil", "space, control or non-ASCII"},
                      BadUrl{"http://h/caf\xc3\xa9", "non-ASCII"},
                      BadUrl{"http://ex!ample/x", "host 'ex!ample' contains '!'"},
                      BadUrl{"http://payments.internal./x", "empty label"},
                      BadUrl{"http://[::1/x", "lacks its ']'"},
                      BadUrl{"http://[zz::1]/x", "is not an IPv6 address"},
                      BadUrl{"http://h/x#frag", "#fragment"},
                      BadUrl{"http://h/a%2", "not followed by two hex digits"},
                      BadUrl{"http://h/a%zz", "not followed by two hex digits"},
                      BadUrl{"http://h/a<b", "must be percent-encoded"},
                      BadUrl{"http://h/a\\b", "must be percent-encoded"},
                      BadUrl{"http://h/public/../admin", "'.' or '..' segments"},
                      BadUrl{"http://h/public/%2e%2E/admin", "'.' or '..' segments"},
                      BadUrl{"http://h/./x", "'.' or '..' segments"},
                      BadUrl{"http://h/x/..", "'.' or '..' segments"}));

TEST(ParseHttpUrlTest, RefusesAnOverlongUrl) {
  Result<HttpUrl> url = ParseHttpUrl("http://h/" + std::string(kUrlBytesMax, 'a'), "f");
  ASSERT_FALSE(url.ok());
  EXPECT_THAT(url.status().message(), HasSubstr("longer than 2048 bytes"));
}

HttpCallSpec Spec(std::string url) {
  HttpCallSpec spec;
  spec.url = std::move(url);
  return spec;
}

TEST(HttpCallTest, DefaultsArePostAndFiveSeconds) {
  Result<HttpCall> call = HttpCall::Create(Spec("http://127.0.0.1:9001/pay"), "branches[0].try");
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_EQ(call->method(), "POST");
  EXPECT_EQ(call->timeout_ms(), 5000);
  EXPECT_EQ(call->body(), "");
  EXPECT_EQ(call->url().port, 9001);
  EXPECT_EQ(call->url_text(), "http://127.0.0.1:9001/pay");
}

TEST(HttpCallTest, KeepsEveryField) {
  HttpCallSpec spec = Spec("http://127.0.0.1:9001/pay");
  spec.method = "PUT";
  spec.body = R"({"amount":30})";
  spec.headers = {{"Authorization", "Bearer t0k"}, {"X-Tenant", "acme"}};
  spec.timeout_ms = 300000;
  Result<HttpCall> call = HttpCall::Create(spec, "branches[0].try");
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_EQ(call->method(), "PUT");
  EXPECT_EQ(call->body(), R"({"amount":30})");
  EXPECT_EQ(call->headers().at("X-Tenant"), "acme");
  EXPECT_EQ(call->timeout_ms(), 300000);
}

Status CreateError(const HttpCallSpec& spec) {
  Result<HttpCall> call = HttpCall::Create(spec, "branches[1].prepare");
  return call.ok() ? Status::Ok() : call.status();
}

TEST(HttpCallTest, UrlErrorsNameTheUrlField) {
  const Status status = CreateError(Spec("https://127.0.0.1/x"));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), StartsWith("branches[1].prepare.url: https is not supported"));
}

TEST(HttpCallTest, RefusesMethodsThatCarryNoOperation) {
  for (const char* method : {"HEAD", "OPTIONS", "CONNECT", "TRACE", "post", "POTS", ""}) {
    HttpCallSpec spec = Spec("http://h/x");
    spec.method = method;
    EXPECT_THAT(CreateError(spec).message(),
                StartsWith("branches[1].prepare.method: '" + std::string(method) +
                           "' is not one of GET, POST, PUT, PATCH, DELETE"));
  }
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    HttpCallSpec spec = Spec("http://h/x");
    spec.method = method;
    EXPECT_TRUE(CreateError(spec).ok()) << method;
  }
}

TEST(HttpCallTest, BoundsTheTimeout) {
  for (int64_t timeout_ms : {int64_t{0}, int64_t{-5}, int64_t{300001}}) {
    HttpCallSpec spec = Spec("http://h/x");
    spec.timeout_ms = timeout_ms;
    EXPECT_THAT(CreateError(spec).message(),
                StartsWith("branches[1].prepare.timeout_ms: " + std::to_string(timeout_ms) +
                           " is not from 1 to 300000"));
  }
  HttpCallSpec spec = Spec("http://h/x");
  spec.timeout_ms = 1;
  EXPECT_TRUE(CreateError(spec).ok());
}

TEST(HttpCallTest, BoundsTheBody) {
  HttpCallSpec spec = Spec("http://h/x");
  spec.body = std::string(kCallBodyBytesMax + 1, ' ');
  EXPECT_THAT(CreateError(spec).message(), StartsWith("branches[1].prepare.body: is larger than"));
}

TEST(HttpCallTest, RefusesHeadersTxcoordSetsWhateverTheirCase) {
  for (const char* name : {"Txc-Gid", "txc-branch", "TXC-OP", "Txc-Anything", "Idempotency-Key",
                           "idempotency-key", "traceparent", "Traceparent", "Host",
                           "Content-Length", "Transfer-Encoding", "Connection", "Expect"}) {
    HttpCallSpec spec = Spec("http://h/x");
    spec.headers = {{name, "x"}};
    EXPECT_THAT(CreateError(spec).message(), StartsWith("branches[1].prepare.headers." +
                                                        std::string(name) + ": is set by txcoord"))
        << name;
  }
}

TEST(HttpCallTest, AllowsContentTypeAndOrdinaryHeaders) {
  HttpCallSpec spec = Spec("http://h/x");
  spec.headers = {{"Content-Type", "application/merge-patch+json"},
                  {"Authorization", "Bearer x"},
                  {"tracestate", "k=v"},
                  {"X-Weird", "tab\tand UTF-8 caf\xc3\xa9"}};
  EXPECT_TRUE(CreateError(spec).ok()) << CreateError(spec).ToString();
}

TEST(HttpCallTest, RefusesHeaderInjectionAndBadNames) {
  HttpCallSpec spec = Spec("http://h/x");
  spec.headers = {{"X-A", "ok\r\nTxc-Gid: forged"}};
  EXPECT_THAT(CreateError(spec).message(),
              StartsWith("branches[1].prepare.headers.X-A: value contains a control character"));
  spec.headers = {{"X A", "v"}};
  EXPECT_THAT(CreateError(spec).message(),
              StartsWith("branches[1].prepare.headers: 'X A' is not a valid header name"));
  spec.headers = {{"", "v"}};
  EXPECT_THAT(CreateError(spec).message(), HasSubstr("is not a valid header name"));
  spec.headers = {{"X-Tenant", "a"}, {"x-tenant", "b"}};
  EXPECT_THAT(CreateError(spec).message(), HasSubstr("is given twice"));
  spec.headers = {{"X-Big", std::string(kHeaderValueBytesMax + 1, 'v')}};
  EXPECT_THAT(CreateError(spec).message(), HasSubstr("value is longer than 4096 bytes"));
}

TEST(HttpCallTest, BoundsTheNumberOfHeaders) {
  HttpCallSpec spec = Spec("http://h/x");
  for (size_t i = 0; i <= kCallHeadersMax; ++i) spec.headers["X-H" + std::to_string(i)] = "v";
  EXPECT_THAT(CreateError(spec).message(),
              StartsWith("branches[1].prepare.headers: has 33 headers; at most 32"));
}

}  // namespace
}  // namespace txc::participants::http
