// TCC's words on the two-phase machine, driven event by event: what is sent, what is forced,
// what the states are called, and recovery.
#include "tcc/tcc.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace txc::tcc {
namespace {

using log::Durability;
using log::RecordType;
using participants::CallResult;
using participants::Op;
using protocol::Outcome;
using protocol::Ready;
using protocol::TwoPhaseCommit;

std::vector<uint32_t> Called(const Ready& ready, Op op) {
  std::vector<uint32_t> branches;
  for (const auto& call : ready.calls) {
    if (call.op == op) branches.push_back(call.branch);
  }
  std::sort(branches.begin(), branches.end());
  return branches;
}

bool Forces(const Ready& ready, RecordType type) {
  return std::any_of(ready.persist.begin(), ready.persist.end(), [&](const auto& p) {
    return p.type == type && p.durability == Durability::kForced;
  });
}

TEST(TccTest, EveryBranchIsTriedThenAllTriedConfirmsEachOne) {
  TwoPhaseCommit txn(3, 1000, TccVocabulary());
  Ready start = txn.Start(0);
  EXPECT_TRUE(Forces(start, RecordType::kBegin));
  EXPECT_EQ(Called(start, Op::kTry), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(txn.StateName(), "trying");
  (void)txn.OnReply(0, Op::kTry, CallResult::Ok(), 1);
  EXPECT_EQ(txn.Branch(0).state, "tried");
  (void)txn.OnReply(1, Op::kTry, CallResult::Ok(), 2);
  Ready decision = txn.OnReply(2, Op::kTry, CallResult::Ok(), 3);
  EXPECT_TRUE(Forces(decision, RecordType::kDecision));
  EXPECT_EQ(Called(decision, Op::kConfirm), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(txn.StateName(), "confirming");
  (void)txn.OnReply(0, Op::kConfirm, CallResult::Ok(), 4);
  (void)txn.OnReply(1, Op::kConfirm, CallResult::Ok(), 5);
  Ready end = txn.OnReply(2, Op::kConfirm, CallResult::Ok(), 6);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kCommitted);
  EXPECT_EQ(txn.StateName(), "confirmed");
  EXPECT_EQ(txn.Branch(2).state, "confirmed");
}

TEST(TccTest, ARefusedTryCancelsEveryBranchTheUnansweredOneAfterItsReply) {
  TwoPhaseCommit txn(3, 1000, TccVocabulary());
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kTry, CallResult::Ok(), 1);
  Ready decision = txn.OnReply(1, Op::kTry, CallResult::Refused("insufficient funds"), 2);
  EXPECT_TRUE(Forces(decision, RecordType::kDecision));
  EXPECT_EQ(txn.StateName(), "cancelling");
  // The refused branch is cancelled too (harmless); branch 2's try is still out.
  EXPECT_EQ(Called(decision, Op::kCancel), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(Called(txn.OnReply(2, Op::kTry, CallResult::Ok(), 3), Op::kCancel),
            (std::vector<uint32_t>{2}));
  for (uint32_t b = 0; b < 2; ++b) (void)txn.OnReply(b, Op::kCancel, CallResult::Ok(), 4);
  Ready end = txn.OnReply(2, Op::kCancel, CallResult::Ok(), 5);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kAborted);
  EXPECT_EQ(txn.StateName(), "cancelled");
  EXPECT_EQ(txn.Branch(1).state, "cancelled");
  EXPECT_EQ(txn.Branch(1).last_error, "insufficient funds");
}

TEST(TccTest, TheDeadlineCancelsTriesThatNeverAnsweredAndRetriesNothingElse) {
  TwoPhaseCommit txn(2, 100, TccVocabulary());
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kTry, CallResult::Ok(), 1);
  Ready retry = txn.OnReply(1, Op::kTry, CallResult::Transient("503"), 2);
  ASSERT_EQ(retry.retries.size(), 1u);
  Ready decision = txn.OnDeadline(100);
  EXPECT_TRUE(Forces(decision, RecordType::kDecision));
  EXPECT_EQ(Called(decision, Op::kCancel), (std::vector<uint32_t>{0, 1}));
  EXPECT_TRUE(txn.OnRetryDue(1, retry.retries[0].token, 101).calls.empty());
}

TEST(TccTest, APermanentConfirmFailureNeedsAnOperatorAndIsRetriedSlowly) {
  TwoPhaseCommit txn(1, 1000, TccVocabulary());
  (void)txn.Start(0);
  (void)txn.OnReply(0, Op::kTry, CallResult::Ok(), 1);
  Ready stuck = txn.OnReply(0, Op::kConfirm, CallResult::Permanent("404 no such endpoint"), 2);
  ASSERT_EQ(stuck.retries.size(), 1u);
  EXPECT_TRUE(stuck.retries[0].longest);
  EXPECT_EQ(stuck.retries[0].op, Op::kConfirm);
  EXPECT_TRUE(txn.Branch(0).needs_operator);
  EXPECT_EQ(Called(txn.OnRetryDue(0, stuck.retries[0].token, 60'000), Op::kConfirm),
            (std::vector<uint32_t>{0}));
  EXPECT_TRUE(txn.OnReply(0, Op::kConfirm, CallResult::Ok(), 60'001).finished);
}

TEST(TccTest, RecoveryConfirmsAfterAConfirmDecisionAndCancelsOtherwise) {
  auto record = [](RecordType type, std::string body) {
    log::LogRecord r;
    r.gid = "t";
    r.type = type;
    r.body = std::move(body);
    return r;
  };
  const auto confirm_body = TwoPhaseCommit::EncodeDecision(Outcome::kCommitted, "");
  auto confirmed = TwoPhaseCommit::Recover(
      2, {record(RecordType::kBegin, ""), record(RecordType::kDecision, confirm_body)},
      TccVocabulary());
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(Called(confirmed->Resume(0), Op::kConfirm), (std::vector<uint32_t>{0, 1}));
  auto undecided = TwoPhaseCommit::Recover(2, {record(RecordType::kBegin, "")}, TccVocabulary());
  ASSERT_TRUE(undecided.ok());
  Ready cancel = undecided->Resume(0);
  EXPECT_TRUE(Forces(cancel, RecordType::kDecision));
  EXPECT_EQ(Called(cancel, Op::kCancel), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(undecided->StateName(), "cancelling");
}

}  // namespace
}  // namespace txc::tcc
