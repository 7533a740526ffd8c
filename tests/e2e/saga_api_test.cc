// Sagas through the real API (API.md "Submit", "The transaction document", "Operate", the saga
// rows of "Participant contract"): txcoord as a process, HTTP step services scripted inside the
// test process (tests/e2e/api_harness.h). Success, refusal with compensation in reverse order,
// transient failures, parallel steps, the deadline, a refused compensation that needs an
// operator, an operator's abort, bad step graphs, and a restart in the middle of a saga.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"

namespace txc::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SagaApiTest : public ApiTest {};

// A saga step calling `service` at /<service>/action and /<service>/compensate. `after`: nullopt
// for the default (the previous step).
std::string Step(const Participant& service, const std::string& name,
                 std::optional<std::vector<std::string>> after = std::nullopt,
                 const std::string& body = "") {
  std::string json = "{\"name\":\"" + name + "\",\"action\":{\"url\":\"" + service.Url("action") +
                     "\"" + (body.empty() ? "" : ",\"body\":" + body) +
                     "},\"compensate\":{\"url\":\"" + service.Url("compensate") + "\"" +
                     (body.empty() ? "" : ",\"body\":" + body) + "}";
  if (after) {
    json += ",\"after\":[";
    for (size_t i = 0; i < after->size(); ++i) {
      json += (i > 0 ? ",\"" : "\"") + (*after)[i] + "\"";
    }
    json += "]";
  }
  return json + "}";
}

Spec Saga(const std::string& gid, std::vector<std::string> steps) {
  Spec spec{gid, std::move(steps)};
  spec.protocol = "saga";
  return spec;
}

TEST_F(SagaApiTest, StepsRunInOrderWithTheContractHeadersAndTheSagaSucceeds) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Reply reply = txc().Submit(Saga("saga-ok-1", {Step(order, "order", std::nullopt, R"({"id":7})"),
                                                Step(payment, "payment"), Step(stock, "stock")}));
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = reply.json();
  EXPECT_EQ(Text(document, "protocol"), "saga");
  EXPECT_EQ(Text(document, "state"), "succeeded");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("done", "done", "done"));
  EXPECT_THAT(journal_.Calls("saga-ok-1"),
              ElementsAre("order:action", "payment:action", "stock:action"));
  auto requests = order.Requests("saga-ok-1", "action");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].Header("Txc-Gid"), "saga-ok-1");
  EXPECT_EQ(requests[0].Header("Txc-Branch"), "order");
  EXPECT_EQ(requests[0].Header("Txc-Op"), "action");
  EXPECT_EQ(requests[0].Header("Idempotency-Key"), "saga-ok-1/order/action");
  EXPECT_EQ(Canonical(requests[0].body), R"({"id":7})");
  EXPECT_EQ(order.Count("saga-ok-1", "compensate"), 0u);
  // The document stays readable.
  EXPECT_EQ(Text(txc().Document("saga-ok-1").json(), "state"), "succeeded");
}

TEST_F(SagaApiTest, ARefusedStepCompensatesTheStepsBeforeItInReverseAndNotItself) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Participant notify("notify", &journal_);
  stock.Respond("action", 409, R"({"error":"out of stock"})");
  Reply reply =
      txc().Submit(Saga("saga-refused-1", {Step(order, "order"), Step(payment, "payment"),
                                           Step(stock, "stock"), Step(notify, "notify")}));
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(Text(document, "reason"), HasSubstr("step 2 was refused"));
  EXPECT_THAT(BranchStates(document),
              ElementsAre("compensated", "compensated", "refused", "skipped"));
  EXPECT_THAT(Text(Branch(document, "stock"), "last_error"), HasSubstr("409"));
  EXPECT_THAT(journal_.Calls("saga-refused-1"),
              ElementsAre("order:action", "payment:action", "stock:action", "payment:compensate",
                          "order:compensate"));
  EXPECT_EQ(payment.Requests("saga-refused-1", "compensate")[0].Header("Idempotency-Key"),
            "saga-refused-1/payment/compensate");
  EXPECT_EQ(notify.TotalRequests(), 0u);
}

TEST_F(SagaApiTest, TransientFailuresAreRetriedWithTheSameKeyUntilTheStepSucceeds) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  payment.On("action", [](const CapturedRequest&, int nth) {
    Answer answer;
    answer.status = nth <= 2 ? 503 : 200;
    return answer;
  });
  Reply reply =
      txc().Submit(Saga("saga-transient-1", {Step(order, "order"), Step(payment, "payment")}));
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "succeeded");
  EXPECT_EQ(Number(Branch(document, "payment"), "attempts"), 3);
  auto attempts = payment.Requests("saga-transient-1", "action");
  ASSERT_EQ(attempts.size(), 3u);
  for (const auto& request : attempts) {
    EXPECT_EQ(request.Header("Idempotency-Key"), "saga-transient-1/payment/action");
  }
  EXPECT_EQ(order.Count("saga-transient-1", "compensate"), 0u);
}

