// Engine: the running coordinator around EngineCore. One event-loop thread owns the core and every
// transaction's runtime state; everything else (log completions, participant replies, timers,
// API submissions) reaches it as an event. Blocking participant calls run on a bounded
// CallExecutor; timers on a TimerService. Documents are kept apart, behind their own mutex, so
// reads never wait for the loop.
//
// Bounds: at most `max_in_flight` active transactions (beyond: ResourceExhausted, which the API
// answers with 503 + Retry-After); the executor's queue; the event queue holds at most what the
// active transactions can have outstanding (each branch one call or one timer, each transaction
// its appends and one deadline).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coordinator/common/clock.h"
#include "coordinator/common/status.h"
#include "coordinator/engine/call_executor.h"
#include "coordinator/engine/engine_core.h"
#include "coordinator/engine/timer_service.h"
#include "coordinator/engine/transaction_document.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/protocol/transaction_machine.h"
#include "participants/participant.h"

namespace txc::engine {

struct EngineOptions {
  size_t max_in_flight = 10'000;
  size_t call_threads = 64;
  size_t call_queue_max = 65'536;
  int64_t call_timeout_ms = 5'000;  // a call's bound unless its spec says otherwise
  int64_t stuck_after_ms = 60'000;
  int64_t retention_finished_ms = 86'400'000;
  size_t finished_retained_max = 1'000'000;
  int64_t begin_wait_ms = 30'000;  // how long Submit waits for BEGIN to be durable
  // Where the engine's events go (txcoord: its structured log), each with the gid among its
  // fields: `transaction_stuck` (warn, once per transaction, when it first counts as stuck in
  // the sweep every 10 s), `operator_action` (info: an abort or resolve, who and why),
  // `transaction_stalled` (error: the log refused its record). Unset: nowhere.
  using LogFields = std::vector<std::pair<std::string, std::string>>;
  std::function<void(const char* level, const char* event, const LogFields& fields)> log;
};

// Everything the engine needs to run one transaction, built by a protocol's factory.
struct TransactionPlan {
  std::string gid;
  std::string protocol;  // "2pc", ...
  std::vector<std::string> branch_names;
  RetryPolicy retry;
  std::vector<int64_t> branch_timeout_ms;  // per branch: its calls' bound
  std::string begin_body;  // the BEGIN record's body: enough to rebuild this plan after a crash
  // W3C trace-id (32 hex digits) the participants' traceparent carries: the submitter's, when
  // its request had a traceparent; empty: a new one.
  std::string trace_id;
  uint64_t fingerprint = 0;  // of the submitted spec
  int64_t created_unix_ms = 0;
  std::unique_ptr<protocol::TransactionMachine> machine;
  std::vector<std::shared_ptr<participants::Participant>> participants;
};

// Rebuilds the plan of a transaction found unfinished in the log (its BEGIN and later records).
using PlanRebuilder = std::function<Result<TransactionPlan>(
    const std::string& gid, const std::vector<log::LogRecord>& records)>;

// What the engine reports for metrics (implemented by coordinator/metrics).
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStarted(const std::string& protocol) = 0;
  virtual void OnRecovered(const std::string& protocol) = 0;
  // A transaction moved from `previous` (empty when new) to `state`; a final state ("committed",
  // "aborted", ...) ends its time in flight.
  virtual void OnStateChange(const std::string& protocol, const std::string& previous,
                             const std::string& state) = 0;
  virtual void OnFinished(const std::string& protocol, const std::string& outcome,
                          double seconds) = 0;
  virtual void OnBranchCall(const std::string& protocol, participants::Op op,
                            participants::CallOutcome outcome, double seconds) = 0;
  virtual void OnRetry(const std::string& protocol, participants::Op op) = 0;
  virtual void OnStuckCount(const std::map<std::string, int64_t>& stuck_by_protocol) = 0;
};

struct ListFilter {
  std::string state;     // empty: any
  std::string protocol;  // empty: any
  bool stuck_only = false;
  size_t limit = 100;
  std::string after_gid;  // the cursor: list gids greater than this one
};

class Engine final : private EngineEnvironment {
 public:
  Engine(EngineOptions options, log::DecisionLog& log, Clock& clock, EngineObserver* observer);
  ~Engine() override;

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Start-up, before serving: documents from the finished summaries; every unfinished
  // transaction rebuilt through `rebuild` and resumed (its decision carried out, or presumed
  // abort). Returns once they are all under way (not finished).
  Status Recover(const log::RecoveredLog& recovered, const PlanRebuilder& rebuild);

  enum class Submitted { kCreated, kExisting };
  struct SubmitResult {
    Submitted submitted = Submitted::kCreated;
    TransactionDocument document;
  };
  // Starts a transaction and returns once its BEGIN is durable. An identical resubmission of a
  // known gid returns that transaction (kExisting); a different one is AlreadyExists.
  // ResourceExhausted when max_in_flight is reached; Unavailable when the log fails.
  Result<SubmitResult> Submit(TransactionPlan plan);

