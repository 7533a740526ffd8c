// EngineCore: carries out what the protocol state machines ask, for every transaction, on one
// thread at a time. It owns the ordering rule of Ready (forced records durable before the calls
// that follow them), the retry policy (capped exponential backoff with jitter) and timers; the
// I/O itself is the EngineEnvironment's. The threaded engine and the deterministic simulator are
// two environments around this one core, so the simulator tests the logic that runs in txcoord.
//
// Not thread-safe: the owner serialises every call (the threaded engine holds a mutex; the
// simulator is single-threaded). Environment methods must not call back into the core
// synchronously; they report completions later through the On* methods.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/protocol/ready.h"
#include "coordinator/protocol/transaction_machine.h"
#include "participants/participant.h"

namespace txc::engine {

struct RetryPolicy {
  int64_t initial_ms = 100;
  int64_t max_ms = 30'000;
};

// The delay before retry number `attempt` (1 = the first retry): min(max, initial * 2^(attempt-1)),
// then "equal jitter": a uniform point in [delay/2, delay], so retries of many transactions
// spread out but never come sooner than half the backoff. `random` is any 64-bit random value.
int64_t BackoffDelayMs(const RetryPolicy& policy, uint32_t attempt, bool longest, uint64_t random);

enum class TimerKind : uint8_t { kDeadline, kRetry };

class EngineEnvironment {
 public:
  virtual ~EngineEnvironment() = default;
  // Append to the decision log; report with EngineCore::OnAppended(gid, append_id, status).
  virtual void Append(const std::string& gid, log::LogRecord record, log::Durability durability,
                      uint64_t append_id) = 0;
  // Call a branch; report with EngineCore::OnReply.
  virtual void Call(const std::string& gid, uint32_t branch, participants::Op op) = 0;
  // Fire EngineCore::OnTimer(gid, kind, branch, token) at `at_ms` (engine time) or later.
  virtual void SetTimer(const std::string& gid, int64_t at_ms, TimerKind kind, uint32_t branch,
                        uint64_t token) = 0;
  virtual int64_t NowMs() = 0;  // engine time, monotonic milliseconds
  virtual uint64_t Random() = 0;
  // The body of the END record: the final summary (the transaction document).
  virtual std::string EndBody(const std::string& gid) = 0;
  // The transaction finished (its END is appended); for waiters and metrics. Find(gid) still
  // returns its machine during this call, and no longer after it.
  virtual void Finished(const std::string& gid, protocol::Outcome outcome) = 0;
  // The log refused a record: the transaction cannot go on in this process.
  virtual void Stalled(const std::string& gid, const Status& why) = 0;
};

class EngineCore {
 public:
  explicit EngineCore(EngineEnvironment& environment) : env_(environment) {}

  // A new transaction: its BEGIN carries `begin_body`. Refused when the gid is active.
  Status Submit(const std::string& gid, std::unique_ptr<protocol::TransactionMachine> machine,
                std::string begin_body, RetryPolicy retry);
  // A transaction found unfinished in the log at start-up.
  Status Resume(const std::string& gid, std::unique_ptr<protocol::TransactionMachine> machine,
                RetryPolicy retry);

  void OnAppended(const std::string& gid, uint64_t append_id, const Status& status);
  void OnReply(const std::string& gid, uint32_t branch, participants::Op op,
               const participants::CallResult& result);
  void OnTimer(const std::string& gid, TimerKind kind, uint32_t branch, uint64_t token);
  // Retry every branch waiting for a backoff now (operator "retry").
  Status RetryNow(const std::string& gid);
  // Operator abort; FailedPrecondition after the decision, NotFound when not active.
  // `audit_body`, when given, is appended as an OPERATOR record ahead of what the abort writes.
  Status Abort(const std::string& gid, const std::string& audit_body = "");
  // An operator settled `branch` by hand (TransactionMachine::OnOperatorResolve); `audit_body`
  // is appended as an OPERATOR record ahead of the branch's new state, which is forced.
  Status Resolve(const std::string& gid, uint32_t branch, protocol::Outcome outcome,
                 const std::string& audit_body);

  const protocol::TransactionMachine* Find(const std::string& gid) const;
  size_t active() const { return txns_.size(); }
  std::vector<std::string> ActiveGids() const;

 private:
  struct PendingRetry {
    participants::Op op;
    uint64_t token;
  };
  struct Txn {
    std::unique_ptr<protocol::TransactionMachine> machine;
    RetryPolicy retry;
    std::string begin_body;               // until BEGIN is appended
    std::deque<protocol::Ready> readies;  // the head waits for its forced records
    uint32_t forced_outstanding = 0;
    bool head_appended = false;
    bool stalled = false;
    std::map<uint32_t, PendingRetry> retries_waiting;  // branch → retry armed
  };

  void Enqueue(const std::string& gid, Txn& txn, protocol::Ready ready);
  void Drain(const std::string& gid, Txn& txn);
  // Runs the part of the head Ready that comes after its records; may erase the transaction.
  // Returns false when the transaction is gone.
  bool RunAfterPersist(const std::string& gid, Txn& txn, protocol::Ready& ready);

  EngineEnvironment& env_;
  std::unordered_map<std::string, Txn> txns_;
  uint64_t next_append_id_ = 1;
  std::unordered_map<uint64_t, std::string> append_owner_;  // append id → gid (forced only)
};

}  // namespace txc::engine
