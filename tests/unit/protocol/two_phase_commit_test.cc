// The 2PC state machine, driven event by event: no threads, no sockets, no sleeps.
#include "coordinator/protocol/two_phase_commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace txc::protocol {
namespace {

using log::Durability;
using log::RecordType;
using participants::CallResult;
using participants::Op;

std::vector<uint32_t> CalledBranches(const Ready& ready, Op op) {
  std::vector<uint32_t> branches;
  for (const auto& call : ready.calls) {
    if (call.op == op) branches.push_back(call.branch);
  }
  std::sort(branches.begin(), branches.end());
  return branches;
}

bool PersistsForced(const Ready& ready, RecordType type) {
  return std::any_of(ready.persist.begin(), ready.persist.end(), [&](const Persist& p) {
    return p.type == type && p.durability == Durability::kForced;
  });
}

TEST(TwoPhaseCommitTest, StartForcesBeginThenPreparesEveryBranch) {
  TwoPhaseCommit txn(3, 1000);
  Ready ready = txn.Start(0);
  ASSERT_EQ(ready.persist.size(), 1u);
  EXPECT_EQ(ready.persist[0].type, RecordType::kBegin);
  EXPECT_EQ(ready.persist[0].durability, Durability::kForced);
  EXPECT_EQ(CalledBranches(ready, Op::kPrepare), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(ready.deadline_at_ms, 1000);
  EXPECT_EQ(txn.state(), TwoPhaseState::kPreparing);
}

TEST(TwoPhaseCommitTest, AllYesForcesCommitThenCommitsThenEnds) {
  TwoPhaseCommit txn(2, 1000);
  (void)txn.Start(0);
  Ready first = txn.OnReply(0, Op::kPrepare, CallResult::Ok(), 1);
  EXPECT_TRUE(first.calls.empty());
  EXPECT_FALSE(PersistsForced(first, RecordType::kDecision));
  Ready decision = txn.OnReply(1, Op::kPrepare, CallResult::Ok(), 2);
  EXPECT_TRUE(PersistsForced(decision, RecordType::kDecision));
  EXPECT_EQ(decision.persist.back().body, "commit");
  EXPECT_EQ(CalledBranches(decision, Op::kCommit), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(txn.state(), TwoPhaseState::kCommitting);
  EXPECT_FALSE(txn.OnReply(0, Op::kCommit, CallResult::Ok(), 3).finished);
  Ready end = txn.OnReply(1, Op::kCommit, CallResult::Ok(), 4);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kCommitted);
  EXPECT_EQ(end.persist.back().type, RecordType::kEnd);
  EXPECT_EQ(end.persist.back().durability, Durability::kLazy);
  EXPECT_EQ(txn.state(), TwoPhaseState::kCommitted);
}

TEST(TwoPhaseCommitTest, NoVoteAbortsAndWaitsForPreparesStillOut) {
  TwoPhaseCommit txn(3, 1000);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kPrepare, CallResult::Ok(), 1);
  Ready abort = txn.OnReply(1, Op::kPrepare, CallResult::Refused("insufficient funds"), 2);
  EXPECT_TRUE(PersistsForced(abort, RecordType::kDecision));
  EXPECT_TRUE(abort.persist.back().body.starts_with("abort branch 1 voted no"));
  // Branch 2's prepare is still out: it gets its abort only after the reply.
  EXPECT_EQ(CalledBranches(abort, Op::kAbort), (std::vector<uint32_t>{0, 1}));
  Ready late = txn.OnReply(2, Op::kPrepare, CallResult::Ok(), 3);
  EXPECT_EQ(CalledBranches(late, Op::kAbort), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(CalledBranches(late, Op::kCommit).empty());
  for (uint32_t b = 0; b < 2; ++b) (void)txn.OnReply(b, Op::kAbort, CallResult::Ok(), 4);
  Ready end = txn.OnReply(2, Op::kAbort, CallResult::Ok(), 5);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kAborted);
  EXPECT_EQ(txn.Branch(1).last_error, "insufficient funds");
}

TEST(TwoPhaseCommitTest, TransientPrepareIsRetriedUntilTheDeadline) {
  TwoPhaseCommit txn(1, 100);
  (void)txn.Start(0);
  Ready retry = txn.OnReply(0, Op::kPrepare, CallResult::Transient("503"), 10);
  ASSERT_EQ(retry.retries.size(), 1u);
  EXPECT_EQ(retry.retries[0].op, Op::kPrepare);
  EXPECT_EQ(retry.retries[0].attempt, 1u);
  EXPECT_FALSE(retry.retries[0].longest);
  Ready again = txn.OnRetryDue(0, retry.retries[0].token, 20);
  EXPECT_EQ(CalledBranches(again, Op::kPrepare), (std::vector<uint32_t>{0}));
  EXPECT_EQ(txn.Branch(0).attempts, 2u);
  Ready late = txn.OnReply(0, Op::kPrepare, CallResult::Unknown("timeout"), 100);
  EXPECT_TRUE(PersistsForced(late, RecordType::kDecision));
  EXPECT_EQ(CalledBranches(late, Op::kAbort), (std::vector<uint32_t>{0}));
}

TEST(TwoPhaseCommitTest, DeadlineAbortsBranchesThatHaveNotVoted) {
  TwoPhaseCommit txn(2, 100);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kPrepare, CallResult::Ok(), 5);
  EXPECT_TRUE(txn.OnDeadline(99).empty());  // early timer: nothing
  Ready abort = txn.OnDeadline(100);
  EXPECT_TRUE(PersistsForced(abort, RecordType::kDecision));
  EXPECT_NE(abort.persist.back().body.find("branches 1 not prepared"), std::string::npos);
  EXPECT_EQ(CalledBranches(abort, Op::kAbort), (std::vector<uint32_t>{0}));  // 1 is still out
  EXPECT_TRUE(txn.OnDeadline(200).empty());  // decided: nothing more
}

