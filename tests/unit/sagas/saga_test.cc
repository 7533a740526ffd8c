// The saga state machine driven event by event: no threads, no sockets, no sleeps.
#include "sagas/saga.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace txc::sagas {
namespace {

using log::Durability;
using log::LogRecord;
using log::RecordType;
using participants::CallResult;
using participants::Op;
using protocol::Outcome;
using protocol::Ready;

std::vector<uint32_t> Called(const Ready& ready, Op op) {
  std::vector<uint32_t> steps;
  for (const auto& call : ready.calls) {
    if (call.op == op) steps.push_back(call.branch);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

const protocol::Persist* Find(const Ready& ready, RecordType type) {
  for (const auto& p : ready.persist) {
    if (p.type == type) return &p;
  }
  return nullptr;
}

SagaGraph Sequential(uint32_t steps) {
  std::vector<std::vector<uint32_t>> after(steps);
  for (uint32_t s = 1; s < steps; ++s) after[s] = {s - 1};
  return SagaGraph::FromIndices(std::move(after));
}

// order, then payment and stock in parallel, then notify after both.
SagaGraph Diamond() { return SagaGraph::FromIndices({{}, {0}, {0}, {1, 2}}); }

TEST(SagaTest, SequentialStepsRunOneAfterAnotherAndSucceed) {
  Saga saga(Sequential(3), 1000);
  Ready start = saga.Start(0);
  ASSERT_NE(Find(start, RecordType::kBegin), nullptr);
  EXPECT_EQ(Find(start, RecordType::kBegin)->durability, Durability::kForced);
  EXPECT_EQ(Called(start, Op::kAction), (std::vector<uint32_t>{0}));
  EXPECT_EQ(start.deadline_at_ms, 1000);
  for (uint32_t s = 0; s < 2; ++s) {
    Ready next = saga.OnReply(s, Op::kAction, CallResult::Ok(), 1 + s);
    ASSERT_NE(Find(next, RecordType::kProgress), nullptr);
    EXPECT_EQ(Find(next, RecordType::kProgress)->durability, Durability::kLazy);
    EXPECT_EQ(Find(next, RecordType::kProgress)->body, std::to_string(s) + " done");
    EXPECT_EQ(Called(next, Op::kAction), (std::vector<uint32_t>{s + 1}));
    EXPECT_FALSE(next.finished);
  }
  Ready end = saga.OnReply(2, Op::kAction, CallResult::Ok(), 5);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kCommitted);
  EXPECT_EQ(end.persist.back().type, RecordType::kEnd);
  EXPECT_EQ(end.persist.back().durability, Durability::kForced);
  EXPECT_EQ(saga.StateName(), "succeeded");
  EXPECT_EQ(saga.Branch(2).state, "done");
  EXPECT_EQ(Find(end, RecordType::kDecision), nullptr);  // success needs no forced decision
}

TEST(SagaTest, DagRunsIndependentStepsInParallel) {
  Saga saga(Diamond(), 1000);
  EXPECT_EQ(Called(saga.Start(0), Op::kAction), (std::vector<uint32_t>{0}));
  EXPECT_EQ(Called(saga.OnReply(0, Op::kAction, CallResult::Ok(), 1), Op::kAction),
            (std::vector<uint32_t>{1, 2}));
  // notify waits for both.
  EXPECT_TRUE(saga.OnReply(2, Op::kAction, CallResult::Ok(), 2).calls.empty());
  EXPECT_EQ(Called(saga.OnReply(1, Op::kAction, CallResult::Ok(), 3), Op::kAction),
            (std::vector<uint32_t>{3}));
  EXPECT_TRUE(saga.OnReply(3, Op::kAction, CallResult::Ok(), 4).finished);
}

TEST(SagaTest, StepsWithEmptyAfterAllStartAtOnce) {
  Saga saga(SagaGraph::FromIndices({{}, {}, {}}), 1000);
  EXPECT_EQ(Called(saga.Start(0), Op::kAction), (std::vector<uint32_t>{0, 1, 2}));
}

// A refusal at each step of a 4-step sequence: the COMPENSATE decision is forced, the refused
// step is not compensated, the ones before it are, last first.
TEST(SagaTest, RefusalAtEachStepCompensatesTheStepsBeforeItInReverse) {
  for (uint32_t refused = 0; refused < 4; ++refused) {
    SCOPED_TRACE("refused step " + std::to_string(refused));
    Saga saga(Sequential(4), 1000);
    (void)saga.Start(0);
    for (uint32_t s = 0; s < refused; ++s) (void)saga.OnReply(s, Op::kAction, CallResult::Ok(), 1);
    Ready decision =
        saga.OnReply(refused, Op::kAction, CallResult::Refused("insufficient funds"), 2);
    const protocol::Persist* decided = Find(decision, RecordType::kDecision);
    ASSERT_NE(decided, nullptr);
    EXPECT_EQ(decided->durability, Durability::kForced);
    std::string listed;
    for (uint32_t s = 0; s < refused; ++s) listed += (s ? "," : "") + std::to_string(s);
    EXPECT_EQ(decided->body, "compensate\n" + listed + "\nstep " + std::to_string(refused) +
                                 " was refused: insufficient funds");
    EXPECT_EQ(saga.StateName(), refused == 0 ? "compensated" : "compensating");
    EXPECT_EQ(saga.Branch(refused).state, "refused");
    EXPECT_EQ(saga.Branch(refused).last_error, "insufficient funds");
    Ready ready = decision;
    for (int s = static_cast<int>(refused) - 1; s >= 0; --s) {
      // Only the latest step that ran is compensated now; the earlier ones wait for it.
      EXPECT_EQ(Called(ready, Op::kCompensate), (std::vector<uint32_t>{static_cast<uint32_t>(s)}));
      EXPECT_FALSE(ready.finished);
      ready = saga.OnReply(static_cast<uint32_t>(s), Op::kCompensate, CallResult::Ok(), 3);
      EXPECT_EQ(saga.Branch(static_cast<uint32_t>(s)).state, "compensated");
    }
    ASSERT_TRUE(ready.finished);
    EXPECT_EQ(*ready.finished, Outcome::kAborted);
    EXPECT_EQ(ready.persist.back().type, RecordType::kEnd);
    for (uint32_t s = refused + 1; s < 4; ++s) EXPECT_EQ(saga.Branch(s).state, "skipped");
  }
}

TEST(SagaTest, TransientFailuresAreRetriedWithBackoffUntilTheyPass) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  Ready retry = saga.OnReply(0, Op::kAction, CallResult::Transient("503 busy"), 1);
  ASSERT_EQ(retry.retries.size(), 1u);
  EXPECT_EQ(retry.retries[0].op, Op::kAction);
  EXPECT_EQ(retry.retries[0].attempt, 1u);
  EXPECT_FALSE(retry.retries[0].longest);
  EXPECT_EQ(saga.Branch(0).last_error, "503 busy");
  // A stale token does nothing; the armed one calls again.
  EXPECT_TRUE(saga.OnRetryDue(0, retry.retries[0].token + 7, 50).empty());
  EXPECT_EQ(Called(saga.OnRetryDue(0, retry.retries[0].token, 100), Op::kAction),
            (std::vector<uint32_t>{0}));
  EXPECT_EQ(saga.Branch(0).attempts, 2u);
  EXPECT_EQ(Called(saga.OnReply(0, Op::kAction, CallResult::Ok(), 110), Op::kAction),
            (std::vector<uint32_t>{1}));
  EXPECT_EQ(saga.Branch(0).last_error, "");
  EXPECT_TRUE(saga.OnReply(1, Op::kAction, CallResult::Ok(), 120).finished);
}

TEST(SagaTest, DeadlineCompensatesWhatMayHaveRunAndSkipsWhatCannotHave) {
  Saga saga(Sequential(3), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  // Step 1 timed out once (it may have run), then is waiting for its retry at the deadline.
  Ready retry = saga.OnReply(1, Op::kAction, CallResult::Unknown("timed out"), 2);
  ASSERT_EQ(retry.retries.size(), 1u);
  Ready decision = saga.OnDeadline(1000);
  ASSERT_NE(Find(decision, RecordType::kDecision), nullptr);
  EXPECT_EQ(Find(decision, RecordType::kDecision)->body,
            "compensate\n0,1\nthe deadline passed with steps 1, 2 not done");
  EXPECT_EQ(Called(decision, Op::kCompensate), (std::vector<uint32_t>{1}));
  EXPECT_EQ(saga.Branch(2).state, "skipped");
  // The action's retry is void now.
  EXPECT_TRUE(saga.OnRetryDue(1, retry.retries[0].token, 1001).calls.empty());
  EXPECT_EQ(Called(saga.OnReply(1, Op::kCompensate, CallResult::Ok(), 1002), Op::kCompensate),
            (std::vector<uint32_t>{0}));
  EXPECT_TRUE(saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 1003).finished);
}

TEST(SagaTest, TransientFailurePastTheDeadlineCompensatesAtOnce) {
  Saga saga(Sequential(2), 100);
  (void)saga.Start(0);
  Ready decision = saga.OnReply(0, Op::kAction, CallResult::Transient("502 bad gateway"), 150);
  ASSERT_NE(Find(decision, RecordType::kDecision), nullptr);
  // A 5xx may have come from a proxy while the step went on: it is compensated.
  EXPECT_EQ(Called(decision, Op::kCompensate), (std::vector<uint32_t>{0}));
  EXPECT_EQ(saga.Branch(1).state, "skipped");
  Ready end = saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 151);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(*end.finished, Outcome::kAborted);
}

