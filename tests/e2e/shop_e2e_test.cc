// Sagas and TCC end to end against the shop example (examples/shop/README.md): txcoord and the
// order (PostgreSQL), payment (MariaDB) and inventory (PostgreSQL) services as processes, each
// service on storage of its own for the run (tests/support/shop_env.h). Every test checks what
// the databases hold afterwards, not only what txcoord says: orders, balances, frozen funds,
// stock, reservations and the per-transaction ledgers, and that nothing was created or lost.
//
//   a saga that succeeds; one refused for insufficient funds (the order cancelled, inventory
//   never called); one refused for stock at its last step (the charge refunded); transient 503s
//   (retried, charged once); parallel steps (they overlap); TCC confirm (frozen and reserved
//   while the tries stand, deducted after) and cancel (everything released); lost replies after
//   the commit and duplicate calls (applied once); a cancel before its try (the late try refused).
//
// Needs TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/test.sh sets them).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"
#include "tests/support/shop_env.h"

namespace txc::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The ops and statuses of the business calls a service logged for a gid: "action:200", ...
std::vector<std::string> CallSummary(const std::vector<BusinessCallLine>& calls) {
  std::vector<std::string> summary;
  for (const BusinessCallLine& call : calls) {
    summary.push_back(call.op + ":" + std::to_string(call.status));
  }
  return summary;
}

std::string Describe(const HoldingView& holding) {
  if (!holding.found) return "(none)";
  return std::to_string(holding.available) + " available, " + std::to_string(holding.held) +
         " held";
}

class ShopE2eTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    shop_ = std::make_unique<ShopEnv>(scratch_.path());
    ASSERT_TRUE(shop_->Start());
    StartTxcoord();
  }

  void TearDown() override {
    if (HasFailure() && shop_ != nullptr) std::cerr << shop_->LogTails();
    ApiTest::TearDown();
    if (shop_ != nullptr) {
      EXPECT_TRUE(shop_->Stop());
      shop_.reset();
    }
  }

  // Expects the account (balance, frozen) or item (stock, reserved) to hold exactly this.
  void ExpectAccount(const std::string& account, int64_t balance, int64_t frozen) {
    const HoldingView now = shop_->Account(account);
    EXPECT_TRUE(now.found && now.available == balance && now.held == frozen)
        << "account " << account << ": " << Describe(now) << ", expected balance " << balance
        << " and frozen " << frozen;
  }
  void ExpectItem(const std::string& item, int64_t stock, int64_t reserved) {
    const HoldingView now = shop_->Item(item);
    EXPECT_TRUE(now.found && now.available == stock && now.held == reserved)
        << "item " << item << ": " << Describe(now) << ", expected stock " << stock
        << " and reserved " << reserved;
  }

  std::unique_ptr<ShopEnv> shop_;
};

// ---- sagas ------------------------------------------------------------------------------------

TEST_F(ShopE2eTest, ASagaCreatesTheOrderChargesTheAccountAndTakesTheStock) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  const Purchase purchase{"shop-ok-1", "ok-1", "alice", "widget", 2, 30};

  const Reply reply = txc().Submit(shop_->SagaBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "succeeded") << reply;
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("done", "done", "done"));

  const OrderRow order = shop_->Order("ok-1");
  EXPECT_TRUE(order.found);
  EXPECT_EQ(order.status, "created");
  EXPECT_EQ(order.gid, "shop-ok-1");
  ExpectAccount("alice", 70, 0);
  ExpectItem("widget", 8, 0);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, true));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
  // Each service saw its action once, and nothing else.
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kOrder, "shop-ok-1")),
              ElementsAre("action:200"));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-ok-1")),
              ElementsAre("action:200"));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kInventory, "shop-ok-1")),
              ElementsAre("action:200"));
}

