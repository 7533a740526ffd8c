#include "coordinator/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "coordinator/common/check.h"
#include "coordinator/common/crash_point.h"

namespace txc::engine {

namespace {

// The crash point of a reply (coordinator/common/crash_point.h): any answer to a phase-1
// operation (prepare, try: the decision depends on it), a successful one otherwise.
const char* ReplyCrashPoint(participants::Op op, const participants::CallResult& result) {
  using participants::Op;
  switch (op) {
    case Op::kPrepare:
      return "after_prepare_reply";
    case Op::kTry:
      return "after_try_reply";
    default:
      break;
  }
  if (!result.ok()) return nullptr;
  switch (op) {
    case Op::kCommit:
      return "after_commit_reply";
    case Op::kAbort:
      return "after_abort_reply";
    case Op::kConfirm:
      return "after_confirm_reply";
    case Op::kCancel:
      return "after_cancel_reply";
    case Op::kAction:
      return "after_action_reply";
    case Op::kCompensate:
      return "after_compensate_reply";
    default:
      return nullptr;
  }
}

}  // namespace

using participants::CallResult;
using participants::Op;

namespace {
constexpr int64_t kPurgeIntervalMs = 10'000;
}  // namespace

Engine::Engine(EngineOptions options, log::DecisionLog& log, Clock& clock, EngineObserver* observer)
    : options_(options),
      log_(log),
      clock_(clock),
      observer_(observer),
      core_(*this),
      random_state_(static_cast<uint64_t>(clock.MonotonicNs()) | 1) {
  executor_ = std::make_unique<CallExecutor>(options_.call_threads, options_.call_queue_max);
  timers_ = std::make_unique<TimerService>(clock_);
  loop_ = std::thread([this] { Loop(); });
  timers_->At(NowMs() + kPurgeIntervalMs, [this] { Post([this] { PurgeExpired(); }); });
}

Engine::~Engine() { TXC_CHECK(Stop(), "an engine is destroyed only after its calls ended"); }

bool Engine::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(events_mu_);
    stopping_ = true;
  }
  events_cv_.notify_all();
  if (timers_) timers_->Stop();
  bool calls_ended = true;
  if (executor_ && !executor_stopped_) {
    calls_ended = executor_->Stop(grace);
    executor_stopped_ = true;
    executor_ended_ = calls_ended;
  } else {
    calls_ended = executor_ended_;
  }
  if (loop_.joinable()) loop_.join();
  std::lock_guard lock(documents_mu_);
  for (auto& [gid, entry] : documents_) WakeWaiters(entry);
  return calls_ended;
}

std::condition_variable& Engine::WaitersOf(DocumentEntry& entry) {
  if (!entry.waiters) entry.waiters = std::make_shared<std::condition_variable>();
  return *entry.waiters;
}

void Engine::WakeWaiters(DocumentEntry& entry) {
  if (entry.waiters) entry.waiters->notify_all();
}

void Engine::Post(std::function<void()> event) {
  {
    std::lock_guard lock(events_mu_);
    if (stopping_) return;
    events_.push_back(std::move(event));
  }
  events_cv_.notify_one();
}

void Engine::Loop() {
  for (;;) {
    std::function<void()> event;
    {
      std::unique_lock lock(events_mu_);
      events_cv_.wait(lock, [&] { return stopping_ || !events_.empty(); });
      if (stopping_) return;
      event = std::move(events_.front());
      events_.pop_front();
    }
    event();
  }
}

uint64_t Engine::Random() {
  // xorshift64*: jitter needs spread, not secrecy.
  random_state_ ^= random_state_ >> 12;
  random_state_ ^= random_state_ << 25;
  random_state_ ^= random_state_ >> 27;
  return random_state_ * 2685821657736338717ull;
}

std::string Engine::NewTraceId() {
  char id[33];
  std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(Random()),
                static_cast<unsigned long long>(Random() | 1));
  return id;
}

// ---------------------------------------------------------------------------------------------
// Submission and recovery

