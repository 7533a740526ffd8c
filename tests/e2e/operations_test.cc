// What operators see (API.md "Metrics", DESIGN.md "Observability"): metric values after known
// traffic of every protocol (started = finished + in flight), stuck transactions in the gauge,
// the document and one warning log line each, process metrics and txc_build_info, and the
// submitter's traceparent carried to every participant call.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"

namespace txc::testing {
namespace {

using ::testing::HasSubstr;

class OperationsTest : public ApiTest {};

std::string TwoPhaseBranch(const Participant& p, const std::string& name) {
  return p.BranchJson(name);
}

std::string SagaStep(const Participant& p, const std::string& name) {
  return "{\"name\":\"" + name + "\",\"action\":{\"url\":\"" + p.Url("action") +
         "\"},\"compensate\":{\"url\":\"" + p.Url("compensate") + "\"}}";
}

std::string TccBranch(const Participant& p, const std::string& name) {
  return "{\"name\":\"" + name + "\",\"try\":{\"url\":\"" + p.Url("try") +
         "\"},\"confirm\":{\"url\":\"" + p.Url("confirm") + "\"},\"cancel\":{\"url\":\"" +
         p.Url("cancel") + "\"}}";
}

Spec Of(const std::string& protocol, const std::string& gid, std::vector<std::string> branches) {
  Spec spec{gid, std::move(branches)};
  spec.protocol = protocol;
  return spec;
}

// Counts the lines of `text` that contain every one of `parts`.
int LinesWith(const std::string& text, const std::vector<std::string>& parts) {
  int count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
    count += all ? 1 : 0;
  }
  return count;
}

TEST_F(OperationsTest, StartedEqualsFinishedPlusInFlightForEveryProtocol) {
  StartTxcoord({{"TXC_STUCK_AFTER_MS", "600000"}});
  Participant ok("ok", &journal_);
  Participant no("no", &journal_);
  Participant slow("slow", &journal_);
  no.Respond("prepare", 409);
  no.Respond("action", 409);
  no.Respond("try", 409);
  auto gate = slow.Block("action");
  ASSERT_EQ(txc().Submit(Of("2pc", "m-2pc-1", {TwoPhaseBranch(ok, "a")})).status, 200);
  ASSERT_EQ(
      txc().Submit(Of("2pc", "m-2pc-2", {TwoPhaseBranch(ok, "a"), TwoPhaseBranch(no, "b")})).status,
      200);
  ASSERT_EQ(txc().Submit(Of("saga", "m-saga-1", {SagaStep(ok, "a")})).status, 200);
  ASSERT_EQ(txc().Submit(Of("saga", "m-saga-2", {SagaStep(ok, "a"), SagaStep(no, "b")})).status,
            200);
  ASSERT_EQ(txc().Submit(Of("tcc", "m-tcc-1", {TccBranch(ok, "a"), TccBranch(ok, "b")})).status,
            200);
  ASSERT_EQ(txc().Submit(Of("tcc", "m-tcc-2", {TccBranch(ok, "a"), TccBranch(no, "b")})).status,
            200);
  Spec pending = Of("saga", "m-saga-3", {SagaStep(slow, "a")});
  pending.wait = false;
  ASSERT_EQ(txc().Submit(pending).status, 202);
  ASSERT_TRUE(Eventually([&] { return slow.Count("m-saga-3", "action") == 1; }, 10s));

  const std::string metrics = txc().Metrics();
  for (const std::string protocol : {"2pc", "saga", "tcc"}) {
    SCOPED_TRACE(protocol);
    const double started =
        MetricValue(metrics, "txc_transactions_started_total", {{"protocol", protocol}});
    const double finished =
        MetricValue(metrics, "txc_transactions_finished_total", {{"protocol", protocol}});
    const double in_flight =
        MetricValue(metrics, "txc_transactions_in_flight", {{"protocol", protocol}});
    EXPECT_EQ(started, finished + in_flight);
    EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total",
                          {{"protocol", protocol}, {"outcome", "committed"}}),
              1);
    EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total",
                          {{"protocol", protocol}, {"outcome", "aborted"}}),
              1);
    EXPECT_EQ(
        MetricValue(metrics, "txc_transaction_duration_seconds_count", {{"protocol", protocol}}),
        2);
  }
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_started_total", {{"protocol", "saga"}}), 3);
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_in_flight",
                        {{"protocol", "saga"}, {"state", "running"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_branch_calls_total",
                        {{"protocol", "tcc"}, {"op", "cancel"}, {"result", "ok"}}),
            2);
  // No gid label anywhere: the cardinality stays bounded.
  EXPECT_EQ(metrics.find("gid="), std::string::npos);
  gate->Open();
  ASSERT_NE(txc().WaitFinal("m-saga-3"), nullptr);
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_transactions_in_flight", {{"protocol", "saga"}}), 0);
}