TEST_F(SagaApiTest, StepsAfterTheSameStepRunInParallel) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Participant notify("notify", &journal_);
  auto payment_gate = payment.Block("action");
  auto stock_gate = stock.Block("action");
  Spec spec =
      Saga("saga-parallel-1",
           {Step(order, "order"), Step(payment, "payment", std::vector<std::string>{"order"}),
            Step(stock, "stock", std::vector<std::string>{"order"}),
            Step(notify, "notify", std::vector<std::string>{"payment", "stock"})});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  // Both actions arrive while neither has answered: they run at the same time.
  ASSERT_TRUE(Eventually(
      [&] {
        return payment.Count("saga-parallel-1", "action") == 1 &&
               stock.Count("saga-parallel-1", "action") == 1;
      },
      10s));
  EXPECT_EQ(notify.TotalRequests(), 0u);
  payment_gate->Open();
  // notify waits for stock too.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(notify.TotalRequests(), 0u);
  stock_gate->Open();
  Json document = txc().WaitFinal("saga-parallel-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "succeeded");
  EXPECT_EQ(notify.Count("saga-parallel-1", "action"), 1u);
}

TEST_F(SagaApiTest, PastTimeoutMsAStepThatKeepsFailingIsCompensated) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  payment.Respond("action", 503);
  Spec spec = Saga("saga-deadline-1", {Step(order, "order"), Step(payment, "payment")});
  spec.timeout_ms = 1500;
  Reply reply = txc().Submit(spec);
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = txc().WaitFinal("saga-deadline-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_THAT(Text(document, "reason"), HasSubstr("deadline"));
  // A 503 may come from a proxy while the service goes on: the failing step is compensated too,
  // before the step it came after.
  EXPECT_EQ(payment.Count("saga-deadline-1", "compensate"), 1u);
  auto calls = journal_.Calls("saga-deadline-1");
  ASSERT_GE(calls.size(), 4u);
  EXPECT_EQ(calls[calls.size() - 2], "payment:compensate");
  EXPECT_EQ(calls.back(), "order:compensate");
  EXPECT_GE(payment.Count("saga-deadline-1", "action"), 2u);
}

TEST_F(SagaApiTest, ARefusedCompensationNeedsAnOperatorAndRetryFinishesItOnceFixed) {
  StartTxcoord({{"TXC_STUCK_AFTER_MS", "600000"}});
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  order.Respond("compensate", 409, "refund refused");
  payment.Respond("action", 409, "insufficient funds");
  Spec spec = Saga("saga-stuck-1", {Step(order, "order"), Step(payment, "payment")});
  spec.wait = false;
  spec.retry_max_ms = 60'000;  // the longest backoff: only the operator's retry comes sooner
  ASSERT_EQ(txc().Submit(spec).status, 202);
  Json stuck = txc().WaitForDocument(
      "saga-stuck-1", [](const Json& d) { return Flag(Branch(d, "order"), "needs_operator"); },
      "needed an operator");
  ASSERT_NE(stuck, nullptr);
  EXPECT_EQ(Text(stuck, "state"), "compensating");
  EXPECT_TRUE(IsNull(stuck, "outcome"));
  EXPECT_TRUE(Flag(stuck, "stuck"));
  EXPECT_THAT(Text(Branch(stuck, "order"), "last_error"), HasSubstr("409"));
  // Fixed by hand; the operator asks for the retry now instead of waiting a minute.
  order.Respond("compensate", 200);
  ASSERT_EQ(txc().Post("/v1/transactions/saga-stuck-1/retry").status, 200);
  Json document = txc().WaitFinal("saga-stuck-1", 10s);
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_FALSE(Flag(Branch(document, "order"), "needs_operator"));
  EXPECT_FALSE(Flag(document, "stuck"));
}