Result<Engine::SubmitResult> Engine::Submit(TransactionPlan plan) {
  TXC_CHECK(plan.machine != nullptr && plan.participants.size() == plan.branch_names.size() &&
                plan.branch_timeout_ms.size() == plan.branch_names.size(),
            "a plan has a machine and a participant and a timeout per branch");
  const std::string gid = plan.gid;
  {
    std::unique_lock lock(documents_mu_);
    auto it = documents_.find(gid);
    if (it != documents_.end()) {
      if (it->second.document.fingerprint != plan.fingerprint) {
        return Status::AlreadyExists("gid " + gid +
                                     " is already used by a transaction with another body");
      }
      // The same body again: answer with that transaction once its BEGIN is durable.
      (void)WaitersOf(it->second);
      const auto waiters = it->second.waiters;
      waiters->wait_for(lock, std::chrono::milliseconds(options_.begin_wait_ms), [&] {
        auto again = documents_.find(gid);
        return again == documents_.end() || again->second.begun || again->second.failed;
      });
      auto again = documents_.find(gid);
      if (again == documents_.end() || again->second.failed) {
        return Status::Unavailable("transaction " + gid + " could not be started; submit again");
      }
      return SubmitResult{Submitted::kExisting, again->second.document};
    }
    if (active_.load() >= options_.max_in_flight) {
      return Status::ResourceExhausted("the coordinator is at its limit of " +
                                       std::to_string(options_.max_in_flight) +
                                       " transactions in flight");
    }
    ++active_;
    DocumentEntry entry;
    entry.document.gid = gid;
    entry.document.protocol = plan.protocol;
    entry.document.state = plan.machine->StateName();
    entry.document.created_unix_ms = plan.created_unix_ms;
    entry.document.updated_unix_ms = plan.created_unix_ms;
    entry.document.fingerprint = plan.fingerprint;
    for (uint32_t b = 0; b < plan.branch_names.size(); ++b) {
      const auto view = plan.machine->Branch(b);
      entry.document.branches.push_back(
          {plan.branch_names[b], view.state, view.attempts, view.last_error, view.needs_operator});
    }
    documents_.emplace(gid, std::move(entry));
  }

  auto shared_plan = std::make_shared<TransactionPlan>(std::move(plan));
  Post([this, shared_plan] {
    TransactionPlan& p = *shared_plan;
    Runtime runtime;
    runtime.protocol = p.protocol;
    runtime.branch_names = p.branch_names;
    runtime.branch_timeout_ms = p.branch_timeout_ms;
    runtime.participants = std::move(p.participants);
    runtime.started_ns = clock_.MonotonicNs();
    runtime.trace_id = p.trace_id.empty() ? NewTraceId() : p.trace_id;
    runtimes_[p.gid] = std::move(runtime);
    if (observer_ != nullptr) observer_->OnStarted(p.protocol);
    Status s = core_.Submit(p.gid, std::move(p.machine), std::move(p.begin_body), p.retry);
    TXC_CHECK(s.ok(), "a gid reserved in the documents is not active in the core");
    Refresh(p.gid);
  });

  std::unique_lock lock(documents_mu_);
  auto entry = documents_.find(gid);
  TXC_CHECK(entry != documents_.end(), "a submitted gid keeps its document until it is settled");
  (void)WaitersOf(entry->second);
  const auto waiters = entry->second.waiters;  // the entry may go; the waiters stay
  const bool settled =
      waiters->wait_for(lock, std::chrono::milliseconds(options_.begin_wait_ms), [&] {
        auto it = documents_.find(gid);
        return it == documents_.end() || it->second.begun || it->second.failed;
      });
  auto it = documents_.find(gid);
  if (!settled || it == documents_.end()) {
    return Status::Unavailable("the decision log did not make transaction " + gid +
                               " durable in time");
  }
  if (it->second.failed) return Status::Unavailable(it->second.failure.message());
  return SubmitResult{Submitted::kCreated, it->second.document};
}