TEST_F(OperationsTest, AStuckTransactionIsInTheGaugeTheDocumentAndOneWarningLine) {
  StartTxcoord({{"TXC_STUCK_AFTER_MS", "600000"}});
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  order.Respond("compensate", 409, "refund refused");
  payment.Respond("action", 409, "no");
  Spec spec = Of("saga", "stuck-op-1", {SagaStep(order, "order"), SagaStep(payment, "payment")});
  spec.wait = false;
  spec.retry_max_ms = 60'000;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  // The engine's sweep runs every 10 s: the gauge and the log line follow within that.
  ASSERT_TRUE(Eventually(
      [&] {
        return MetricValue(txc().Metrics(), "txc_transactions_stuck", {{"protocol", "saga"}}) == 1;
      },
      25s, 200ms));
  EXPECT_TRUE(Flag(txc().Document("stuck-op-1").json(), "stuck"));
  Reply listed = txc().Get("/v1/transactions?stuck=true");
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr("stuck-op-1"));
  ASSERT_TRUE(Eventually(
      [&] {
        return LinesWith(txc().Stderr(), {"transaction_stuck", "stuck-op-1"}) >= 1;
      },
      5s));
  // Still stuck at the next sweeps: still one line.
  std::this_thread::sleep_for(11s);
  const std::string log = txc().Stderr();
  EXPECT_EQ(LinesWith(log, {"transaction_stuck", "stuck-op-1"}), 1) << log;
  EXPECT_EQ(LinesWith(log, {"transaction_stuck", "stuck-op-1", "needs an operator"}), 1) << log;
}

TEST_F(OperationsTest, WithLogFormatJsonEveryLineIsAJsonObjectAndOperatorActionsCarryTheGid) {
  StartTxcoord({{"TXC_LOG_FORMAT", "json"}});
  Participant a("a", &journal_);
  auto gate = a.Block("action");
  Spec spec = Of("saga", "json-log-1", {SagaStep(a, "a")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return a.Count("json-log-1", "action") == 1; }, 10s));
  ASSERT_EQ(txc().Post("/v1/transactions/json-log-1/abort", R"({"reason":"test"})").status, 200);
  gate->Open();
  ASSERT_NE(txc().WaitFinal("json-log-1"), nullptr);
  std::istringstream lines(txc().Stderr());
  int parsed = 0;
  bool operator_line = false;
  for (std::string line; std::getline(lines, line);) {
    Json object = ParseObject(line);
    ASSERT_NE(object, nullptr) << "not a JSON object: " << line;
    EXPECT_FALSE(Text(object, "ts").empty()) << line;
    EXPECT_FALSE(Text(object, "event").empty()) << line;
    ++parsed;
    if (Text(object, "event") == "operator_action") {
      operator_line = true;
      EXPECT_EQ(Text(object, "gid"), "json-log-1");
      EXPECT_EQ(Text(object, "action"), "abort");
      EXPECT_EQ(Text(object, "reason"), "test");
    }
  }
  EXPECT_GE(parsed, 3);
  EXPECT_TRUE(operator_line);
}

TEST_F(OperationsTest, InFlightGaugesAreRebuiltFromTheLogAfterARestart) {
  StartTxcoord();
  Participant a("a", &journal_);
  a.Respond("action", 503);  // keeps the saga running across the restart
  Spec spec = Of("saga", "gauge-1", {SagaStep(a, "a")});
  spec.wait = false;
  spec.timeout_ms = 120'000;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return a.Count("gauge-1", "action") >= 1; }, 10s));
  txc_.reset();  // SIGKILL
  StartTxcoord(env_);
  const std::string metrics = txc().Metrics();
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_in_flight",
                        {{"protocol", "saga"}, {"state", "running"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_recovered_transactions_total", {{"protocol", "saga"}}), 1);
  a.Respond("action", 200);
  ASSERT_EQ(txc().Post("/v1/transactions/gauge-1/retry").status, 200);
  ASSERT_NE(txc().WaitFinal("gauge-1"), nullptr);
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_transactions_in_flight", {{"protocol", "saga"}}), 0);
}

TEST_F(OperationsTest, ProcessMetricsAndBuildInfoAreExported) {
  StartTxcoord();
  const std::string metrics = txc().Metrics();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_start_time_seconds", "process_open_fds", "txc_build_info"}) {
    EXPECT_THAT(metrics, HasSubstr(std::string("# TYPE ") + name)) << name;
  }
  EXPECT_GT(MetricValue(metrics, "process_resident_memory_bytes"), 1'000'000);
  EXPECT_GT(MetricValue(metrics, "process_open_fds"), 3);
  EXPECT_EQ(MetricValue(metrics, "txc_build_info", {{"node_id", node_id_}}), 1);
  const double start = MetricValue(metrics, "process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LT(std::abs(now - start), 120) << start;
}

TEST_F(OperationsTest, TheSubmittersTraceparentReachesEveryParticipantCall) {
  StartTxcoord();
  Participant a("a", &journal_);
  Participant b("b", &journal_);
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const Reply reply = Exchange(txc().port(), "POST", "/v1/transactions",
                               Of("saga", "trace-1", {SagaStep(a, "a"), SagaStep(b, "b")}).ToJson(),
                               60s, {{"traceparent", "00-" + trace_id + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(reply.status, 200) << reply;
  for (const auto* p : {&a, &b}) {
    auto requests = p->Requests("trace-1", "action");
    ASSERT_EQ(requests.size(), 1u);
    const std::string header = requests[0].Header("traceparent");
    EXPECT_TRUE(header.starts_with("00-" + trace_id + "-")) << header;
    EXPECT_EQ(header.find("00f067aa0ba902b7"), std::string::npos) << "a new span id per call";
  }
  // A malformed traceparent is ignored: a trace of its own.
  ASSERT_EQ(Exchange(txc().port(), "POST", "/v1/transactions",
                     Of("saga", "trace-2", {SagaStep(a, "a")}).ToJson(), 60s,
                     {{"traceparent", "garbage"}})
                .status,
            200);
  const std::string own = a.Requests("trace-2", "action").at(0).Header("traceparent");
  EXPECT_EQ(own.size(), 55u) << own;
  EXPECT_EQ(own.find(trace_id), std::string::npos);
}

}  // namespace
}  // namespace txc::testing
