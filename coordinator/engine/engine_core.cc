#include "coordinator/engine/engine_core.h"

#include <algorithm>

#include "coordinator/common/check.h"

namespace txc::engine {

using protocol::Ready;

int64_t BackoffDelayMs(const RetryPolicy& policy, uint32_t attempt, bool longest, uint64_t random) {
  TXC_CHECK(policy.initial_ms > 0 && policy.max_ms >= policy.initial_ms, "valid retry policy");
  int64_t delay = policy.max_ms;
  if (!longest) {
    delay = policy.initial_ms;
    for (uint32_t i = 1; i < attempt && delay < policy.max_ms; ++i) delay *= 2;
    delay = std::min(delay, policy.max_ms);
  }
  const int64_t half = delay / 2;
  return half + static_cast<int64_t>(random % static_cast<uint64_t>(delay - half + 1));
}

Status EngineCore::Submit(const std::string& gid,
                          std::unique_ptr<protocol::TransactionMachine> machine,
                          std::string begin_body, RetryPolicy retry) {
  if (txns_.contains(gid)) return Status::AlreadyExists("transaction " + gid + " is active");
  Txn& txn = txns_[gid];
  txn.machine = std::move(machine);
  txn.retry = retry;
  txn.begin_body = std::move(begin_body);
  Enqueue(gid, txn, txn.machine->Start(env_.NowMs()));
  return Status::Ok();
}

Status EngineCore::Resume(const std::string& gid,
                          std::unique_ptr<protocol::TransactionMachine> machine,
                          RetryPolicy retry) {
  if (txns_.contains(gid)) return Status::AlreadyExists("transaction " + gid + " is active");
  Txn& txn = txns_[gid];
  txn.machine = std::move(machine);
  txn.retry = retry;
  Enqueue(gid, txn, txn.machine->Resume(env_.NowMs()));
  return Status::Ok();
}

void EngineCore::Enqueue(const std::string& gid, Txn& txn, Ready ready) {
  if (ready.empty()) return;
  txn.readies.push_back(std::move(ready));
  if (txn.readies.size() == 1) Drain(gid, txn);
}

void EngineCore::Drain(const std::string& gid, Txn& txn) {
  while (!txn.readies.empty() && !txn.stalled) {
    Ready& head = txn.readies.front();
    if (!txn.head_appended) {
      txn.head_appended = true;
      for (auto& persist : head.persist) {
        log::LogRecord record;
        record.type = persist.type;
        record.gid = gid;
        record.time_unix_ms = 0;  // the environment stamps wall-clock time
        if (persist.type == log::RecordType::kBegin) {
          record.body = std::move(txn.begin_body);
          txn.begin_body.clear();
        } else if (persist.type == log::RecordType::kEnd) {
          record.body = env_.EndBody(gid);
        } else {
          record.body = std::move(persist.body);
        }
        const uint64_t id = next_append_id_++;
        if (persist.durability == log::Durability::kForced) {
          ++txn.forced_outstanding;
          append_owner_[id] = gid;
        }
        env_.Append(gid, std::move(record), persist.durability, id);
      }
    }
    if (txn.forced_outstanding > 0) return;  // OnAppended resumes
    Ready ready = std::move(head);
    txn.readies.pop_front();
    txn.head_appended = false;
    if (!RunAfterPersist(gid, txn, ready)) return;
  }
}

bool EngineCore::RunAfterPersist(const std::string& gid, Txn& txn, Ready& ready) {
  const int64_t now = env_.NowMs();
  for (const auto& call : ready.calls) {
    txn.retries_waiting.erase(call.branch);
    env_.Call(gid, call.branch, call.op);
  }
  for (const auto& retry : ready.retries) {
    txn.retries_waiting[retry.branch] = PendingRetry{retry.op, retry.token};
    const int64_t delay = BackoffDelayMs(txn.retry, retry.attempt, retry.longest, env_.Random());
    env_.SetTimer(gid, now + delay, TimerKind::kRetry, retry.branch, retry.token);
  }
  if (ready.deadline_at_ms) env_.SetTimer(gid, *ready.deadline_at_ms, TimerKind::kDeadline, 0, 0);
  if (ready.finished) {
    TXC_CHECK(txn.machine->IsFinished(), "a finished Ready comes from a finished machine");
    const protocol::Outcome outcome = *ready.finished;
    TXC_CHECK(txn.readies.empty(), "nothing follows the end of a transaction");
    env_.Finished(gid, outcome);  // the machine is still there to be read
    txns_.erase(gid);
    return false;
  }
  return true;
}

void EngineCore::OnAppended(const std::string& gid, uint64_t append_id, const Status& status) {
  auto owner = append_owner_.find(append_id);
  if (owner == append_owner_.end()) {
    // A lazy record: nothing waits for it. A failure still means the log is gone.
    if (!status.ok()) {
      auto it = txns_.find(gid);
      if (it != txns_.end() && !it->second.stalled) {
        it->second.stalled = true;
        env_.Stalled(gid, status);
      }
    }
    return;
  }
  TXC_CHECK(owner->second == gid, "an append completes for the transaction that made it");
  append_owner_.erase(owner);
  auto it = txns_.find(gid);
  TXC_CHECK(it != txns_.end(), "a transaction waiting for a forced record is active");
  Txn& txn = it->second;
  TXC_CHECK(txn.forced_outstanding > 0, "a forced append was outstanding");
  --txn.forced_outstanding;
  if (!status.ok()) {
    // Not durable: nothing that was to follow it may happen. Recovery after a restart decides
    // from what the log really holds.
    if (!txn.stalled) {
      txn.stalled = true;
      env_.Stalled(gid, status);
    }
    return;
  }
  if (txn.forced_outstanding == 0 && !txn.stalled) Drain(gid, txn);
}

void EngineCore::OnReply(const std::string& gid, uint32_t branch, participants::Op op,
                         const participants::CallResult& result) {
  auto it = txns_.find(gid);
  if (it == txns_.end()) return;  // finished meanwhile (a duplicate reply)
  Txn& txn = it->second;
  if (txn.stalled) return;
  Enqueue(gid, txn, txn.machine->OnReply(branch, op, result, env_.NowMs()));
}

void EngineCore::OnTimer(const std::string& gid, TimerKind kind, uint32_t branch, uint64_t token) {
  auto it = txns_.find(gid);
  if (it == txns_.end()) return;
  Txn& txn = it->second;
  if (txn.stalled) return;
  const int64_t now = env_.NowMs();
  if (kind == TimerKind::kDeadline) {
    Enqueue(gid, txn, txn.machine->OnDeadline(now));
    return;
  }
  auto waiting = txn.retries_waiting.find(branch);
  if (waiting == txn.retries_waiting.end() || waiting->second.token != token) return;
  txn.retries_waiting.erase(waiting);
  Enqueue(gid, txn, txn.machine->OnRetryDue(branch, token, now));
}

Status EngineCore::RetryNow(const std::string& gid) {
  auto it = txns_.find(gid);
  if (it == txns_.end()) return Status::NotFound("transaction " + gid + " is not active");
  Txn& txn = it->second;
  if (txn.stalled) return Status::Unavailable("transaction " + gid + " is stalled");
  const auto waiting = txn.retries_waiting;
  txn.retries_waiting.clear();
  const int64_t now = env_.NowMs();
  for (const auto& [branch, retry] : waiting) {
    Enqueue(gid, txn, txn.machine->OnRetryDue(branch, retry.token, now));
    if (!txns_.contains(gid)) break;
  }
  return Status::Ok();
}

namespace {

// The operator's record goes first: the forced records after it make it durable with them.
void PrependAudit(const std::string& audit_body, protocol::Ready* ready) {
  if (audit_body.empty()) return;
  ready->persist.insert(ready->persist.begin(),
                        {log::RecordType::kOperator, audit_body, log::Durability::kLazy});
}

}  // namespace

Status EngineCore::Abort(const std::string& gid, const std::string& audit_body) {
  auto it = txns_.find(gid);
  if (it == txns_.end()) return Status::NotFound("transaction " + gid + " is not active");
  Txn& txn = it->second;
  auto ready = txn.machine->OnOperatorAbort(env_.NowMs());
  if (!ready) {
    return Status::FailedPrecondition("transaction " + gid +
                                      " is past its decision and can no longer be aborted");
  }
  TXC_CHECK(ready->HasForced(), "an abort forces its decision");
  PrependAudit(audit_body, &*ready);
  Enqueue(gid, txn, std::move(*ready));
  return Status::Ok();
}

Status EngineCore::Resolve(const std::string& gid, uint32_t branch, protocol::Outcome outcome,
                           const std::string& audit_body) {
  auto it = txns_.find(gid);
  if (it == txns_.end()) return Status::NotFound("transaction " + gid + " is not active");
  Txn& txn = it->second;
  if (txn.stalled) return Status::Unavailable("transaction " + gid + " is stalled");
  auto ready = txn.machine->OnOperatorResolve(branch, outcome, env_.NowMs());
  if (!ready.ok()) return ready.status();
  TXC_CHECK(ready->HasForced(), "a resolved branch's state is forced");
  txn.retries_waiting.erase(branch);
  PrependAudit(audit_body, &*ready);
  Enqueue(gid, txn, std::move(ready).value());
  return Status::Ok();
}

const protocol::TransactionMachine* EngineCore::Find(const std::string& gid) const {
  auto it = txns_.find(gid);
  return it == txns_.end() ? nullptr : it->second.machine.get();
}

std::vector<std::string> EngineCore::ActiveGids() const {
  std::vector<std::string> gids;
  gids.reserve(txns_.size());
  for (const auto& [gid, txn] : txns_) gids.push_back(gid);
  return gids;
}

}  // namespace txc::engine