Status Engine::Recover(const log::RecoveredLog& recovered, const PlanRebuilder& rebuild) {
  const int64_t now = clock_.NowUnixMs();
  {
    std::lock_guard lock(documents_mu_);
    for (const auto& end : recovered.finished) {
      auto summary = DecodeSummary(end.body);
      if (!summary.ok()) {
        return Status::Corruption("the END record of " + end.gid + ": " +
                                  summary.status().message());
      }
      DocumentEntry entry;
      entry.document = std::move(summary).value();
      entry.begun = true;
      entry.commit_decided = entry.document.outcome == "committed";
      documents_[end.gid] = std::move(entry);
      finished_order_.emplace_back(end.time_unix_ms, end.gid);
    }
  }
  std::vector<std::shared_ptr<TransactionPlan>> plans;
  for (const auto& txn : recovered.unfinished) {
    auto plan = rebuild(txn.gid, txn.records);
    if (!plan.ok()) {
      return Status(plan.status().code(),
                    "cannot recover transaction " + txn.gid + ": " + plan.status().message());
    }
    auto shared = std::make_shared<TransactionPlan>(std::move(plan).value());
    bool commit_decided = false;
    for (const auto& record : txn.records) {
      commit_decided = commit_decided || (record.type == log::RecordType::kDecision &&
                                          record.body.starts_with("commit"));
    }
    std::lock_guard lock(documents_mu_);
    DocumentEntry entry;
    entry.begun = true;
    entry.commit_decided = commit_decided;
    entry.document.gid = txn.gid;
    entry.document.protocol = shared->protocol;
    entry.document.state = shared->machine->StateName();
    entry.document.created_unix_ms = shared->created_unix_ms;
    entry.document.updated_unix_ms = now;
    entry.document.fingerprint = shared->fingerprint;
    for (const auto& record : txn.records) {
      if (record.type != log::RecordType::kOperator) continue;
      auto action = DecodeOperatorAction(record.body);
      if (!action.ok()) {
        return Status::Corruption("an operator record of " + txn.gid + ": " +
                                  action.status().message());
      }
      entry.document.history.push_back(std::move(action).value());
    }
    documents_[txn.gid] = std::move(entry);
    ++active_;
    plans.push_back(std::move(shared));
  }
  std::promise<void> resumed;
  Post([this, plans, &resumed] {
    for (const auto& plan : plans) {
      Runtime runtime;
      runtime.protocol = plan->protocol;
      runtime.branch_names = plan->branch_names;
      runtime.branch_timeout_ms = plan->branch_timeout_ms;
      runtime.participants = std::move(plan->participants);
      runtime.started_ns = clock_.MonotonicNs();
      runtime.trace_id = plan->trace_id.empty() ? NewTraceId() : plan->trace_id;
      runtimes_[plan->gid] = std::move(runtime);
      if (observer_ != nullptr) observer_->OnRecovered(plan->protocol);
      Status s = core_.Resume(plan->gid, std::move(plan->machine), plan->retry);
      TXC_CHECK(s.ok(), "a recovered gid is not active twice");
      Refresh(plan->gid);
    }
    resumed.set_value();
  });
  resumed.get_future().wait();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Reads and operator verbs

Result<TransactionDocument> Engine::Wait(const std::string& gid, int64_t timeout_ms) {
  std::unique_lock lock(documents_mu_);
  auto entry = documents_.find(gid);
  if (entry == documents_.end()) return Status::NotFound("no transaction " + gid);
  (void)WaitersOf(entry->second);
  const auto waiters = entry->second.waiters;
  waiters->wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)), [&] {
    auto it = documents_.find(gid);
    return it == documents_.end() || it->second.document.final();
  });
  auto it = documents_.find(gid);
  if (it == documents_.end()) return Status::NotFound("no transaction " + gid);
  return it->second.document;
}

Result<TransactionDocument> Engine::Get(const std::string& gid) const {
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  if (it == documents_.end() || it->second.failed) {
    return Status::NotFound("no transaction " + gid);
  }
  return it->second.document;
}

std::vector<TransactionDocument> Engine::List(const ListFilter& filter,
                                              std::optional<std::string>* next_cursor) const {
  std::vector<TransactionDocument> page;
  next_cursor->reset();
  const int64_t now = clock_.NowUnixMs();
  std::lock_guard lock(documents_mu_);
  auto it =
      filter.after_gid.empty() ? documents_.begin() : documents_.upper_bound(filter.after_gid);
  for (; it != documents_.end(); ++it) {
    const TransactionDocument& d = it->second.document;
    if (it->second.failed) continue;
    if (!filter.state.empty() && d.state != filter.state) continue;
    if (!filter.protocol.empty() && d.protocol != filter.protocol) continue;
    if (filter.stuck_only && !d.Stuck(now, options_.stuck_after_ms)) continue;
    if (page.size() == filter.limit) {
      *next_cursor = page.back().gid;
      break;
    }
    page.push_back(d);
  }
  return page;
}

