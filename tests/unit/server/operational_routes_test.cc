// /healthz, /readyz (and its transitions), /v1/info and /metrics, at the handler level.
#include "coordinator/server/operational_routes.h"

#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/server/fake_decision_log.h"

namespace txc::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Poco::JSON::Object::Ptr ParseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

class OperationalRoutesTest : public ::testing::Test {
 protected:
  OperationalRoutesTest() : readiness_(&log_) {
    OperationalContext context;
    context.node_id = "node-a";
    context.log = &log_;
    context.readiness = &readiness_;
    context.metrics = &metrics_;
    context.before_scrape = [this] { ++scrapes_; };
    AddOperationalRoutes(router_, std::move(context));
  }

  Response Get(const std::string& path) {
    Request request;
    request.method = "GET";
    request.path = path;
    return router_.Dispatch(request);
  }

  testing::FakeDecisionLog log_;
  Readiness readiness_;
  metrics::CoordinatorMetrics metrics_{{"orders"}};
  Router router_;
  int scrapes_ = 0;
};

TEST_F(OperationalRoutesTest, HealthzIsAlwaysOk) {
  Response response = Get("/healthz");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(response.body, R"({"status":"ok"})");
  log_.Poison(Status::IoError("disk gone"));
  EXPECT_EQ(Get("/healthz").status, 200);  // alive, even when not ready
}

TEST_F(OperationalRoutesTest, ReadyzFollowsRecoveryLogHealthAndShutdown) {
  Response recovering = Get("/readyz");
  EXPECT_EQ(recovering.status, 503);
  auto error = ParseObject(recovering.body)->getObject("error");
  EXPECT_EQ(error->getValue<std::string>("code"), "not_ready");
  EXPECT_THAT(error->getValue<std::string>("message"), HasSubstr("recovering"));
  ASSERT_NE(recovering.Header("Retry-After"), nullptr);

  readiness_.MarkRecoveryFinished();
  Response ready = Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"({"status":"ready"})");

  log_.Poison(Status::IoError("fdatasync seg-000001.log: Input/output error"));
  Response sick = Get("/readyz");
  EXPECT_EQ(sick.status, 503);
  auto sick_error = ParseObject(sick.body)->getObject("error");
  EXPECT_EQ(sick_error->getValue<std::string>("code"), "not_ready");
  EXPECT_THAT(sick_error->getValue<std::string>("message"),
              HasSubstr("decision log is unhealthy: io_error: fdatasync seg-000001.log"));

  log_.Poison(Status::Ok());
  EXPECT_EQ(Get("/readyz").status, 200);
  readiness_.MarkDraining();
  Response draining = Get("/readyz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_THAT(draining.body, HasSubstr("shutting down"));
}

TEST(ReadinessTest, WithoutALogItIsNeverReady) {
  Readiness readiness(nullptr);
  readiness.MarkRecoveryFinished();
  EXPECT_EQ(readiness.Check().code(), StatusCode::kUnavailable);
}

TEST_F(OperationalRoutesTest, InfoNamesVersionNodeAndLogKind) {
  Response response = Get("/v1/info");
  EXPECT_EQ(response.status, 200);
  auto info = ParseObject(response.body);
  EXPECT_EQ(info->getValue<std::string>("version"), TXC_VERSION);
  EXPECT_EQ(info->getValue<std::string>("node_id"), "node-a");
  EXPECT_EQ(info->getObject("log")->getValue<std::string>("kind"), "fake");
  EXPECT_EQ(response.body.find(R"({"version":)"), 0u) << response.body;
}

TEST_F(OperationalRoutesTest, MetricsAreThePrometheusTextFormat) {
  metrics_.OnAppend(log::Durability::kForced);
  Response response = Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.content_type, StartsWith("text/plain; version=0.0.4"));
  EXPECT_EQ(scrapes_, 1);
  EXPECT_THAT(response.body, HasSubstr("txc_log_appends_total{durability=\"forced\"} 1"));
  EXPECT_THAT(response.body, HasSubstr("# TYPE txc_transactions_started_total counter"));
}

TEST_F(OperationalRoutesTest, WrongMethodsAre405) {
  Request request;
  request.method = "POST";
  request.path = "/metrics";
  Response response = router_.Dispatch(request);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(*response.Header("Allow"), "GET");
}

}  // namespace
}  // namespace txc::server