TEST(SagaTest, ActionStillOutAtTheDecisionIsCompensatedOnlyAfterItsReply) {
  Saga saga(Diamond(), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  // payment refused while stock's action is still out.
  Ready decision = saga.OnReply(1, Op::kAction, CallResult::Refused("insufficient funds"), 2);
  EXPECT_EQ(Find(decision, RecordType::kDecision)->body,
            "compensate\n0,2\nstep 1 was refused: insufficient funds");
  EXPECT_TRUE(decision.calls.empty());  // order waits for stock; stock for its own reply
  Ready late = saga.OnReply(2, Op::kAction, CallResult::Ok(), 3);
  EXPECT_EQ(Called(late, Op::kCompensate), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(Called(late, Op::kAction).empty());  // notify never starts
  EXPECT_EQ(Called(saga.OnReply(2, Op::kCompensate, CallResult::Ok(), 4), Op::kCompensate),
            (std::vector<uint32_t>{0}));
  Ready end = saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 5);
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(saga.Branch(1).state, "refused");
  EXPECT_EQ(saga.Branch(3).state, "skipped");
}

TEST(SagaTest, ActionOutAtTheDecisionThatIsRefusedIsNotCompensated) {
  Saga saga(SagaGraph::FromIndices({{}, {}}), 1000);
  (void)saga.Start(0);
  Ready decision = saga.OnReply(0, Op::kAction, CallResult::Refused("no"), 1);
  EXPECT_FALSE(decision.finished);
  Ready end = saga.OnReply(1, Op::kAction, CallResult::Refused("no either"), 2);
  EXPECT_TRUE(end.calls.empty());
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(saga.Branch(1).state, "refused");
}

TEST(SagaTest, RefusedAfterATimeoutStillCountsAsNothingDone) {
  // Idempotent participants answer a key the same way every time: the 409 is authoritative.
  Saga saga(Sequential(1), 1000);
  (void)saga.Start(0);
  Ready retry = saga.OnReply(0, Op::kAction, CallResult::Unknown("timed out"), 1);
  (void)saga.OnRetryDue(0, retry.retries[0].token, 2);
  Ready end = saga.OnReply(0, Op::kAction, CallResult::Refused("out of stock"), 3);
  EXPECT_TRUE(end.calls.empty());
  ASSERT_TRUE(end.finished);
}

TEST(SagaTest, PermanentFailureAfterATimeoutIsCompensated) {
  Saga saga(Sequential(1), 1000);
  (void)saga.Start(0);
  Ready retry = saga.OnReply(0, Op::kAction, CallResult::Unknown("timed out"), 1);
  (void)saga.OnRetryDue(0, retry.retries[0].token, 2);
  Ready decision = saga.OnReply(0, Op::kAction, CallResult::Permanent("404 not found"), 3);
  EXPECT_EQ(Called(decision, Op::kCompensate), (std::vector<uint32_t>{0}));
}

TEST(SagaTest, RefusedCompensationNeedsAnOperatorAndIsRetriedSlowly) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  (void)saga.OnReply(1, Op::kAction, CallResult::Refused("no"), 2);
  Ready stuck = saga.OnReply(0, Op::kCompensate, CallResult::Refused("refund refused"), 3);
  ASSERT_EQ(stuck.retries.size(), 1u);
  EXPECT_TRUE(stuck.retries[0].longest);
  EXPECT_FALSE(stuck.finished);
  EXPECT_TRUE(saga.Branch(0).needs_operator);
  EXPECT_EQ(saga.Branch(0).last_error, "refund refused");
  EXPECT_EQ(saga.StateName(), "compensating");
  // Another event before the retry fires sends nothing early.
  EXPECT_TRUE(saga.OnDeadline(1000).calls.empty());
  Ready again = saga.OnRetryDue(0, stuck.retries[0].token, 40'000);
  EXPECT_EQ(Called(again, Op::kCompensate), (std::vector<uint32_t>{0}));
  EXPECT_EQ(saga.Branch(0).attempts, 2u);
  Ready end = saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 40'001);
  ASSERT_TRUE(end.finished);
  EXPECT_FALSE(saga.Branch(0).needs_operator);
}

TEST(SagaTest, TransientCompensationFailuresAreRetriedWithoutEnd) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  Ready decision = saga.OnReply(1, Op::kAction, CallResult::Refused("no"), 2);
  Ready retry = decision;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Called(retry, Op::kCompensate), (std::vector<uint32_t>{0}));
    Ready backoff = saga.OnReply(0, Op::kCompensate, CallResult::Transient("503"), 3 + i);
    ASSERT_EQ(backoff.retries.size(), 1u);
    EXPECT_FALSE(backoff.retries[0].longest);
    EXPECT_FALSE(saga.Branch(0).needs_operator);
    retry = saga.OnRetryDue(0, backoff.retries[0].token, 100'000 + i);
  }
  EXPECT_TRUE(saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 200'000).finished);
}

