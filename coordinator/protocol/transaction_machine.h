// TransactionMachine: what the engine needs of any protocol's state machine (2PC now; 3PC, TCC
// and sagas implement the same events). Every method is pure: state + event in, Ready out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "coordinator/common/status.h"
#include "coordinator/protocol/ready.h"
#include "participants/participant.h"

namespace txc::protocol {

// One branch as documents and metrics show it.
struct BranchView {
  std::string state;  // "pending", "prepared", "committed", "done", "compensated", ...
  uint32_t attempts = 0;
  std::string last_error;
  bool needs_operator = false;
};

class TransactionMachine {
 public:
  virtual ~TransactionMachine() = default;

  virtual Ready Start(int64_t now_ms) = 0;
  virtual Ready Resume(int64_t now_ms) = 0;
  virtual Ready OnReply(uint32_t branch, participants::Op op,
                        const participants::CallResult& result, int64_t now_ms) = 0;
  virtual Ready OnRetryDue(uint32_t branch, uint64_t token, int64_t now_ms) = 0;
  virtual Ready OnDeadline(int64_t now_ms) = 0;
  // An operator's abort; nullopt when the transaction is past its decision.
  virtual std::optional<Ready> OnOperatorAbort(int64_t now_ms) = 0;
  // An operator settled `branch` by hand: its effect is `outcome` (committed, or undone) outside
  // txc, and it is called no more. Only after the decision and only as the decision says;
  // FailedPrecondition otherwise, in words. The Ready makes the branch's new state durable
  // (forced) before anything follows from it.
  virtual Result<Ready> OnOperatorResolve(uint32_t branch, Outcome outcome, int64_t now_ms) = 0;

  virtual bool IsFinished() const = 0;
  virtual bool IsDecided() const = 0;
  virtual std::optional<Outcome> FinalOutcome() const = 0;
  virtual std::string StateName() const = 0;
  // Why the transaction is aborting or aborted, in words ("" otherwise).
  virtual std::string DecisionReason() const = 0;
  virtual uint32_t BranchCount() const = 0;
  virtual BranchView Branch(uint32_t index) const = 0;
};

}  // namespace txc::protocol