Status Engine::Abort(const std::string& gid, const std::string& by, const std::string& reason) {
  OperatorAction action;
  action.at_unix_ms = clock_.NowUnixMs();
  action.action = "abort";
  action.by = by.empty() ? "anonymous" : by;
  action.reason = reason;
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  Post([this, gid, action, done] {
    Status s = core_.Abort(gid, EncodeOperatorAction(action));
    if (s.ok()) RecordOperatorAction(gid, action);
    done->set_value(s);
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return Status::Unavailable("the engine did not answer");
  }
  return FinishedIsAConflict(gid, result.get());
}

Status Engine::Resolve(const std::string& gid, const std::string& branch, protocol::Outcome outcome,
                       const std::string& by, const std::string& reason) {
  OperatorAction action;
  action.at_unix_ms = clock_.NowUnixMs();
  action.action = "resolve";
  action.by = by.empty() ? "anonymous" : by;
  action.branch = branch;
  action.outcome = protocol::OutcomeName(outcome);
  action.reason = reason;
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  Post([this, gid, action, outcome, done] {
    auto runtime = runtimes_.find(gid);
    if (runtime == runtimes_.end()) {
      done->set_value(Status::NotFound("transaction " + gid + " is not active"));
      return;
    }
    const auto& names = runtime->second.branch_names;
    const auto named = std::find(names.begin(), names.end(), action.branch);
    if (named == names.end()) {
      done->set_value(Status::InvalidArgument("branch: transaction " + gid + " has no branch '" +
                                              action.branch + "'"));
      return;
    }
    const auto index = static_cast<uint32_t>(named - names.begin());
    Status s = core_.Resolve(gid, index, outcome, EncodeOperatorAction(action));
    if (s.ok()) RecordOperatorAction(gid, action);
    done->set_value(s);
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return Status::Unavailable("the engine did not answer");
  }
  return FinishedIsAConflict(gid, result.get());
}

Status Engine::FinishedIsAConflict(const std::string& gid, Status status) const {
  if (status.code() == StatusCode::kNotFound) {
    std::lock_guard lock(documents_mu_);
    if (documents_.contains(gid)) {
      return Status::FailedPrecondition("transaction " + gid + " is finished");
    }
  }
  return status;
}

void Engine::RecordOperatorAction(const std::string& gid, const OperatorAction& action) {
  if (options_.log) {
    options_.log("info", "operator_action",
                 {{"gid", gid},
                  {"action", action.action},
                  {"by", action.by},
                  {"branch", action.branch},
                  {"outcome", action.outcome},
                  {"reason", action.reason}});
  }
  {
    std::lock_guard lock(documents_mu_);
    auto it = documents_.find(gid);
    if (it != documents_.end()) it->second.document.history.push_back(action);
  }
  Refresh(gid);
}

Status Engine::RetryNow(const std::string& gid) {
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  Post([this, gid, done] {
    Status s = core_.RetryNow(gid);
    done->set_value(s);
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return Status::Unavailable("the engine did not answer");
  }
  return result.get();
}

bool Engine::IsActive(const std::string& gid) const {
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  return it != documents_.end() && !it->second.document.final() && !it->second.failed;
}

bool Engine::IsCommitDecided(const std::string& gid) const {
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  return it != documents_.end() && it->second.commit_decided;
}

// ---------------------------------------------------------------------------------------------
// EngineEnvironment

void Engine::Append(const std::string& gid, log::LogRecord record, log::Durability durability,
                    uint64_t append_id) {
  record.time_unix_ms = clock_.NowUnixMs();
  const bool is_begin = record.type == log::RecordType::kBegin;
  const bool is_commit =
      record.type == log::RecordType::kDecision && record.body.starts_with("commit");
  const bool is_decision = record.type == log::RecordType::kDecision;
  if (record.type == log::RecordType::kEnd) CrashPoint("before_end");
  log_.AppendAsync(std::move(record), durability,
                   [this, gid, append_id, is_begin, is_commit, is_decision,
                    forced = durability == log::Durability::kForced](const Status& status) {
                     // The log's writer thread: hand over to the loop, and wake a submitter
                     // waiting for its BEGIN right away.
                     if (status.ok() && (is_begin || is_commit)) {
                       std::lock_guard lock(documents_mu_);
                       auto it = documents_.find(gid);
                       if (it != documents_.end()) {
                         it->second.begun = true;
                         it->second.commit_decided = it->second.commit_decided || is_commit;
                         if (is_begin) WakeWaiters(it->second);
                       }
                     } else if (!status.ok() && is_begin) {
                       std::lock_guard lock(documents_mu_);
                       auto it = documents_.find(gid);
                       if (it != documents_.end()) {
                         it->second.failed = true;
                         it->second.failure = status;
                         WakeWaiters(it->second);
                       }
                     }
                     if (status.ok() && is_decision) CrashPoint("after_decision_durable");
                     // A lazy record that was written needs nothing from the loop: nothing
                     // waits for it (EngineCore only acts on a lazy record's failure).
                     if (status.ok() && !forced) return;
                     Post([this, gid, append_id, status, is_begin] {
                       if (status.ok() && is_begin) CrashPoint("after_begin_durable");
                       core_.OnAppended(gid, append_id, status);
                       Refresh(gid);
                     });
                   });
}

void Engine::Call(const std::string& gid, uint32_t branch, Op op) {
  auto it = runtimes_.find(gid);
  TXC_CHECK(it != runtimes_.end() && branch < it->second.participants.size(),
            "a call for a known branch of an active transaction");
  const Runtime& runtime = it->second;
  participants::CallContext context;
  context.gid = gid;
  // W3C traceparent: the transaction's trace-id, a new parent (span) id per call, sampled.
  char span[17];
  std::snprintf(span, sizeof(span), "%016llx", static_cast<unsigned long long>(Random() | 1));
  context.traceparent = "00-" + runtime.trace_id + "-" + span + "-01";
  context.branch = runtime.branch_names[branch];
  context.branch_index = branch;
  context.op = op;
  context.timeout_ms = runtime.branch_timeout_ms[branch];
  auto participant = runtime.participants[branch];
  const std::string protocol = runtime.protocol;
  const auto* machine = core_.Find(gid);
  if (observer_ != nullptr && machine != nullptr && machine->Branch(branch).attempts > 1) {
    observer_->OnRetry(protocol, op);
  }
  const bool queued = executor_->Submit([this, participant, context, protocol] {
    const int64_t start = clock_.MonotonicNs();
    CallResult result = participant->Call(context);
    const double seconds = static_cast<double>(clock_.MonotonicNs() - start) / 1e9;
    if (observer_ != nullptr) {
      observer_->OnBranchCall(protocol, context.op, result.outcome, seconds);
    }
    Post([this, context, result] {
      if (const char* point = ReplyCrashPoint(context.op, result)) CrashPoint(point);
      core_.OnReply(context.gid, context.branch_index, context.op, result);
      Refresh(context.gid);
    });
  });
  if (!queued) {
    // The executor is full: the call did not happen, which is what Transient means.
    Post([this, gid, branch, op] {
      core_.OnReply(gid, branch, op, CallResult::Transient("the coordinator's call queue is full"));
      Refresh(gid);
    });
  }
}

void Engine::SetTimer(const std::string& gid, int64_t at_ms, TimerKind kind, uint32_t branch,
                      uint64_t token) {
  timers_->At(at_ms, [this, gid, kind, branch, token] {
    Post([this, gid, kind, branch, token] {
      core_.OnTimer(gid, kind, branch, token);
      Refresh(gid);
    });
  });
}

std::string Engine::EndBody(const std::string& gid) {
  Refresh(gid);
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  TXC_CHECK(it != documents_.end(), "an ending transaction has a document");
  TransactionDocument final_document = it->second.document;
  const auto* machine = core_.Find(gid);
  TXC_CHECK(machine != nullptr && machine->FinalOutcome(), "END only for a final machine");
  final_document.outcome = protocol::OutcomeName(*machine->FinalOutcome());
  return EncodeSummary(final_document);
}

void Engine::Finished(const std::string& gid, protocol::Outcome outcome) {
  auto it = runtimes_.find(gid);
  TXC_CHECK(it != runtimes_.end(), "a finished transaction had a runtime");
  const Runtime runtime = std::move(it->second);
  runtimes_.erase(it);
  // The protocol's own final state: "committed", "succeeded", "compensated", ...
  const auto* machine = core_.Find(gid);
  const std::string final_state =
      machine != nullptr ? machine->StateName() : protocol::OutcomeName(outcome);
  const int64_t now = clock_.NowUnixMs();
  --active_;  // before the waiters wake: whoever sees the outcome also sees the slot free
  {
    std::lock_guard lock(documents_mu_);
    auto doc = documents_.find(gid);
    TXC_CHECK(doc != documents_.end(), "a finished transaction has a document");
    doc->second.document.outcome = protocol::OutcomeName(outcome);
    doc->second.document.state = final_state;
    doc->second.document.updated_unix_ms = now;
    finished_order_.emplace_back(now, gid);
    WakeWaiters(doc->second);
  }
  if (observer_ != nullptr) {
    const double seconds = static_cast<double>(clock_.MonotonicNs() - runtime.started_ns) / 1e9;
    observer_->OnFinished(runtime.protocol, protocol::OutcomeName(outcome), seconds);
  }
}

void Engine::Stalled(const std::string& gid, const Status& why) {
  if (options_.log) {
    options_.log("error", "transaction_stalled", {{"gid", gid}, {"error", why.ToString()}});
  } else {
    std::fprintf(stderr, "txc: transaction %s stalled: %s\n", gid.c_str(), why.ToString().c_str());
  }
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  if (it != documents_.end() && !it->second.begun) {
    it->second.failed = true;
    it->second.failure = why;
  }
  if (it != documents_.end()) WakeWaiters(it->second);
}

void Engine::Refresh(const std::string& gid) {
  const auto* machine = core_.Find(gid);
  if (machine == nullptr) return;
  auto runtime = runtimes_.find(gid);
  if (runtime == runtimes_.end()) return;
  const std::string state = machine->StateName();
  if (observer_ != nullptr && state != runtime->second.last_state) {
    observer_->OnStateChange(runtime->second.protocol, runtime->second.last_state, state);
  }
  runtime->second.last_state = state;
  std::lock_guard lock(documents_mu_);
  auto it = documents_.find(gid);
  if (it == documents_.end()) return;
  TransactionDocument& d = it->second.document;
  d.state = state;
  d.decision_reason = machine->DecisionReason();
  d.updated_unix_ms = clock_.NowUnixMs();
  d.branches.resize(machine->BranchCount());
  for (uint32_t b = 0; b < machine->BranchCount(); ++b) {
    const auto view = machine->Branch(b);
    d.branches[b].name = runtime->second.branch_names[b];
    d.branches[b].state = view.state;
    d.branches[b].attempts = view.attempts;
    d.branches[b].last_error = view.last_error;
    d.branches[b].needs_operator = view.needs_operator;
  }
}

void Engine::PurgeExpired() {
  const int64_t expire_before = clock_.NowUnixMs() - options_.retention_finished_ms;
  std::map<std::string, int64_t> stuck;
  std::vector<TransactionDocument> newly_stuck;
  {
    std::lock_guard lock(documents_mu_);
    while (!finished_order_.empty()) {
      const auto& [finished_at, gid] = finished_order_.front();
      if (finished_at >= expire_before &&
          finished_order_.size() <= options_.finished_retained_max) {
        break;
      }
      auto it = documents_.find(gid);
      if (it != documents_.end() && it->second.document.final()) documents_.erase(it);
      finished_order_.pop_front();
    }
    const int64_t now = clock_.NowUnixMs();
    for (auto& [gid, entry] : documents_) {
      if (!entry.document.final() && entry.document.Stuck(now, options_.stuck_after_ms)) {
        ++stuck[entry.document.protocol];
        if (!entry.stuck_reported) {
          entry.stuck_reported = true;
          newly_stuck.push_back(entry.document);
        }
      }
    }
  }
  if (observer_ != nullptr) observer_->OnStuckCount(stuck);
  if (options_.log) {
    for (const auto& document : newly_stuck) {
      std::string why;
      for (const auto& branch : document.branches) {
        if (!branch.needs_operator) continue;
        why += (why.empty() ? "" : "; ") + std::string("branch ") + branch.name +
               " needs an operator: " + branch.last_error;
      }
      if (why.empty()) {
        why = "not final after " + std::to_string(options_.stuck_after_ms) + " ms (stuck_after_ms)";
      }
      options_.log("warn", "transaction_stuck",
                   {{"gid", document.gid},
                    {"protocol", document.protocol},
                    {"state", document.state},
                    {"why", why}});
    }
  }
  timers_->At(NowMs() + kPurgeIntervalMs, [this] { Post([this] { PurgeExpired(); }); });
}

}  // namespace txc::engine
