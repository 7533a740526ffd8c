// A saga as a pure state machine (DESIGN.md): the transaction's state plus one event in, a Ready
// out. No I/O, no clock (time comes in as `now_ms`), no threads, no randomness.
//
//   Start ─► persist BEGIN (forced) ─► run the action of every step whose `after` steps are done
//   an action done ─► record it (lazy) ─► start the steps it unblocks; all done ─► END (forced:
//     success is reported only once it is durable), succeeded
//   an action refused (409), failing permanently, or the deadline passed
//     ─► persist COMPENSATE (forced), naming the steps that may have run
//     ─► compensate those steps in reverse dependency order: a step only once every step that
//        ran after it is compensated ─► END, compensated
//
// Which steps may have run: every step whose action was sent, unless its last answer was a 409.
// A 409 is authoritative (participants are idempotent by Idempotency-Key, so a refused key did
// nothing) and such a step is not compensated; any other failure (a timeout, a 5xx that may come
// from a proxy while the service goes on, a 4xx) leaves the step compensated, which the barrier
// makes harmless when the action never ran. An action still out when the decision is made gets no
// compensation until its reply arrives, so a late action cannot land after its compensation.
//
// Transient failures of an action are retried with backoff until the deadline. Compensations are
// retried until they succeed; one that is refused or fails permanently marks its step as needing
// an operator and is retried at the longest backoff: the saga is never silently done.
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
#include "sagas/saga_graph.h"

namespace txc::sagas {

enum class SagaState : uint8_t { kRunning, kCompensating, kSucceeded, kCompensated };
const char* SagaStateName(SagaState state);  // "running", ... as in the API

enum class StepStatus : uint8_t {
  kPending,       // its action was not sent yet (waiting for its `after` steps)
  kRunning,       // its action was sent; no final answer yet
  kDone,          // its action answered 2xx
  kRefused,       // its action answered 409 (or failed permanently): it did nothing
  kCompensating,  // its compensation was sent; no final answer yet
  kCompensated,
  kSkipped,  // the saga compensates and this step never ran: nothing to undo
};
const char* StepStatusName(StepStatus status);  // "pending", "running", ...

struct StepProgress : protocol::CallState {
  StepStatus status = StepStatus::kPending;
  bool may_have_run = false;  // its action took or may have taken effect: compensate it
  std::string last_error;
  bool needs_operator = false;
};

class Saga final : public protocol::TransactionMachine {
 public:
  // A new saga whose forward phase must end by `deadline_ms` (engine time).
  Saga(SagaGraph graph, int64_t deadline_ms);

  // Rebuilds a saga from its log records (BEGIN first) after a restart. `deadline_ms`: the
  // original deadline in this process's engine time (it may already have passed).
  static Result<Saga> Recover(SagaGraph graph, int64_t deadline_ms,
                              const std::vector<log::LogRecord>& records);

  protocol::Ready Start(int64_t now_ms) override;
  // After Recover: go on forward from the first steps not known done, or carry out the logged
  // COMPENSATE decision.
  protocol::Ready Resume(int64_t now_ms) override;
  protocol::Ready OnReply(uint32_t step, participants::Op op,
                          const participants::CallResult& result, int64_t now_ms) override;
  protocol::Ready OnRetryDue(uint32_t step, uint64_t token, int64_t now_ms) override;
  protocol::Ready OnDeadline(int64_t now_ms) override;
  // Before the decision (state running) an operator's abort compensates; nullopt after.
  std::optional<protocol::Ready> OnOperatorAbort(int64_t now_ms) override;
  // While compensating, an operator may settle a step whose compensation fails by undoing it by
  // hand (outcome aborted); the steps before it are then compensated.
  Result<protocol::Ready> OnOperatorResolve(uint32_t step, protocol::Outcome outcome,
                                            int64_t now_ms) override;

  bool IsFinished() const override {
    return state_ == SagaState::kSucceeded || state_ == SagaState::kCompensated;
  }
  // "Decided" as the in-doubt scan and the operator verbs mean it: compensation is under way.
  // A saga that is running forward has no decision yet.
  bool IsDecided() const override { return state_ != SagaState::kRunning; }
  std::optional<protocol::Outcome> FinalOutcome() const override;
  std::string StateName() const override { return SagaStateName(state_); }
  std::string DecisionReason() const override { return decision_reason_; }
  uint32_t BranchCount() const override { return graph_.size(); }
  protocol::BranchView Branch(uint32_t index) const override;

  SagaState state() const { return state_; }
  const std::vector<StepProgress>& steps() const { return steps_; }

  // Bodies of the records this machine writes (exposed for the tests and the simulator).
  static std::string EncodeCompensate(const std::vector<uint32_t>& may_have_run,
                                      const std::string& reason);
  static std::string EncodeProgress(uint32_t step, StepStatus status);

 private:
  void StartReadySteps(int64_t now_ms, protocol::Ready* ready);
  void DecideToCompensate(std::string reason, protocol::Ready* ready);
  // Sends every compensation whose dependents are all settled; finishes when nothing is left.
  void CompensateWhatIsReady(protocol::Ready* ready);
  bool NeedsCompensation(uint32_t step) const;
  bool SettledForCompensation(uint32_t step) const;
  void Call(uint32_t step, participants::Op op, protocol::Ready* ready);
  void ScheduleRetry(uint32_t step, participants::Op op, bool longest, protocol::Ready* ready);
  void OnActionReply(uint32_t step, const participants::CallResult& result, int64_t now_ms,
                     protocol::Ready* ready);
  void OnCompensateReply(uint32_t step, const participants::CallResult& result,
                         protocol::Ready* ready);
  void FinishIfDone(protocol::Ready* ready);
  void CheckInvariants() const;

  SagaGraph graph_;
  SagaState state_ = SagaState::kRunning;
  int64_t deadline_ms_ = 0;
  bool started_ = false;
  std::vector<StepProgress> steps_;
  std::string decision_reason_;
};

}  // namespace txc::sagas