TEST_F(ShopE2eTest, InsufficientFundsCancelsTheOrderAndNeverTouchesInventory) {
  ASSERT_TRUE(shop_->SeedAccount("bob", 10));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  const Purchase purchase{"shop-poor-1", "poor-1", "bob", "widget", 1, 500};

  const Reply reply = txc().Submit(shop_->SagaBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "compensated") << reply;
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("compensated", "refused", "skipped"));
  EXPECT_THAT(Text(Branch(document, "payment"), "last_error"), HasSubstr("insufficient_funds"));
  EXPECT_THAT(Text(document, "reason"), HasSubstr("step 1 was refused"));

  EXPECT_EQ(shop_->Order("poor-1").status, "cancelled");
  ExpectAccount("bob", 10, 0);
  ExpectItem("widget", 10, 0);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, false));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
  // The refused charge did nothing, so it is not compensated; inventory was never called.
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kOrder, "shop-poor-1")),
              ElementsAre("action:200", "compensate:200"));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-poor-1")),
              ElementsAre("action:409"));
  EXPECT_THAT(shop_->BusinessCalls(ShopService::kInventory, "shop-poor-1"), ::testing::IsEmpty());
  EXPECT_EQ(shop_->PaymentLedger("shop-poor-1").kinds.size(), 0u)
      << shop_->PaymentLedger("shop-poor-1").ToString();
}

TEST_F(ShopE2eTest, OutOfStockAtTheLastStepRefundsThePaymentAndCancelsTheOrder) {
  ASSERT_TRUE(shop_->SeedAccount("carol", 100));
  ASSERT_TRUE(shop_->SeedItem("gadget", 1));
  const Purchase purchase{"shop-sold-out-1", "sold-out-1", "carol", "gadget", 3, 45};

  const Reply reply = txc().Submit(shop_->SagaBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "compensated") << reply;
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("compensated", "compensated", "refused"));
  EXPECT_THAT(Text(Branch(document, "inventory"), "last_error"), HasSubstr("out_of_stock"));

  EXPECT_EQ(shop_->Order("sold-out-1").status, "cancelled");
  ExpectAccount("carol", 100, 0);
  ExpectItem("gadget", 1, 0);
  const LedgerTotals paid = shop_->PaymentLedger("shop-sold-out-1");
  EXPECT_EQ(paid.Entries("charge"), 1) << paid.ToString();
  EXPECT_EQ(paid.Entries("refund"), 1) << paid.ToString();
  EXPECT_EQ(paid.Amount("refund"), 45) << paid.ToString();
  EXPECT_EQ(shop_->InventoryLedger("shop-sold-out-1").kinds.size(), 0u);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, false));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-sold-out-1")),
              ElementsAre("action:200", "compensate:200"));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kInventory, "shop-sold-out-1")),
              ElementsAre("action:409"));
}

TEST_F(ShopE2eTest, TransientFailuresAreRetriedAndTheAccountIsChargedOnce) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  const ShopReply faults =
      shop_->SetFaults(ShopService::kPayment, R"({"fail_next": 2, "status": 503})");
  ASSERT_EQ(faults.status, 200) << faults.ToString();
  const Purchase purchase{"shop-transient-1", "transient-1", "alice", "widget", 1, 25};

  const Reply reply = txc().Submit(shop_->SagaBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "succeeded") << reply;
  EXPECT_EQ(Number(Branch(document, "payment"), "attempts"), 3) << reply;

  EXPECT_EQ(shop_->FaultsInjected(ShopService::kPayment), 2);
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-transient-1")),
              ElementsAre("action:503", "action:503", "action:200"));
  const LedgerTotals paid = shop_->PaymentLedger("shop-transient-1");
  EXPECT_EQ(paid.Entries("charge"), 1) << paid.ToString();
  ExpectAccount("alice", 75, 0);
  ExpectItem("widget", 9, 0);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, true));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

