// Three-phase commit as a pure state machine: the transaction's state plus one event in, a Ready
// out. No I/O, no clock, no threads, no randomness.
//
//   Start ─► persist BEGIN (forced) ─► can_commit to every branch, arm the deadline
//   all voted yes ─► persist PRE-COMMIT (forced) ─► pre_commit to every branch
//   all acknowledged ─► persist COMMIT (forced) ─► do_commit to every branch ─► END (lazy)
//   a no vote, a permanent error or the deadline while querying ─► persist ABORT (forced) ─►
//     abort to every branch (after a can_commit still out has answered) ─► END
//
// Recovery: PRE-COMMIT decided → commit (pre_commit again to the branches not known to have
// acknowledged it, then COMMIT, do_commit); COMMIT decided → do_commit; otherwise abort.
//
// After PRE-COMMIT the outcome is commit, whatever happens: participants that acknowledged
// pre_commit commit by themselves when they hear nothing more. A pre_commit or do_commit that a
// participant refuses therefore breaks 3PC's timing assumptions (the participant aborted by its
// own timeout, say): the branch needs an operator and is retried at the longest backoff.
//
// The API runs it for HTTP branches (can_commit, pre_commit, do_commit, abort); database branches
// in 3pc are refused at submission in this version.
#pragma once

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

enum class ThreePhaseState : uint8_t {
  kQuerying,
  kPrecommitting,
  kCommitting,
  kAborting,
  kCommitted,
  kAborted,
};
const char* ThreePhaseStateName(ThreePhaseState state);  // "querying", ... as in the API

enum class ThreePhaseBranchStatus : uint8_t {
  kPending,       // no vote yet
  kVoted,         // answered can_commit with yes
  kRefused,       // voted no, or failed permanently while querying
  kPrecommitted,  // acknowledged pre_commit
  kCommitted,
  kAborted,
};
const char* ThreePhaseBranchStatusName(ThreePhaseBranchStatus status);

class ThreePhaseCommit final : public TransactionMachine {
 public:
  ThreePhaseCommit(uint32_t branch_count, int64_t deadline_ms);

  static Result<ThreePhaseCommit> Recover(uint32_t branch_count,
                                          const std::vector<log::LogRecord>& records);

  Ready Start(int64_t now_ms) override;
  Ready Resume(int64_t now_ms) override;
  Ready OnReply(uint32_t branch, participants::Op op, const participants::CallResult& result,
                int64_t now_ms) override;
  Ready OnRetryDue(uint32_t branch, uint64_t token, int64_t now_ms) override;
  Ready OnDeadline(int64_t now_ms) override;
  std::optional<Ready> OnOperatorAbort(int64_t now_ms) override;
  Result<Ready> OnOperatorResolve(uint32_t branch, Outcome outcome, int64_t now_ms) override;

  bool IsFinished() const override {
    return state_ == ThreePhaseState::kCommitted || state_ == ThreePhaseState::kAborted;
  }
  bool IsDecided() const override { return state_ != ThreePhaseState::kQuerying; }
  std::optional<Outcome> FinalOutcome() const override;
  std::string StateName() const override { return ThreePhaseStateName(state_); }
  std::string DecisionReason() const override { return decision_reason_; }
  uint32_t BranchCount() const override { return static_cast<uint32_t>(branches_.size()); }
  BranchView Branch(uint32_t index) const override;

  ThreePhaseState state() const { return state_; }

  static std::string EncodeProgress(uint32_t branch, ThreePhaseBranchStatus status);

 private:
  struct BranchProgress : CallState {
    ThreePhaseBranchStatus status = ThreePhaseBranchStatus::kPending;
    std::string last_error;
    bool needs_operator = false;
  };

  // The operation a branch is owed in the current state, or nullopt when it owes nothing.
  std::optional<participants::Op> OwedOp(uint32_t branch) const;
  void Abort(std::string reason, Ready* ready);
  void Precommit(Ready* ready);
  void Commit(Ready* ready);
  void SendOwed(Ready* ready);
  void Call(uint32_t branch, participants::Op op, Ready* ready);
  void ScheduleRetry(uint32_t branch, participants::Op op, bool longest, Ready* ready);
  void AdvanceIfDone(Ready* ready);
  void CheckInvariants() const;

  ThreePhaseState state_ = ThreePhaseState::kQuerying;
  int64_t deadline_ms_ = 0;
  bool started_ = false;
  std::vector<BranchProgress> branches_;
  std::string decision_reason_;
};

}  // namespace txc::protocol