TEST(TwoPhaseCommitTest, DeadlineAlreadyPassedAbortsWithoutCallingPrepare) {
  TwoPhaseCommit txn(2, 50);
  Ready ready = txn.Start(50);
  EXPECT_TRUE(CalledBranches(ready, Op::kPrepare).empty());
  EXPECT_TRUE(PersistsForced(ready, RecordType::kDecision));
}

TEST(TwoPhaseCommitTest, PhaseTwoFailuresAreRetriedWithoutEnd) {
  TwoPhaseCommit txn(1, 1000);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kPrepare, CallResult::Ok(), 1);
  uint64_t token = 0;
  for (int i = 0; i < 50; ++i) {  // far past any phase-1 deadline
    Ready retry = txn.OnReply(0, Op::kCommit, CallResult::Transient("db restarting"), 2000 + i);
    ASSERT_EQ(retry.retries.size(), 1u);
    EXPECT_FALSE(retry.retries[0].longest);
    token = retry.retries[0].token;
    ASSERT_EQ(CalledBranches(txn.OnRetryDue(0, token, 2000 + i), Op::kCommit),
              (std::vector<uint32_t>{0}));
  }
  EXPECT_EQ(txn.state(), TwoPhaseState::kCommitting);
  Ready permanent = txn.OnReply(0, Op::kCommit, CallResult::Permanent("HTTP 404"), 3000);
  ASSERT_EQ(permanent.retries.size(), 1u);
  EXPECT_TRUE(permanent.retries[0].longest);
  EXPECT_TRUE(txn.Branch(0).needs_operator);
  EXPECT_TRUE(txn.AnyNeedsOperator());
  (void)txn.OnRetryDue(0, permanent.retries[0].token, 4000);
  Ready end = txn.OnReply(0, Op::kCommit, CallResult::Ok(), 4001);
  EXPECT_TRUE(end.finished);
  EXPECT_FALSE(txn.Branch(0).needs_operator);
}

TEST(TwoPhaseCommitTest, StaleRetriesAndDuplicateRepliesAreIgnored) {
  TwoPhaseCommit txn(2, 1000);
  (void)txn.Start(0);
  Ready retry = txn.OnReply(0, Op::kPrepare, CallResult::Transient("busy"), 1);
  const uint64_t token = retry.retries.at(0).token;
  (void)txn.OnReply(1, Op::kPrepare, CallResult::Refused("no"), 2);  // abort: voids the retry
  EXPECT_TRUE(txn.OnRetryDue(0, token, 3).empty());
  EXPECT_TRUE(txn.OnReply(1, Op::kPrepare, CallResult::Ok(), 4).empty());  // duplicate reply
  EXPECT_TRUE(txn.OnReply(0, Op::kCommit, CallResult::Ok(), 5).empty());   // never sent
}