TEST_F(ShopE2eTest, PaymentAndInventoryAfterTheOrderRunAtTheSameTime) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  // Both calls last at least this long, so two that run at once must overlap in time.
  ASSERT_EQ(shop_->SetFaults(ShopService::kPayment, R"({"delay_ms": 800})").status, 200);
  ASSERT_EQ(shop_->SetFaults(ShopService::kInventory, R"({"delay_ms": 800})").status, 200);
  const Purchase purchase{"shop-parallel-1", "parallel-1", "alice", "widget", 1, 20};
  SubmitOptions options;
  options.parallel = true;

  const Reply reply = txc().Submit(shop_->SagaBody(purchase, options));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "succeeded") << reply;
  EXPECT_THAT(BranchStates(document), ElementsAre("done", "done", "done"));
  ExpectAccount("alice", 80, 0);
  ExpectItem("widget", 9, 0);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, true));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));

  const auto order = shop_->BusinessCalls(ShopService::kOrder, "shop-parallel-1");
  const auto payment = shop_->BusinessCalls(ShopService::kPayment, "shop-parallel-1");
  const auto inventory = shop_->BusinessCalls(ShopService::kInventory, "shop-parallel-1");
  ASSERT_EQ(order.size(), 1u);
  ASSERT_EQ(payment.size(), 1u);
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_GE(payment[0].ms, 800);
  EXPECT_GE(inventory[0].ms, 800);
  EXPECT_TRUE(payment[0].StartUnixMs() < inventory[0].end_unix_ms &&
              inventory[0].StartUnixMs() < payment[0].end_unix_ms)
      << "the two calls did not overlap: payment ran " << payment[0].StartUnixMs() << ".."
      << payment[0].end_unix_ms << ", inventory " << inventory[0].StartUnixMs() << ".."
      << inventory[0].end_unix_ms << " (Unix ms)";
  // Both waited for the order (1 ms of slack: the log's times are whole milliseconds).
  EXPECT_GE(payment[0].StartUnixMs() + 1, order[0].end_unix_ms);
  EXPECT_GE(inventory[0].StartUnixMs() + 1, order[0].end_unix_ms);

  // Back to normal: a saga without the delays.
  ASSERT_EQ(shop_->ClearFaults(ShopService::kPayment).status, 200);
  ASSERT_EQ(shop_->ClearFaults(ShopService::kInventory).status, 200);
  const Purchase quick{"shop-parallel-2", "parallel-2", "alice", "widget", 1, 20};
  const Reply second = txc().Submit(shop_->SagaBody(quick, options));
  ASSERT_EQ(second.status, 200) << second;
  EXPECT_EQ(Text(second.json(), "state"), "succeeded") << second;
  for (const ShopService service : {ShopService::kPayment, ShopService::kInventory}) {
    const auto calls = shop_->BusinessCalls(service, "shop-parallel-2");
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_LT(calls[0].ms, 800) << ShopServiceName(service) << " is still delayed";
  }
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

// ---- TCC --------------------------------------------------------------------------------------

TEST_F(ShopE2eTest, TccConfirmFreezesAndReservesWhileTheTriesStandThenDeducts) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  // Inventory is slow (each of its calls 1.5 s): payment's try is answered long before the
  // decision, and inventory's reservation stands while its confirm is on its way.
  ASSERT_EQ(shop_->SetFaults(ShopService::kInventory, R"({"delay_ms": 1500})").status, 200);
  const Purchase purchase{"shop-tcc-ok-1", "", "alice", "widget", 3, 40};
  SubmitOptions options;
  options.wait = false;

  const Reply submitted = txc().Submit(shop_->TccBody(purchase, options));
  ASSERT_EQ(submitted.status, 202) << submitted;
  EXPECT_TRUE(Eventually(
      [&] {
        const HoldingView alice = shop_->Account("alice");
        return alice.available == 60 && alice.held == 40;
      },
      10s, 20ms))
      << "payment's try never showed 40 frozen: " << Describe(shop_->Account("alice"));
  EXPECT_TRUE(Eventually(
      [&] {
        const HoldingView widget = shop_->Item("widget");
        return widget.available == 7 && widget.held == 3;
      },
      10s, 20ms))
      << "inventory's try never showed 3 reserved: " << Describe(shop_->Item("widget"));

  const Json document = txc().WaitFinal("shop-tcc-ok-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "confirmed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("confirmed", "confirmed"));
  ExpectAccount("alice", 60, 0);
  ExpectItem("widget", 7, 0);
  EXPECT_TRUE(shop_->CheckTccPurchase(purchase, true));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-tcc-ok-1")),
              ElementsAre("try:200", "confirm:200"));
}

TEST_F(ShopE2eTest, TccWithOneRefusedTryCancelsAndUnfreezesEverything) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 2));
  const Purchase purchase{"shop-tcc-refused-1", "", "alice", "widget", 3, 40};

  const Reply reply = txc().Submit(shop_->TccBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "cancelled") << reply;
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("cancelled", "cancelled"));
  EXPECT_THAT(Text(Branch(document, "inventory"), "last_error"), HasSubstr("out_of_stock"));

  ExpectAccount("alice", 100, 0);
  ExpectItem("widget", 2, 0);
  const LedgerTotals paid = shop_->PaymentLedger("shop-tcc-refused-1");
  EXPECT_EQ(paid.Entries("tcc_freeze"), 1) << paid.ToString();
  EXPECT_EQ(paid.Entries("tcc_unfreeze"), 1) << paid.ToString();
  // The refused try did nothing: its cancel is an empty compensation, with no movement.
  EXPECT_EQ(shop_->InventoryLedger("shop-tcc-refused-1").kinds.size(), 0u);
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kInventory, "shop-tcc-refused-1")),
              ElementsAre("try:409", "cancel:200"));
  EXPECT_TRUE(shop_->CheckTccPurchase(purchase, false));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

