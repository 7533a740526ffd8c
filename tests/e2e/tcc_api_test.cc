// TCC through the real API: txcoord as a process, try/confirm/cancel services scripted inside
// the test process (tests/e2e/api_harness.h). All tried → every branch confirmed; a refused try
// → every branch cancelled, the refused one and one whose try was never answered included; a
// kill after the tries and before the decision → cancelled after the restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"

namespace txc::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class TccApiTest : public ApiTest {};

std::string TccBranch(const Participant& service, const std::string& name,
                      const std::string& body = "") {
  const std::string with_body = body.empty() ? "" : ",\"body\":" + body;
  return "{\"name\":\"" + name + "\",\"try\":{\"url\":\"" + service.Url("try") + "\"" + with_body +
         "},\"confirm\":{\"url\":\"" + service.Url("confirm") + "\"" + with_body +
         "},\"cancel\":{\"url\":\"" + service.Url("cancel") + "\"" + with_body + "}}";
}

Spec Tcc(const std::string& gid, std::vector<std::string> branches) {
  Spec spec{gid, std::move(branches)};
  spec.protocol = "tcc";
  return spec;
}

TEST_F(TccApiTest, AllTriedConfirmsEveryBranchWithTheContractHeaders) {
  StartTxcoord();
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Reply reply = txc().Submit(Tcc(
      "tcc-ok-1", {TccBranch(payment, "payment", R"({"amount":30})"), TccBranch(stock, "stock")}));
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = reply.json();
  EXPECT_EQ(Text(document, "protocol"), "tcc");
  EXPECT_EQ(Text(document, "state"), "confirmed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("confirmed", "confirmed"));
  auto tries = payment.Requests("tcc-ok-1", "try");
  ASSERT_EQ(tries.size(), 1u);
  EXPECT_EQ(tries[0].Header("Idempotency-Key"), "tcc-ok-1/payment/try");
  EXPECT_EQ(Canonical(tries[0].body), R"({"amount":30})");
  auto confirms = payment.Requests("tcc-ok-1", "confirm");
  ASSERT_EQ(confirms.size(), 1u);
  EXPECT_EQ(confirms[0].Header("Txc-Op"), "confirm");
  EXPECT_EQ(confirms[0].Header("Idempotency-Key"), "tcc-ok-1/payment/confirm");
  EXPECT_EQ(payment.Count("tcc-ok-1", "cancel") + stock.Count("tcc-ok-1", "cancel"), 0u);
}

TEST_F(TccApiTest, ARefusedTryCancelsEveryBranchIncludingOneWhoseTryIsStillOut) {
  StartTxcoord();
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Participant slow("slow", &journal_);
  stock.Respond("try", 409, "out of stock");
  auto gate = slow.Block("try");
  Spec spec = Tcc("tcc-refused-1", {TccBranch(payment, "payment"), TccBranch(stock, "stock"),
                                    TccBranch(slow, "slow")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  Json cancelling = txc().WaitForDocument(
      "tcc-refused-1", [](const Json& d) { return Text(d, "state") == "cancelling"; },
      "started cancelling");
  ASSERT_NE(cancelling, nullptr);
  // The slow branch's try has not answered: it gets no cancel before its reply.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(slow.Count("tcc-refused-1", "cancel"), 0u);
  gate->Open();
  Json document = txc().WaitFinal("tcc-refused-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "cancelled");
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("cancelled", "cancelled", "cancelled"));
  for (auto* service : {&payment, &stock, &slow}) {
    EXPECT_EQ(service->Count("tcc-refused-1", "cancel"), 1u) << service->name();
    EXPECT_EQ(service->Count("tcc-refused-1", "confirm"), 0u) << service->name();
  }
  auto slow_calls = journal_.Calls("tcc-refused-1");
  const auto try_at = std::find(slow_calls.begin(), slow_calls.end(), "slow:try");
  const auto cancel_at = std::find(slow_calls.begin(), slow_calls.end(), "slow:cancel");
  EXPECT_LT(try_at, cancel_at);
}

TEST_F(TccApiTest, ATryThatNeverSucceedsBeforeTimeoutMsIsCancelled) {
  StartTxcoord();
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  stock.Respond("try", 503);
  Spec spec = Tcc("tcc-deadline-1", {TccBranch(payment, "payment"), TccBranch(stock, "stock")});
  spec.timeout_ms = 1200;
  ASSERT_EQ(txc().Submit(spec).status, 200);
  Json document = txc().WaitFinal("tcc-deadline-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "cancelled");
  EXPECT_THAT(Text(document, "reason"), HasSubstr("deadline"));
  EXPECT_EQ(payment.Count("tcc-deadline-1", "cancel"), 1u);
  EXPECT_EQ(stock.Count("tcc-deadline-1", "cancel"), 1u);
  EXPECT_GE(stock.Count("tcc-deadline-1", "try"), 2u);
}

TEST_F(TccApiTest, KilledAfterEveryTryBeforeTheDecisionItCancelsAllAfterTheRestart) {
  StartTxcoord({{"TXC_CRASH_AT", "after_try_reply"}, {"TXC_CRASH_AFTER", "2"}});
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Spec spec = Tcc("tcc-crash-1", {TccBranch(payment, "payment"), TccBranch(stock, "stock")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  // The second try's reply kills it before the decision.
  ASSERT_TRUE(Eventually([&] { return !txc().Running(); }, 10s));
  txc_.reset();
  env_.clear();
  StartTxcoord();
  Json document = txc().WaitFinal("tcc-crash-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "cancelled");
  EXPECT_THAT(Text(document, "reason"), HasSubstr("restarted"));
  EXPECT_EQ(payment.Count("tcc-crash-1", "cancel"), 1u);
  EXPECT_EQ(stock.Count("tcc-crash-1", "cancel"), 1u);
  EXPECT_EQ(payment.Count("tcc-crash-1", "confirm") + stock.Count("tcc-crash-1", "confirm"), 0u);
}

TEST_F(TccApiTest, KilledAfterTheConfirmDecisionItConfirmsAllAfterTheRestart) {
  StartTxcoord({{"TXC_CRASH_AT", "after_decision_durable"}});
  Participant payment("payment", &journal_);
  Participant stock("stock", &journal_);
  Spec spec = Tcc("tcc-crash-2", {TccBranch(payment, "payment"), TccBranch(stock, "stock")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return !txc().Running(); }, 10s));
  EXPECT_EQ(payment.Count("tcc-crash-2", "confirm") + stock.Count("tcc-crash-2", "confirm"), 0u);
  txc_.reset();
  env_.clear();
  StartTxcoord();
  Json document = txc().WaitFinal("tcc-crash-2");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "confirmed");
  EXPECT_EQ(payment.Count("tcc-crash-2", "confirm"), 1u);
  EXPECT_EQ(stock.Count("tcc-crash-2", "confirm"), 1u);
  EXPECT_EQ(payment.Count("tcc-crash-2", "cancel") + stock.Count("tcc-crash-2", "cancel"), 0u);
}

}  // namespace
}  // namespace txc::testing