TEST(TwoPhaseCommitTest, OperatorAbortOnlyBeforeTheDecision) {
  TwoPhaseCommit txn(1, 1000);
  (void)txn.Start(0);
  auto abort = txn.OnOperatorAbort(1);
  ASSERT_TRUE(abort);
  EXPECT_TRUE(PersistsForced(*abort, RecordType::kDecision));
  EXPECT_FALSE(txn.OnOperatorAbort(2));
}

std::vector<log::LogRecord> Records(std::initializer_list<std::pair<RecordType, std::string>> rs) {
  std::vector<log::LogRecord> out;
  for (const auto& [type, body] : rs) out.push_back({type, "g", 0, body});
  return out;
}

TEST(TwoPhaseCommitTest, RecoveryWithoutDecisionPresumesAbort) {
  auto txn = TwoPhaseCommit::Recover(
      2, Records({{RecordType::kBegin, "spec"}, {RecordType::kProgress, "0 prepared"}}));
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  Ready ready = txn->Resume(0);
  EXPECT_TRUE(PersistsForced(ready, RecordType::kDecision));
  EXPECT_NE(ready.persist.back().body.find("presumed abort"), std::string::npos);
  EXPECT_EQ(CalledBranches(ready, Op::kAbort), (std::vector<uint32_t>{0, 1}));
}

TEST(TwoPhaseCommitTest, RecoveryWithCommitFinishesTheCommitWhereItStopped) {
  auto txn = TwoPhaseCommit::Recover(3, Records({{RecordType::kBegin, "spec"},
                                                 {RecordType::kProgress, "0 prepared"},
                                                 {RecordType::kProgress, "1 prepared"},
                                                 {RecordType::kProgress, "2 prepared"},
                                                 {RecordType::kDecision, "commit"},
                                                 {RecordType::kProgress, "1 committed"}}));
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  Ready ready = txn->Resume(0);
  EXPECT_FALSE(PersistsForced(ready, RecordType::kDecision));  // already durable
  EXPECT_EQ(CalledBranches(ready, Op::kCommit), (std::vector<uint32_t>{0, 2}));
}

TEST(TwoPhaseCommitTest, RecoveryTakesACommitDecisionAsEveryVoteYes) {
  // The votes' lazy records did not survive; the forced decision did.
  auto txn = TwoPhaseCommit::Recover(
      2, Records({{RecordType::kBegin, "spec"}, {RecordType::kDecision, "commit"}}));
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  Ready ready = txn->Resume(0);
  EXPECT_EQ(CalledBranches(ready, Op::kCommit), (std::vector<uint32_t>{0, 1}));
  EXPECT_FALSE(TwoPhaseCommit::Recover(1, Records({{RecordType::kBegin, "spec"},
                                                   {RecordType::kProgress, "0 refused"},
                                                   {RecordType::kDecision, "commit"}}))
                   .ok());
}

TEST(TwoPhaseCommitTest, RecoveryWithEveryBranchDoneJustEnds) {
  auto txn = TwoPhaseCommit::Recover(1, Records({{RecordType::kBegin, "spec"},
                                                 {RecordType::kDecision, "abort branch 0 no"},
                                                 {RecordType::kProgress, "0 aborted"}}));
  ASSERT_TRUE(txn.ok());
  Ready ready = txn->Resume(0);
  EXPECT_TRUE(ready.calls.empty());
  ASSERT_TRUE(ready.finished);
  EXPECT_EQ(*ready.finished, Outcome::kAborted);
  EXPECT_EQ(txn->decision_reason(), "branch 0 no");
}

TEST(TwoPhaseCommitTest, RecoveryRefusesRecordsItCannotRead) {
  EXPECT_FALSE(TwoPhaseCommit::Recover(1, Records({{RecordType::kProgress, "0 prepared"}})).ok());
  EXPECT_FALSE(TwoPhaseCommit::Recover(
                   1, Records({{RecordType::kBegin, ""}, {RecordType::kDecision, "maybe"}}))
                   .ok());
  EXPECT_FALSE(TwoPhaseCommit::Recover(
                   1, Records({{RecordType::kBegin, ""}, {RecordType::kProgress, "7 prepared"}}))
                   .ok());
  EXPECT_FALSE(TwoPhaseCommit::Recover(
                   1, Records({{RecordType::kBegin, ""}, {RecordType::kProgress, "0 sideways"}}))
                   .ok());
}