  // The document once the transaction is final, or at the timeout its current one.
  Result<TransactionDocument> Wait(const std::string& gid, int64_t timeout_ms);
  Result<TransactionDocument> Get(const std::string& gid) const;
  // Documents in gid order after filter.after_gid; *next_cursor set when more follow.
  std::vector<TransactionDocument> List(const ListFilter& filter,
                                        std::optional<std::string>* next_cursor) const;
  // An operator's abort, recorded in the log and the document's history with who and why.
  Status Abort(const std::string& gid, const std::string& by = "", const std::string& reason = "");
  Status RetryNow(const std::string& gid);
  // An operator settles branch `branch` (its name) by hand as `outcome`, recorded in the log and
  // the history with who and why. NotFound (no such transaction), InvalidArgument (no such
  // branch), FailedPrecondition (finished, no decision yet, or against the decision).
  Status Resolve(const std::string& gid, const std::string& branch, protocol::Outcome outcome,
                 const std::string& by, const std::string& reason);

  // Whether gid has an unfinished transaction here (the in-doubt scan leaves those alone).
  bool IsActive(const std::string& gid) const;
  // Whether gid is known with a commit outcome or decision (the in-doubt scan commits those).
  bool IsCommitDecided(const std::string& gid) const;
  size_t active() const { return active_.load(); }
  int64_t NowUnixMs() const { return clock_.NowUnixMs(); }
  // Engine time: the monotonic milliseconds deadlines are measured in.
  int64_t MonotonicMs() const { return clock_.MonotonicNs() / 1'000'000; }
  int64_t stuck_after_ms() const { return options_.stuck_after_ms; }

  // Stops the loop, the executor and the timers; the log stays open. Its owner stops the engine,
  // then closes the log (whose last callbacks still reach this object), then destroys the engine.
  // Calls not yet started are dropped (recovery drives them again); calls in progress get
  // `grace`. False when some are still running then: the owner must end the process without
  // destroying the engine (std::_Exit after closing the log), as their results would reach it.
  bool Stop(std::chrono::milliseconds grace = std::chrono::milliseconds::max());

 private:
  struct Runtime {
    std::string protocol;
    std::vector<std::string> branch_names;
    std::vector<int64_t> branch_timeout_ms;
    std::vector<std::shared_ptr<participants::Participant>> participants;
    int64_t started_ns = 0;
    std::string last_state;
    std::string trace_id;  // W3C trace-id shared by every call of the transaction
  };
  std::string NewTraceId();
  struct DocumentEntry {
    TransactionDocument document;
    bool begun = false;   // BEGIN durable
    bool failed = false;  // BEGIN could not be made durable
    Status failure;
    bool commit_decided = false;
    bool stuck_reported = false;  // its transaction_stuck line was logged
    // Request threads waiting on this transaction (BEGIN durable, final); made on first wait so
    // that a change wakes only those who wait for it.
    std::shared_ptr<std::condition_variable> waiters;
  };
  // Both with documents_mu_ held.
  static std::condition_variable& WaitersOf(DocumentEntry& entry);
  static void WakeWaiters(DocumentEntry& entry);

  // EngineEnvironment (called on the loop thread only).
  void Append(const std::string& gid, log::LogRecord record, log::Durability durability,
              uint64_t append_id) override;
  void Call(const std::string& gid, uint32_t branch, participants::Op op) override;
  void SetTimer(const std::string& gid, int64_t at_ms, TimerKind kind, uint32_t branch,
                uint64_t token) override;
  int64_t NowMs() override { return clock_.MonotonicNs() / 1'000'000; }
  uint64_t Random() override;
  std::string EndBody(const std::string& gid) override;
  void Finished(const std::string& gid, protocol::Outcome outcome) override;
  void Stalled(const std::string& gid, const Status& why) override;

  void Post(std::function<void()> event);
  // NotFound for a gid that is known but finished is a conflict (409), not a 404.
  Status FinishedIsAConflict(const std::string& gid, Status status) const;
  // Loop thread: the action goes into the document's history.
  void RecordOperatorAction(const std::string& gid, const OperatorAction& action);
  void Loop();
  // After any event for gid: the document follows the machine.
  void Refresh(const std::string& gid);
  void PurgeExpired();

  EngineOptions options_;
  log::DecisionLog& log_;
  Clock& clock_;
  EngineObserver* observer_;

  // Loop thread only.
  EngineCore core_;
  std::unordered_map<std::string, Runtime> runtimes_;
  uint64_t random_state_;

  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::deque<std::function<void()>> events_;
  bool stopping_ = false;

  mutable std::mutex documents_mu_;
  std::map<std::string, DocumentEntry> documents_;              // ordered: List pages by gid
  std::deque<std::pair<int64_t, std::string>> finished_order_;  // (finished at, gid)

  std::atomic<size_t> active_{0};
  bool executor_stopped_ = false;  // Stop() is idempotent: the first call's result stands
  bool executor_ended_ = true;
  std::unique_ptr<CallExecutor> executor_;
  std::unique_ptr<TimerService> timers_;
  std::thread loop_;
};

}  // namespace txc::engine
