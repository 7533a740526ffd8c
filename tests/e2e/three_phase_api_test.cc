// 3PC through the real API with HTTP branches: txcoord as a process, participants scripted in
// the test process (tests/e2e/api_harness.h). All yes → can_commit, pre_commit, do_commit to
// every branch in that order; a no vote → abort everywhere; a kill right after the PRE-COMMIT
// decision → the restarted coordinator commits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"

namespace txc::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ThreePhaseApiTest : public ApiTest {};

std::string ThreePhaseBranch(const Participant& p, const std::string& name) {
  return "{\"name\":\"" + name + "\",\"can_commit\":{\"url\":\"" + p.Url("can_commit") +
         "\"},\"pre_commit\":{\"url\":\"" + p.Url("pre_commit") + "\"},\"do_commit\":{\"url\":\"" +
         p.Url("do_commit") + "\"},\"abort\":{\"url\":\"" + p.Url("abort") + "\"}}";
}

Spec ThreePc(const std::string& gid, std::vector<std::string> branches) {
  Spec spec{gid, std::move(branches)};
  spec.protocol = "3pc";
  return spec;
}

TEST_F(ThreePhaseApiTest, AllYesRunsTheThreePhasesInOrderAndCommits) {
  StartTxcoord();
  Participant a("a", &journal_);
  Participant b("b", &journal_);
  Reply reply =
      txc().Submit(ThreePc("3pc-ok-1", {ThreePhaseBranch(a, "a"), ThreePhaseBranch(b, "b")}));
  ASSERT_EQ(reply.status, 200) << reply;
  Json document = reply.json();
  EXPECT_EQ(Text(document, "protocol"), "3pc");
  EXPECT_EQ(Text(document, "state"), "committed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
  // Per participant: the three phases in order, once each, with the contract's headers.
  for (const auto* p : {&a, &b}) {
    std::vector<std::string> ops;
    for (const auto& request : p->Requests("3pc-ok-1")) ops.push_back(request.Header("Txc-Op"));
    EXPECT_THAT(ops, ElementsAre("can_commit", "pre_commit", "do_commit")) << p->name();
    EXPECT_EQ(p->Requests("3pc-ok-1", "do_commit").at(0).Header("Idempotency-Key"),
              "3pc-ok-1/" + p->name() + "/do_commit");
  }
  // No pre_commit before every vote, no do_commit before every pre_commit acknowledgement.
  auto calls = journal_.Calls("3pc-ok-1");
  auto last_of = [&](const std::string& op) {
    size_t last = 0;
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].ends_with(":" + op)) last = i;
    }
    return last;
  };
  auto first_of = [&](const std::string& op) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].ends_with(":" + op)) return i;
    }
    return calls.size();
  };
  EXPECT_LT(last_of("can_commit"), first_of("pre_commit"));
  EXPECT_LT(last_of("pre_commit"), first_of("do_commit"));
}

TEST_F(ThreePhaseApiTest, ANoVoteAbortsEveryBranchAndNothingIsPrecommitted) {
  StartTxcoord();
  Participant a("a", &journal_);
  Participant b("b", &journal_);
  b.Respond("can_commit", 409, "no");
  Reply reply =
      txc().Submit(ThreePc("3pc-no-1", {ThreePhaseBranch(a, "a"), ThreePhaseBranch(b, "b")}));
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_EQ(Text(reply.json(), "state"), "aborted");
  EXPECT_THAT(Text(reply.json(), "reason"), HasSubstr("voted no"));
  EXPECT_EQ(a.Count("3pc-no-1", "abort"), 1u);
  EXPECT_EQ(b.Count("3pc-no-1", "abort"), 1u);
  EXPECT_EQ(a.Count("3pc-no-1", "pre_commit") + b.Count("3pc-no-1", "pre_commit"), 0u);
}

TEST_F(ThreePhaseApiTest, KilledRightAfterThePrecommitDecisionItCommitsAfterTheRestart) {
  StartTxcoord({{"TXC_CRASH_AT", "after_decision_durable"}});
  Participant a("a", &journal_);
  Participant b("b", &journal_);
  Spec spec = ThreePc("3pc-crash-1", {ThreePhaseBranch(a, "a"), ThreePhaseBranch(b, "b")});
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(Eventually([&] { return !txc().Running(); }, 10s));
  EXPECT_EQ(a.Count("3pc-crash-1", "pre_commit") + b.Count("3pc-crash-1", "pre_commit"), 0u);
  txc_.reset();
  env_.clear();
  StartTxcoord();
  Json document = txc().WaitFinal("3pc-crash-1");
  ASSERT_NE(document, nullptr);
  EXPECT_EQ(Text(document, "state"), "committed");
  for (const auto* p : {&a, &b}) {
    EXPECT_EQ(p->Count("3pc-crash-1", "pre_commit"), 1u) << p->name();
    EXPECT_EQ(p->Count("3pc-crash-1", "do_commit"), 1u) << p->name();
    EXPECT_EQ(p->Count("3pc-crash-1", "abort"), 0u) << p->name();
  }
}

TEST_F(ThreePhaseApiTest, DatabaseBranchesAreRefusedNamingTheField) {
  StartTxcoord();
  Reply reply = txc().Submit(
      R"({"protocol":"3pc","branches":[{"name":"a","resource":"pg","sql":[{"text":"SELECT 1"}]}]})");
  EXPECT_EQ(reply.status, 400) << reply;
  EXPECT_THAT(reply.ErrorMessage(), HasSubstr("branches[0].resource"));
}

}  // namespace
}  // namespace txc::testing
