// Two-phase commit (presumed abort) as a pure state machine: the transaction's state plus one
// event in, a Ready out. No I/O, no clock (time comes in as `now_ms`), no threads, no randomness.
//
//   Start ─► persist BEGIN (forced) ─► prepare every branch, arm the deadline
//   all voted yes ─► persist COMMIT (forced) ─► commit every branch ─► END (lazy)
//   a no vote, a permanent error, or the deadline ─► persist ABORT (forced) ─► abort every branch
//   phase 2 is retried until every branch acknowledges; a branch that keeps failing permanently
//   is marked as needing an operator and retried at the longest backoff
//
// A phase-2 operation is never sent to a branch while its prepare is still out: the abort goes
// after the prepare's reply, so a prepare that lands late cannot leave an orphan behind.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/protocol/call_state.h"
#include "coordinator/protocol/ready.h"
#include "coordinator/protocol/transaction_machine.h"
#include "participants/participant.h"

namespace txc::protocol {

// The words of a two-phase protocol: 2PC's prepare/commit/abort, or TCC's try/confirm/cancel. TCC
// is two-phase commit whose phases are business operations (tcc/tcc.h): the same machine runs
// both, and only what it sends and how it names its states differ. Log records use the 2PC words
// whatever the vocabulary, so the log format is one.
struct TwoPhaseVocabulary {
  participants::Op vote = participants::Op::kPrepare;
  participants::Op commit = participants::Op::kCommit;
  participants::Op abort = participants::Op::kAbort;
  // Indexed by TwoPhaseState and by BranchStatus (below).
  std::array<const char*, 5> states = {"preparing", "committing", "aborting", "committed",
                                       "aborted"};
  std::array<const char*, 5> branch_states = {"pending", "prepared", "refused", "committed",
                                              "aborted"};
};
const TwoPhaseVocabulary& TwoPhaseCommitVocabulary();  // 2PC's own words

enum class TwoPhaseState : uint8_t { kPreparing, kCommitting, kAborting, kCommitted, kAborted };
const char* TwoPhaseStateName(TwoPhaseState state);  // "preparing", ... as in the API

enum class BranchStatus : uint8_t {
  kPending,   // no vote yet (or no answer: see last_error)
  kPrepared,  // voted yes
  kRefused,   // voted no, or failed permanently in phase 1
  kCommitted,
  kAborted,
};
const char* BranchStatusName(BranchStatus status);  // "pending", "prepared", ...

struct BranchProgress : CallState {
  BranchStatus status = BranchStatus::kPending;
  std::string last_error;
  bool needs_operator = false;
};

class TwoPhaseCommit final : public TransactionMachine {
 public:
  // A new transaction of `branch_count` branches whose phase 1 must end by `deadline_ms`.
  // `vocabulary` (static storage) says which operations it sends and how it names its states.
  TwoPhaseCommit(uint32_t branch_count, int64_t deadline_ms,
                 const TwoPhaseVocabulary& vocabulary = TwoPhaseCommitVocabulary());

  // Rebuilds a transaction from its log records (BEGIN first) after a restart.
  static Result<TwoPhaseCommit> Recover(
      uint32_t branch_count, const std::vector<log::LogRecord>& records,
      const TwoPhaseVocabulary& vocabulary = TwoPhaseCommitVocabulary());

  Ready Start(int64_t now_ms) override;
  // After Recover: carry out the logged decision, or presume abort when there is none.
  Ready Resume(int64_t now_ms) override;
  Ready OnReply(uint32_t branch, participants::Op op, const participants::CallResult& result,
                int64_t now_ms) override;
  Ready OnRetryDue(uint32_t branch, uint64_t token, int64_t now_ms) override;
  Ready OnDeadline(int64_t now_ms) override;
  // An operator's abort: only before the decision (returns nullopt after it).
  std::optional<Ready> OnOperatorAbort(int64_t now_ms) override;
  Result<Ready> OnOperatorResolve(uint32_t branch, Outcome outcome, int64_t now_ms) override;

  bool IsFinished() const override { return finished(); }
  bool IsDecided() const override { return decided(); }
  std::optional<Outcome> FinalOutcome() const override { return outcome(); }
  std::string StateName() const override {
    return vocabulary_->states[static_cast<size_t>(state_)];
  }
  std::string DecisionReason() const override { return decision_reason_; }
  uint32_t BranchCount() const override { return static_cast<uint32_t>(branches_.size()); }
  BranchView Branch(uint32_t index) const override;

  TwoPhaseState state() const { return state_; }
  bool decided() const { return state_ != TwoPhaseState::kPreparing; }
  bool finished() const {
    return state_ == TwoPhaseState::kCommitted || state_ == TwoPhaseState::kAborted;
  }
  std::optional<Outcome> outcome() const;
  const std::vector<BranchProgress>& branches() const { return branches_; }
  const std::string& decision_reason() const { return decision_reason_; }
  bool AnyNeedsOperator() const;

  // Bodies of the records this machine writes (exposed for the tests and the simulator).
  static std::string EncodeDecision(Outcome outcome, const std::string& reason);
  static std::string EncodeProgress(uint32_t branch, BranchStatus status);

 private:
  void Decide(Outcome outcome, std::string reason, Ready* ready);
  void CallPhaseTwo(uint32_t branch, Ready* ready);
  void Call(uint32_t branch, participants::Op op, Ready* ready);
  void ScheduleRetry(uint32_t branch, participants::Op op, bool longest, Ready* ready);
  void FinishIfDone(Ready* ready);
  void CheckInvariants() const;
  participants::Op PhaseTwoOp() const;

  const TwoPhaseVocabulary* vocabulary_;
  TwoPhaseState state_ = TwoPhaseState::kPreparing;
  int64_t deadline_ms_ = 0;
  std::vector<BranchProgress> branches_;
  std::string decision_reason_;
};

}  // namespace txc::protocol
