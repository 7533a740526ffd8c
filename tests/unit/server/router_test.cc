// The route table: matching, parameters, 404/405 in the API's error format, handler failures.
#include "coordinator/server/router.h"

#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace txc::server {
namespace {

using ::testing::HasSubstr;

// {"error": {"code": ..., "message": ...}} → (code, message); fails the test on another shape.
std::pair<std::string, std::string> ParseError(const Response& response) {
  EXPECT_EQ(response.content_type, "application/json");
  Poco::JSON::Parser parser;
  auto root = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(root->size(), 1u) << response.body;
  auto error = root->getObject("error");
  EXPECT_TRUE(error) << response.body;
  if (!error) return {};
  EXPECT_EQ(error->size(), 2u) << response.body;
  return {error->getValue<std::string>("code"), error->getValue<std::string>("message")};
}

Response Text(std::string body) {
  Response response;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

Request Make(std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  return request;
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_.Add("GET", "/healthz", [](const Request&) { return Text("healthy"); });
    router_.Add("POST", "/v1/transactions",
                [](const Request& r) { return Text("submit " + r.body); });
    router_.Add("GET", "/v1/transactions", [](const Request&) { return Text("list"); });
    router_.Add("GET", "/v1/transactions/{gid}",
                [](const Request& r) { return Text("get " + r.Param("gid")); });
    router_.Add("POST", "/v1/transactions/{gid}/retry",
                [](const Request& r) { return Text("retry " + r.Param("gid")); });
    router_.Add("GET", "/v1/transactions/stats", [](const Request&) { return Text("stats"); });
    router_.Add("GET", "/boom",
                [](const Request&) -> Response { throw std::runtime_error("kaput"); });
  }
  Router router_;
};

TEST_F(RouterTest, RoutesLiteralPaths) {
  EXPECT_EQ(router_.Dispatch(Make("GET", "/healthz")).body, "healthy");
  Request submit = Make("POST", "/v1/transactions");
  submit.body = "{}";
  EXPECT_EQ(router_.Dispatch(submit).body, "submit {}");
  EXPECT_EQ(router_.Dispatch(Make("GET", "/v1/transactions")).body, "list");
}

TEST_F(RouterTest, CapturesParameters) {
  EXPECT_EQ(router_.Dispatch(Make("GET", "/v1/transactions/order-1234")).body, "get order-1234");
  EXPECT_EQ(router_.Dispatch(Make("POST", "/v1/transactions/a.b_c/retry")).body, "retry a.b_c");
}

TEST_F(RouterTest, LiteralSegmentsWinOverParameters) {
  EXPECT_EQ(router_.Dispatch(Make("GET", "/v1/transactions/stats")).body, "stats");
}

TEST_F(RouterTest, UnknownPathIs404InTheErrorFormat) {
  for (const char* path :
       {"/nope", "/healthz/", "/v1/transactions/x/y", "/v1/transactions//retry", "/", "relative"}) {
    Response response = router_.Dispatch(Make("GET", path));
    EXPECT_EQ(response.status, 404) << path;
    auto [code, message] = ParseError(response);
    EXPECT_EQ(code, "not_found") << path;
    EXPECT_THAT(message, HasSubstr(path));
  }
}

TEST_F(RouterTest, KnownPathWrongMethodIs405WithAllow) {
  Response response = router_.Dispatch(Make("DELETE", "/v1/transactions"));
  EXPECT_EQ(response.status, 405);
  ASSERT_NE(response.Header("allow"), nullptr);
  EXPECT_EQ(*response.Header("Allow"), "GET, POST");
  auto [code, message] = ParseError(response);
  EXPECT_EQ(code, "method_not_allowed");
  EXPECT_THAT(message, HasSubstr("DELETE"));

  Response post_health = router_.Dispatch(Make("POST", "/healthz"));
  EXPECT_EQ(post_health.status, 405);
  EXPECT_EQ(*post_health.Header("Allow"), "GET");

  // A parameter route and a literal route both match: Allow is their union.
  Response put_stats = router_.Dispatch(Make("PUT", "/v1/transactions/stats"));
  EXPECT_EQ(put_stats.status, 405);
  EXPECT_EQ(*put_stats.Header("Allow"), "GET");
  EXPECT_EQ(router_.AllowedMethods("/v1/transactions/g1/retry"), "POST");
  EXPECT_EQ(router_.AllowedMethods("/nowhere"), "");
}

TEST_F(RouterTest, ThrowingHandlerIs500) {
  Response response = router_.Dispatch(Make("GET", "/boom"));
  EXPECT_EQ(response.status, 500);
  auto [code, message] = ParseError(response);
  EXPECT_EQ(code, "internal");
  EXPECT_THAT(message, HasSubstr("kaput"));
}

TEST_F(RouterTest, HandlersSeeQueryAndHeaders) {
  Router router;
  router.Add("GET", "/echo", [](const Request& r) {
    const std::string* agent = r.Header("User-Agent");
    return Text(r.query.at("state") + "|" + (agent ? *agent : "none"));
  });
  Request request = Make("GET", "/echo");
  request.query["state"] = "stuck";
  request.headers["user-agent"] = "test";
  EXPECT_EQ(router.Dispatch(request).body, "stuck|test");
}

TEST(RouterDeathTest, DuplicateOrMalformedRoutesAreProgrammerErrors) {
  auto handler = [](const Request&) { return Response{}; };
  EXPECT_DEATH(
      {
        Router router;
        router.Add("GET", "/a/{id}", handler);
        router.Add("GET", "/a/{id}", handler);
      },
      "route added twice");
  EXPECT_DEATH(
      {
        Router router;
        router.Add("GET", "no-slash", handler);
      },
      "starts with");
  EXPECT_DEATH(
      {
        Router router;
        router.Add("GET", "/a/{x}/{x}", handler);
      },
      "named twice");
}

TEST(ErrorResponseTest, EscapesTheMessage) {
  Response response = ErrorResponse(400, "invalid_spec", "branches[1].try.url: \"x\"\n");
  EXPECT_EQ(response.status, 400);
  Poco::JSON::Parser parser;
  auto root = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(root->getObject("error")->getValue<std::string>("message"),
            "branches[1].try.url: \"x\"\n");
  EXPECT_EQ(response.body.find("{\"error\":{\"code\":\"invalid_spec\""), 0u) << response.body;
}

}  // namespace
}  // namespace txc::server