TEST(SagaTest, OperatorAbortCompensatesBeforeTheDecisionOnly) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  auto abort = saga.OnOperatorAbort(2);
  ASSERT_TRUE(abort);
  EXPECT_EQ(saga.DecisionReason(), "aborted by an operator");
  EXPECT_TRUE(Called(*abort, Op::kCompensate).empty());  // step 1's action is still out
  EXPECT_FALSE(saga.OnOperatorAbort(3));
  EXPECT_EQ(Called(saga.OnReply(1, Op::kAction, CallResult::Ok(), 4), Op::kCompensate),
            (std::vector<uint32_t>{1}));
}

TEST(SagaTest, DeadlineAlreadyPassedAtStartEndsCompensatedWithoutCalls) {
  Saga saga(Sequential(2), 10);
  Ready ready = saga.Start(10);
  EXPECT_TRUE(ready.calls.empty());
  ASSERT_TRUE(ready.finished);
  EXPECT_EQ(*ready.finished, Outcome::kAborted);
  EXPECT_EQ(ready.persist.front().type, RecordType::kBegin);
}

std::vector<LogRecord> Records(std::vector<std::pair<RecordType, std::string>> items) {
  std::vector<LogRecord> records;
  for (auto& [type, body] : items) {
    LogRecord record;
    record.type = type;
    record.gid = "g";
    record.body = body;
    records.push_back(record);
  }
  return records;
}