// Every order of three branches' votes, each yes, no or silent until the deadline: the decision
// is commit exactly when all voted yes, no commit is ever sent otherwise, and every branch gets
// its phase 2 exactly once its prepare is answered.
TEST(TwoPhaseCommitTest, EveryReplyOrderOfThreeBranches) {
  enum Vote { kYes, kNo, kSilent };
  int cases = 0;
  for (int votes = 0; votes < 27; ++votes) {
    const Vote v[3] = {static_cast<Vote>(votes % 3), static_cast<Vote>(votes / 3 % 3),
                       static_cast<Vote>(votes / 9)};
    std::vector<uint32_t> order = {0, 1, 2};
    do {
      ++cases;
      TwoPhaseCommit txn(3, 100);
      (void)txn.Start(0);
      std::vector<Ready> readies;
      int64_t now = 1;
      for (uint32_t b : order) {
        const CallResult r = v[b] == kYes  ? CallResult::Ok()
                             : v[b] == kNo ? CallResult::Refused("no")
                                           : CallResult::Unknown("timeout");
        readies.push_back(txn.OnReply(b, Op::kPrepare, r, v[b] == kSilent ? 100 : now++));
      }
      readies.push_back(txn.OnDeadline(100));
      const bool all_yes = v[0] == kYes && v[1] == kYes && v[2] == kYes;
      ASSERT_EQ(txn.state(), all_yes ? TwoPhaseState::kCommitting : TwoPhaseState::kAborting);
      std::vector<int> phase_two(3, 0);
      int decisions = 0;
      for (const auto& ready : readies) {
        decisions += PersistsForced(ready, RecordType::kDecision) ? 1 : 0;
        for (const auto& call : ready.calls) {
          ASSERT_EQ(call.op, all_yes ? Op::kCommit : Op::kAbort);
          ++phase_two[call.branch];
        }
      }
      EXPECT_EQ(decisions, 1);
      EXPECT_EQ(phase_two, (std::vector<int>{1, 1, 1}));
    } while (std::next_permutation(order.begin(), order.end()));
  }
  EXPECT_EQ(cases, 27 * 6);
}

}  // namespace
}  // namespace txc::protocol

namespace txc::protocol {
namespace {

TEST(TwoPhaseResolveTest, AnOperatorCommitsAStuckBranchByHandAndTheTransactionEnds) {
  TwoPhaseCommit txn(2, 1000);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kPrepare, CallResult::Ok(), 1);
  (void)txn.OnReply(1, Op::kPrepare, CallResult::Ok(), 2);
  (void)txn.OnReply(0, Op::kCommit, CallResult::Ok(), 3);
  Ready stuck = txn.OnReply(1, Op::kCommit, CallResult::Permanent("404"), 4);
  ASSERT_TRUE(txn.Branch(1).needs_operator);
  EXPECT_EQ(txn.OnOperatorResolve(1, Outcome::kAborted, 5).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(txn.OnOperatorResolve(0, Outcome::kCommitted, 5).status().code(),
            StatusCode::kFailedPrecondition);  // already committed
  auto resolved = txn.OnOperatorResolve(1, Outcome::kCommitted, 5);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_TRUE(PersistsForced(*resolved, RecordType::kProgress));
  ASSERT_TRUE(resolved->finished);
  EXPECT_EQ(*resolved->finished, Outcome::kCommitted);
  EXPECT_FALSE(txn.Branch(1).needs_operator);
  EXPECT_TRUE(txn.OnRetryDue(1, stuck.retries[0].token, 60'000).calls.empty());
}

TEST(TwoPhaseResolveTest, RefusedBeforeTheDecision) {
  TwoPhaseCommit txn(1, 1000);
  (void)txn.Start(0);
  EXPECT_EQ(txn.OnOperatorResolve(0, Outcome::kAborted, 1).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace txc::protocol