// ---- duplicates -------------------------------------------------------------------------------

TEST_F(ShopE2eTest, AChargeWhoseReplyIsLostAfterTheCommitIsAppliedOnce) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  // The charge commits, then its reply is a 503: txcoord retries, the barrier says duplicate.
  ASSERT_EQ(
      shop_->SetFaults(ShopService::kPayment, R"({"fail_next": 1, "after_commit": true})").status,
      200);
  const Purchase purchase{"shop-lost-reply-1", "lost-reply-1", "alice", "widget", 1, 30};

  const Reply reply = txc().Submit(shop_->SagaBody(purchase));
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "succeeded") << reply;
  EXPECT_EQ(Number(Branch(document, "payment"), "attempts"), 2) << reply;
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-lost-reply-1")),
              ElementsAre("action:503", "action:200"));
  EXPECT_EQ(shop_->PaymentLedger("shop-lost-reply-1").Entries("charge"), 1);
  ExpectAccount("alice", 70, 0);

  // The same delivery once more, straight from here with the same Txc headers.
  const ShopReply again = ShopHttp(shop_->port(ShopService::kPayment), "POST", "/payments/charge",
                                   R"({"account": "alice", "amount": 30})",
                                   {{"Txc-Gid", "shop-lost-reply-1"},
                                    {"Txc-Branch", "payment"},
                                    {"Txc-Op", "action"},
                                    {"Idempotency-Key", "shop-lost-reply-1/payment/action"}});
  EXPECT_EQ(again.status, 200) << again.ToString();
  EXPECT_EQ(Text(ParseObject(again.body), "verdict"), "duplicate") << again.ToString();
  EXPECT_EQ(shop_->PaymentLedger("shop-lost-reply-1").Entries("charge"), 1);
  ExpectAccount("alice", 70, 0);
  ExpectItem("widget", 9, 0);
  EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, true));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

TEST_F(ShopE2eTest, ATryAndARefundWhoseRepliesAreLostAreAppliedOnce) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  ASSERT_TRUE(shop_->SeedItem("gadget", 0));

  // TCC: inventory's try reserves and commits, its reply is lost; the retry is a duplicate.
  ASSERT_EQ(
      shop_->SetFaults(ShopService::kInventory, R"({"fail_next": 1, "after_commit": true})").status,
      200);
  const Purchase tcc{"shop-lost-try-1", "", "alice", "widget", 2, 10};
  const Reply confirmed = txc().Submit(shop_->TccBody(tcc));
  ASSERT_EQ(confirmed.status, 200) << confirmed;
  EXPECT_EQ(Text(confirmed.json(), "state"), "confirmed") << confirmed;
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kInventory, "shop-lost-try-1")),
              ElementsAre("try:503", "try:200", "confirm:200"));
  EXPECT_TRUE(shop_->CheckTccPurchase(tcc, true));
  ExpectAccount("alice", 90, 0);
  ExpectItem("widget", 8, 0);

  // Saga: out of stock at the last step, and the refund's reply is lost. Inventory is slow, so
  // the fault can be armed after the charge and before the refund.
  ASSERT_EQ(shop_->SetFaults(ShopService::kInventory, R"({"delay_ms": 1500})").status, 200);
  const Purchase saga{"shop-lost-refund-1", "lost-refund-1", "alice", "gadget", 1, 15};
  SubmitOptions options;
  options.wait = false;
  const Reply submitted = txc().Submit(shop_->SagaBody(saga, options));
  ASSERT_EQ(submitted.status, 202) << submitted;
  ASSERT_TRUE(
      Eventually([&] { return shop_->PaymentLedger("shop-lost-refund-1").Entries("charge") == 1; },
                 10s, 10ms));
  ASSERT_EQ(
      shop_->SetFaults(ShopService::kPayment, R"({"fail_next": 1, "after_commit": true})").status,
      200);
  const Json compensated = txc().WaitFinal("shop-lost-refund-1");
  ASSERT_NE(compensated, nullptr);
  EXPECT_EQ(Text(compensated, "state"), "compensated");
  EXPECT_THAT(CallSummary(shop_->BusinessCalls(ShopService::kPayment, "shop-lost-refund-1")),
              ElementsAre("action:200", "compensate:503", "compensate:200"));
  const LedgerTotals paid = shop_->PaymentLedger("shop-lost-refund-1");
  EXPECT_EQ(paid.Entries("charge"), 1) << paid.ToString();
  EXPECT_EQ(paid.Entries("refund"), 1) << paid.ToString();
  ExpectAccount("alice", 90, 0);
  EXPECT_EQ(shop_->Order("lost-refund-1").status, "cancelled");
  EXPECT_TRUE(shop_->CheckSagaPurchase(saga, false));
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