TEST(SagaTest, RecoveryWithoutADecisionGoesOnFromTheFirstStepNotKnownDone) {
  auto saga =
      Saga::Recover(Sequential(3), 1000,
                    Records({{RecordType::kBegin, "spec"}, {RecordType::kProgress, "0 done"}}));
  ASSERT_TRUE(saga.ok()) << saga.status().ToString();
  Ready ready = saga->Resume(10);
  EXPECT_EQ(Called(ready, Op::kAction), (std::vector<uint32_t>{1}));
  EXPECT_EQ(ready.deadline_at_ms, 1000);
  (void)saga->OnReply(1, Op::kAction, CallResult::Ok(), 11);
  EXPECT_TRUE(saga->OnReply(2, Op::kAction, CallResult::Ok(), 12).finished);
}

TEST(SagaTest, RecoveryPastTheDeadlineCompensatesEveryStepThatMayHaveRun) {
  auto saga =
      Saga::Recover(Sequential(3), 1000,
                    Records({{RecordType::kBegin, "spec"}, {RecordType::kProgress, "0 done"}}));
  ASSERT_TRUE(saga.ok());
  Ready ready = saga->Resume(2000);
  // Step 1's action may have gone out before the crash (its result record is lazy), and so may
  // step 2's: all three are compensated, the last first.
  EXPECT_EQ(Find(ready, RecordType::kDecision)->body,
            "compensate\n0,1,2\nthe deadline passed while the coordinator was down");
  EXPECT_EQ(Called(ready, Op::kCompensate), (std::vector<uint32_t>{2}));
}

