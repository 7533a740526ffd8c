// The 3PC state machine driven event by event: no threads, no sockets, no sleeps.
#include "coordinator/protocol/three_phase_commit.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace txc::protocol {
namespace {

using log::Durability;
using log::RecordType;
using participants::CallResult;
using participants::Op;

std::vector<uint32_t> Called(const Ready& ready, Op op) {
  std::vector<uint32_t> branches;
  for (const auto& call : ready.calls) {
    if (call.op == op) branches.push_back(call.branch);
  }
  std::sort(branches.begin(), branches.end());
  return branches;
}

const Persist* ForcedDecision(const Ready& ready) {
  for (const auto& p : ready.persist) {
    if (p.type == RecordType::kDecision && p.durability == Durability::kForced) return &p;
  }
  return nullptr;
}

TEST(ThreePhaseCommitTest, VotesThenPrecommitThenCommitEachForcedBeforeItsPhase) {
  ThreePhaseCommit txn(2, 1000);
  Ready start = txn.Start(0);
  EXPECT_EQ(start.persist.front().type, RecordType::kBegin);
  EXPECT_EQ(Called(start, Op::kCanCommit), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(txn.StateName(), "querying");
  EXPECT_EQ(ForcedDecision(txn.OnReply(0, Op::kCanCommit, CallResult::Ok(), 1)), nullptr);
  Ready precommit = txn.OnReply(1, Op::kCanCommit, CallResult::Ok(), 2);
  ASSERT_NE(ForcedDecision(precommit), nullptr);
  EXPECT_EQ(ForcedDecision(precommit)->body, "precommit");
  EXPECT_EQ(Called(precommit, Op::kPreCommit), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(txn.StateName(), "precommitting");
  EXPECT_TRUE(txn.OnReply(0, Op::kPreCommit, CallResult::Ok(), 3).calls.empty());
  Ready commit = txn.OnReply(1, Op::kPreCommit, CallResult::Ok(), 4);
  ASSERT_NE(ForcedDecision(commit), nullptr);
  EXPECT_EQ(ForcedDecision(commit)->body, "commit");
  EXPECT_EQ(Called(commit, Op::kDoCommit), (std::vector<uint32_t>{0, 1}));
  (void)txn.OnReply(0, Op::kDoCommit, CallResult::Ok(), 5);
  Ready end = txn.OnReply(1, Op::kDoCommit, CallResult::Ok(), 6);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kCommitted);
  EXPECT_EQ(txn.StateName(), "committed");
}

TEST(ThreePhaseCommitTest, ANoVoteAbortsEveryBranchTheOneStillVotingAfterItsReply) {
  ThreePhaseCommit txn(3, 1000);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kCanCommit, CallResult::Ok(), 1);
  Ready abort = txn.OnReply(1, Op::kCanCommit, CallResult::Refused("no"), 2);
  ASSERT_NE(ForcedDecision(abort), nullptr);
  EXPECT_TRUE(ForcedDecision(abort)->body.starts_with("abort branch 1 voted no"));
  EXPECT_EQ(Called(abort, Op::kAbort), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(Called(txn.OnReply(2, Op::kCanCommit, CallResult::Ok(), 3), Op::kAbort),
            (std::vector<uint32_t>{2}));
  for (uint32_t b = 0; b < 2; ++b) (void)txn.OnReply(b, Op::kAbort, CallResult::Ok(), 4);
  Ready end = txn.OnReply(2, Op::kAbort, CallResult::Ok(), 5);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kAborted);
}

TEST(ThreePhaseCommitTest, TheDeadlineAbortsOnlyWhileQuerying) {
  ThreePhaseCommit txn(1, 100);
  (void)txn.Start(0);
  Ready retry = txn.OnReply(0, Op::kCanCommit, CallResult::Transient("503"), 1);
  ASSERT_EQ(retry.retries.size(), 1u);
  Ready abort = txn.OnDeadline(100);
  ASSERT_NE(ForcedDecision(abort), nullptr);
  EXPECT_EQ(Called(abort, Op::kAbort), (std::vector<uint32_t>{0}));
  EXPECT_TRUE(txn.OnRetryDue(0, retry.retries[0].token, 101).calls.empty());

  ThreePhaseCommit late(1, 100);
  (void)late.Start(0);
  (void)late.OnReply(0, Op::kCanCommit, CallResult::Ok(), 1);
  EXPECT_EQ(late.StateName(), "precommitting");
  EXPECT_EQ(ForcedDecision(late.OnDeadline(200)), nullptr);  // past the pre-commit: commit
  EXPECT_FALSE(late.OnOperatorAbort(201));
}

TEST(ThreePhaseCommitTest, ARefusedPrecommitNeedsAnOperatorAndIsRetriedSlowly) {
  ThreePhaseCommit txn(1, 1000);
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kCanCommit, CallResult::Ok(), 1);
  Ready stuck = txn.OnReply(0, Op::kPreCommit, CallResult::Refused("aborted by its timeout"), 2);
  ASSERT_EQ(stuck.retries.size(), 1u);
  EXPECT_TRUE(stuck.retries[0].longest);
  EXPECT_TRUE(txn.Branch(0).needs_operator);
  EXPECT_EQ(txn.OnOperatorResolve(0, Outcome::kAborted, 3).status().code(),
            StatusCode::kFailedPrecondition);
  auto resolved = txn.OnOperatorResolve(0, Outcome::kCommitted, 3);
  ASSERT_TRUE(resolved.ok());
  ASSERT_TRUE(resolved->finished || ForcedDecision(*resolved) != nullptr);
}

TEST(ThreePhaseCommitTest, RecoveryCommitsAfterThePrecommitAndAbortsBeforeIt) {
  auto record = [](RecordType type, std::string body) {
    log::LogRecord r;
    r.gid = "t";
    r.type = type;
    r.body = std::move(body);
    return r;
  };
  auto precommitted = ThreePhaseCommit::Recover(
      2, {record(RecordType::kBegin, ""), record(RecordType::kDecision, "precommit"),
          record(RecordType::kProgress, "0 precommitted")});
  ASSERT_TRUE(precommitted.ok()) << precommitted.status().ToString();
  Ready resumed = precommitted->Resume(0);
  EXPECT_EQ(Called(resumed, Op::kPreCommit), (std::vector<uint32_t>{1}));
  Ready commit = precommitted->OnReply(1, Op::kPreCommit, CallResult::Ok(), 1);
  EXPECT_EQ(Called(commit, Op::kDoCommit), (std::vector<uint32_t>{0, 1}));

  auto committing = ThreePhaseCommit::Recover(
      2, {record(RecordType::kBegin, ""), record(RecordType::kDecision, "precommit"),
          record(RecordType::kDecision, "commit"), record(RecordType::kProgress, "1 committed")});
  ASSERT_TRUE(committing.ok());
  EXPECT_EQ(Called(committing->Resume(0), Op::kDoCommit), (std::vector<uint32_t>{0}));

  auto undecided = ThreePhaseCommit::Recover(
      2, {record(RecordType::kBegin, ""), record(RecordType::kProgress, "0 voted")});
  ASSERT_TRUE(undecided.ok());
  Ready abort = undecided->Resume(0);
  ASSERT_NE(ForcedDecision(abort), nullptr);
  EXPECT_EQ(Called(abort, Op::kAbort), (std::vector<uint32_t>{0, 1}));

  EXPECT_FALSE(ThreePhaseCommit::Recover(
                   1, {record(RecordType::kBegin, ""), record(RecordType::kDecision, "maybe")})
                   .ok());
}

}  // namespace
}  // namespace txc::protocol