TEST_F(ShopE2eTest, ACancelBeforeItsTryIsRecordedAndTheLateTryIsRefused) {
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  const std::map<std::string, std::string> cancel_headers = {
      {"Txc-Gid", "shop-late-try-1"}, {"Txc-Branch", "inventory"}, {"Txc-Op", "cancel"}};
  const ShopReply cancelled =
      ShopHttp(shop_->port(ShopService::kInventory), "POST", "/tcc/stock/cancel",
               R"({"item": "widget", "qty": 4})", cancel_headers);
  EXPECT_EQ(cancelled.status, 200) << cancelled.ToString();
  EXPECT_EQ(Text(ParseObject(cancelled.body), "verdict"), "empty_compensation")
      << cancelled.ToString();

  std::map<std::string, std::string> try_headers = cancel_headers;
  try_headers["Txc-Op"] = "try";
  const ShopReply late = ShopHttp(shop_->port(ShopService::kInventory), "POST", "/tcc/stock/try",
                                  R"({"item": "widget", "qty": 4})", try_headers);
  EXPECT_EQ(late.status, 409) << late.ToString();
  EXPECT_THAT(late.body, HasSubstr("refused_after_cancel"));
  // No hanging reservation.
  ExpectItem("widget", 10, 0);
  EXPECT_EQ(shop_->InventoryLedger("shop-late-try-1").kinds.size(), 0u);
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
}

// The checks the chaos tests rely on are not vacuous: a charge without an order, and money put
// in behind the ledger's back, are both caught.
TEST_F(ShopE2eTest, TheConservationCheckCatchesAChargeWithoutAnOrderAndMoneyFromNowhere) {
  ASSERT_TRUE(shop_->SeedAccount("alice", 100));
  ASSERT_TRUE(shop_->SeedItem("widget", 10));
  ASSERT_TRUE(shop_->CheckConservation(/*settled=*/true));

  const ShopReply charged =
      ShopHttp(shop_->port(ShopService::kPayment), "POST", "/payments/charge",
               R"({"account": "alice", "amount": 5})",
               {{"Txc-Gid", "no-order-1"}, {"Txc-Branch", "payment"}, {"Txc-Op", "action"}});
  ASSERT_EQ(charged.status, 200) << charged.ToString();
  const ::testing::AssertionResult no_order = shop_->CheckConservation(/*settled=*/true);
  EXPECT_FALSE(no_order);
  EXPECT_THAT(no_order.message(), HasSubstr("the sagas charged 5 net"));
  const Purchase orphan{"no-order-1", "no-order-1", "alice", "widget", 1, 5};
  EXPECT_FALSE(shop_->CheckSagaPurchase(orphan, true));
  EXPECT_FALSE(shop_->CheckSagaPurchase(orphan, false));

  // The refund puts the orders right again; a PUT that raises the balance does not.
  const ShopReply refunded =
      ShopHttp(shop_->port(ShopService::kPayment), "POST", "/payments/refund",
               R"({"account": "alice", "amount": 5})",
               {{"Txc-Gid", "no-order-1"}, {"Txc-Branch", "payment"}, {"Txc-Op", "compensate"}});
  ASSERT_EQ(refunded.status, 200) << refunded.ToString();
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true));
  ASSERT_EQ(
      ShopHttp(shop_->port(ShopService::kPayment), "PUT", "/accounts/alice", R"({"balance": 130})")
          .status,
      200);
  const ::testing::AssertionResult from_nowhere = shop_->CheckConservation(/*settled=*/true);
  EXPECT_FALSE(from_nowhere);
  EXPECT_THAT(from_nowhere.message(), HasSubstr("money created or lost: seeded 100"));
}

}  // namespace
}  // namespace txc::testing