TEST(SagaTest, RecoveryWithTheDecisionCompensatesTheListedStepsOnly) {
  auto saga = Saga::Recover(Sequential(4), 1000,
                            Records({{RecordType::kBegin, "spec"},
                                     {RecordType::kProgress, "0 done"},
                                     {RecordType::kProgress, "1 done"},
                                     {RecordType::kDecision, "compensate\n0,1\nstep 2 was refused"},
                                     {RecordType::kProgress, "1 compensated"}}));
  ASSERT_TRUE(saga.ok()) << saga.status().ToString();
  EXPECT_EQ(saga->StateName(), "compensating");
  EXPECT_EQ(saga->DecisionReason(), "step 2 was refused");
  Ready ready = saga->Resume(5000);
  EXPECT_EQ(Called(ready, Op::kCompensate), (std::vector<uint32_t>{0}));
  EXPECT_TRUE(Called(ready, Op::kAction).empty());
  EXPECT_TRUE(saga->OnReply(0, Op::kCompensate, CallResult::Ok(), 5001).finished);
  EXPECT_EQ(saga->Branch(2).state, "skipped");
  EXPECT_EQ(saga->Branch(3).state, "skipped");
}

TEST(SagaTest, RecoveryRefusesDamagedRecords) {
  EXPECT_FALSE(Saga::Recover(Sequential(2), 0, Records({{RecordType::kProgress, "0 done"}})).ok());
  EXPECT_FALSE(Saga::Recover(Sequential(2), 0,
                             Records({{RecordType::kBegin, ""}, {RecordType::kProgress, "7 done"}}))
                   .ok());
  EXPECT_FALSE(Saga::Recover(Sequential(2), 0,
                             Records({{RecordType::kBegin, ""}, {RecordType::kDecision, "commit"}}))
                   .ok());
  EXPECT_FALSE(
      Saga::Recover(Sequential(2), 0,
                    Records({{RecordType::kBegin, ""}, {RecordType::kProgress, "0 compensated"}}))
          .ok());
}

TEST(SagaTest, DuplicateAndStaleRepliesAreIgnored) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  EXPECT_TRUE(saga.OnReply(0, Op::kAction, CallResult::Ok(), 2).empty());
  EXPECT_TRUE(saga.OnReply(1, Op::kCompensate, CallResult::Ok(), 3).empty());
}

}  // namespace
}  // namespace txc::sagas

namespace txc::sagas {
namespace {

TEST(SagaResolveTest, AnOperatorUndoesAStuckStepByHandAndTheStepsBeforeItFollow) {
  Saga saga(Sequential(3), 1000);
  (void)saga.Start(0);
  (void)saga.OnReply(0, Op::kAction, CallResult::Ok(), 1);
  (void)saga.OnReply(1, Op::kAction, CallResult::Ok(), 2);
  (void)saga.OnReply(2, Op::kAction, CallResult::Refused("no"), 3);
  Ready stuck = saga.OnReply(1, Op::kCompensate, CallResult::Refused("refund refused"), 4);
  ASSERT_EQ(stuck.retries.size(), 1u);
  EXPECT_EQ(saga.OnOperatorResolve(1, Outcome::kCommitted, 5).status().code(),
            StatusCode::kFailedPrecondition);
  auto resolved = saga.OnOperatorResolve(1, Outcome::kAborted, 5);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  ASSERT_NE(Find(*resolved, RecordType::kProgress), nullptr);
  EXPECT_EQ(Find(*resolved, RecordType::kProgress)->body, "1 compensated");
  EXPECT_EQ(Find(*resolved, RecordType::kProgress)->durability, Durability::kForced);
  EXPECT_EQ(Called(*resolved, Op::kCompensate), (std::vector<uint32_t>{0}));
  EXPECT_FALSE(saga.Branch(1).needs_operator);
  // The armed retry of the resolved step is void now.
  EXPECT_TRUE(saga.OnRetryDue(1, stuck.retries[0].token, 60'000).calls.empty());
  EXPECT_TRUE(saga.OnReply(0, Op::kCompensate, CallResult::Ok(), 6).finished);
}

TEST(SagaResolveTest, RefusedWhileRunningAndForAStepThatNeedsNothing) {
  Saga saga(Sequential(2), 1000);
  (void)saga.Start(0);
  EXPECT_EQ(saga.OnOperatorResolve(0, Outcome::kAborted, 1).status().code(),
            StatusCode::kFailedPrecondition);
  (void)saga.OnReply(0, Op::kAction, CallResult::Refused("no"), 2);
  EXPECT_EQ(saga.OnOperatorResolve(1, Outcome::kAborted, 3).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace txc::sagas