TEST_F(SagaApiTest, AnOperatorResolvesAStuckCompensationByHandAndItIsRecorded) {
  StartTxcoord({{"TXC_STUCK_AFTER_MS", "600000"}});
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  payment.Respond("compensate", 409, "refund refused");
  stock.Respond("action", 409, "out of stock");
  Spec spec = Saga("saga-resolve-1",
                   {Step(order, "order"), Step(payment, "payment"), Step(stock, "stock")});
  spec.wait = false;
  spec.retry_max_ms = 60'000;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_NE(txc().WaitForDocument(
                "saga-resolve-1",
                [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
                "needed an operator"),
            nullptr);
  const std::string path = "/v1/transactions/saga-resolve-1/resolve";
  // Bad bodies name the field; answers against the decision are conflicts.
  Reply missing = txc().Post(path, R"({"branch":"payment","outcome":"aborted"})");
  EXPECT_EQ(missing.status, 400) << missing;
  EXPECT_THAT(missing.ErrorMessage(), HasSubstr("reason"));
  Reply bad_outcome = txc().Post(path, R"({"branch":"payment","outcome":"maybe","reason":"x"})");
  EXPECT_EQ(bad_outcome.status, 400) << bad_outcome;
  EXPECT_THAT(bad_outcome.ErrorMessage(), HasSubstr("outcome"));
  Reply unknown = txc().Post(path, R"({"branch":"nope","outcome":"aborted","reason":"x"})");
  EXPECT_EQ(unknown.status, 400) << unknown;
  EXPECT_THAT(unknown.ErrorMessage(), HasSubstr("branch"));
  Reply against = txc().Post(path, R"({"branch":"payment","outcome":"committed","reason":"x"})");
  EXPECT_EQ(against.status, 409) << against;
  Reply not_needed = txc().Post(path, R"({"branch":"stock","outcome":"aborted","reason":"x"})");
  EXPECT_EQ(not_needed.status, 409) << not_needed;
  EXPECT_EQ(txc()
                .Post("/v1/transactions/nope/resolve",
                      R"({"branch":"a","outcome":"aborted","reason":"x"})")
                .status,
            404);
  // The operator refunded by hand; the order step is then compensated by txcoord.
  Reply resolved = txc().Post(
      path, R"({"branch":"payment","outcome":"aborted","reason":"refunded by hand, ticket 42"})");
  ASSERT_EQ(resolved.status, 200) << resolved;
  Json document = txc().WaitFinal("saga-resolve-1", 10s);
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_EQ(Text(Branch(document, "payment"), "state"), "compensated");
  EXPECT_EQ(order.Count("saga-resolve-1", "compensate"), 1u);
  auto history = document->getArray("history");
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 1u);
  Json entry = history->getObject(0);
  EXPECT_EQ(Text(entry, "action"), "resolve");
  EXPECT_EQ(Text(entry, "branch"), "payment");
  EXPECT_EQ(Text(entry, "outcome"), "aborted");
  EXPECT_EQ(Text(entry, "by"), "anonymous");
  EXPECT_EQ(Text(entry, "reason"), "refunded by hand, ticket 42");
  EXPECT_FALSE(Text(entry, "at").empty());
  EXPECT_EQ(txc().Post(path, R"({"branch":"payment","outcome":"aborted","reason":"x"})").status,
            409);
  // The history is in the log: it survives a restart.
  RestartTxcoord();
  Json after = txc().Document("saga-resolve-1").json();
  ASSERT_TRUE(after && after->has("history"));
  EXPECT_EQ(Text(after->getArray("history")->getObject(0), "reason"),
            "refunded by hand, ticket 42");
}

TEST_F(SagaApiTest, AnAbortRecordsItsReasonAndSurvivesARestartMidCompensation) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  order.Respond("compensate", 503);
  auto gate = payment.Block("action");
  Spec spec = Saga("saga-abort-2", {Step(order, "order"), Step(payment, "payment")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return payment.Count("saga-abort-2", "action") == 1; }, 10s));
  Reply abort =
      txc().Post("/v1/transactions/saga-abort-2/abort", R"({"reason":"customer cancelled"})");
  ASSERT_EQ(abort.status, 200) << abort;
  gate->Open();
  ASSERT_TRUE(Eventually([&] { return order.Count("saga-abort-2", "compensate") >= 1; }, 10s));
  txc_.reset();  // SIGKILL while order's compensation keeps failing
  order.Respond("compensate", 200);
  StartTxcoord(env_);
  Json document = txc().WaitFinal("saga-abort-2");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_EQ(Text(document, "reason"), "aborted by an operator");
  auto history = document->getArray("history");
  ASSERT_TRUE(history && history->size() == 1u);
  EXPECT_EQ(Text(history->getObject(0), "action"), "abort");
  EXPECT_EQ(Text(history->getObject(0), "reason"), "customer cancelled");
}

TEST_F(SagaApiTest, AbortWhileRunningCompensatesAndIs409OnceCompensating) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  auto gate = payment.Block("action");
  Spec spec = Saga("saga-abort-1", {Step(order, "order"), Step(payment, "payment")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return payment.Count("saga-abort-1", "action") == 1; }, 10s));
  Reply abort = txc().Post("/v1/transactions/saga-abort-1/abort");
  EXPECT_EQ(abort.status, 200) << abort;
  Reply again = txc().Post("/v1/transactions/saga-abort-1/abort");
  EXPECT_EQ(again.status, 409) << again;
  gate->Open();
  Json document = txc().WaitFinal("saga-abort-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "compensated");
  EXPECT_EQ(Text(document, "reason"), "aborted by an operator");
  // The action still out at the abort was compensated only after it answered.
  EXPECT_THAT(
      journal_.Calls("saga-abort-1"),
      ElementsAre("order:action", "payment:action", "payment:compensate", "order:compensate"));
}

TEST_F(SagaApiTest, BadStepGraphsAre400NamingTheFieldAndStartNothing) {
  StartTxcoord();
  Participant a("a", &journal_);
  struct Case {
    Spec spec;
    std::string field;
  };
  const std::vector<Case> cases = {
      {Saga("bad-1", {Step(a, "a", std::vector<std::string>{"b"}), Step(a, "b")}),
       "branches[0].after"},
      {Saga("bad-2", {Step(a, "a"), Step(a, "b", std::vector<std::string>{"nope"})}),
       "branches[1].after[0]: names no step ('nope')"},
      {Saga("bad-3", {Step(a, "a"), Step(a, "b", std::vector<std::string>{"b"})}),
       "branches[1].after[0]: a step cannot wait for itself"},
      {Saga("bad-4", {Step(a, "a"), Step(a, "b", std::vector<std::string>{"a", "a"})}),
       "branches[1].after[1]"},
  };
  for (const auto& c : cases) {
    Reply reply = txc().Submit(c.spec);
    EXPECT_EQ(reply.status, 400) << reply;
    EXPECT_EQ(reply.ErrorCode(), "invalid_request") << reply;
    EXPECT_THAT(reply.ErrorMessage(), HasSubstr(c.field)) << reply;
    EXPECT_EQ(txc().Document(c.spec.gid).status, 404);
  }
  Reply no_compensate =
      txc().Submit(R"({"gid":"bad-5","protocol":"saga","branches":[{"name":"a","action":{"url":")" +
                   a.Url("action") + R"("}}]})");
  EXPECT_EQ(no_compensate.status, 400);
  EXPECT_THAT(no_compensate.ErrorMessage(), HasSubstr("branches[0].compensate"));
  EXPECT_EQ(a.TotalRequests(), 0u);
}

TEST_F(SagaApiTest, AfterAKillMidSagaTheRestartedCoordinatorGoesOnAndSucceeds) {
  StartTxcoord();
  Participant order("order", &journal_);
  Participant payment("payment", &journal_);
  auto gate = payment.Block("action");
  Spec spec = Saga("saga-restart-1", {Step(order, "order"), Step(payment, "payment")});
  spec.wait = false;
  spec.timeout_ms = 120'000;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return payment.Count("saga-restart-1", "action") == 1; }, 10s));
  txc_.reset();  // SIGKILL, mid-saga: payment's action is still out
  gate->Open();
  StartTxcoord(env_);
  Json document = txc().WaitFinal("saga-restart-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "succeeded");
  // The restarted coordinator sent payment's action again, with the same key (the service
  // answers a duplicate as before); order was not compensated.
  auto attempts = payment.Requests("saga-restart-1", "action");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1].Header("Idempotency-Key"), attempts[0].Header("Idempotency-Key"));
  EXPECT_EQ(order.Count("saga-restart-1", "compensate"), 0u);
  EXPECT_LE(order.Count("saga-restart-1", "action"), 2u);
}

TEST_F(SagaApiTest, MetricsCountSagasByOutcome) {
  StartTxcoord();
  Participant ok("ok", &journal_);
  Participant no("no", &journal_);
  no.Respond("action", 409);
  ASSERT_EQ(txc().Submit(Saga("saga-m-1", {Step(ok, "a")})).status, 200);
  ASSERT_EQ(txc().Submit(Saga("saga-m-2", {Step(ok, "a"), Step(no, "b")})).status, 200);
  const std::string metrics = txc().Metrics();
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_started_total", {{"protocol", "saga"}}), 2);
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total",
                        {{"protocol", "saga"}, {"outcome", "committed"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total",
                        {{"protocol", "saga"}, {"outcome", "aborted"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_branch_calls_total",
                        {{"protocol", "saga"}, {"op", "action"}, {"result", "refused"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_branch_calls_total",
                        {{"protocol", "saga"}, {"op", "compensate"}, {"result", "ok"}}),
            1);
}

}  // namespace
}  // namespace txc::testing
