#include "tests/sim/two_phase_world.h"

#include <sstream>

namespace txc::sim {

using log::Durability;
using log::LogRecord;
using log::RecordType;
using participants::CallResult;
using participants::Op;

namespace {
constexpr int64_t kCallTimeoutMs = 50;  // a lost request or reply shows up as this late Unknown
constexpr engine::RetryPolicy kRetry{10, 200};
}  // namespace

TwoPhaseWorld::TwoPhaseWorld(uint64_t seed, WorldOptions options)
    : seed_(seed), options_(options), random_(seed) {}

TwoPhaseWorld::~TwoPhaseWorld() = default;

void TwoPhaseWorld::Schedule(int64_t delay_ms, bool to_coordinator, std::function<void()> action) {
  events_.push(
      Event{now_ms_ + delay_ms, random_(), to_coordinator ? epoch_ : 0, std::move(action)});
}

std::string TwoPhaseWorld::Run() {
  core_ = std::make_unique<engine::EngineCore>(*this);
  for (int t = 0; t < options_.transactions; ++t) {
    const std::string gid = "g" + std::to_string(t);
    TxnInfo info;
    info.branches = 1 + static_cast<uint32_t>(random_() % options_.branches_max);
    info.deadline_ms = 100 + static_cast<int64_t>(random_() % 400);
    for (uint32_t b = 0; b < info.branches; ++b) {
      participants_[{gid, b}].votes_no = Chance(options_.vote_no_probability);
    }
    txns_[gid] = info;
    // Submissions arrive at different times; each is an event for the coordinator.
    Schedule(static_cast<int64_t>(random_() % 30), true, [this, gid] {
      const TxnInfo& txn = txns_[gid];
      Status s = core_->Submit(
          gid, std::make_unique<protocol::TwoPhaseCommit>(txn.branches, now_ms_ + txn.deadline_ms),
          "spec of " + gid, kRetry);
      if (!s.ok()) violations_.push_back("submit " + gid + ": " + s.ToString());
    });
  }

  int steps = 0;
  while (!events_.empty()) {
    if (steps == options_.fault_steps) faults_ = false;
    if (steps >= options_.fault_steps + options_.liveness_steps_max) {
      violations_.push_back("liveness: still busy after " + std::to_string(steps) + " events");
      break;
    }
    Event event = events_.top();
    events_.pop();
    now_ms_ = std::max(now_ms_, event.at_ms);
    ++steps;
    if (event.epoch != 0 && event.epoch != epoch_) continue;  // addressed to a crashed process
    event.action();
    if (faults_ && Chance(options_.crash_probability)) Crash();
    if (!violations_.empty()) break;
  }
  if (violations_.empty()) {
    if (std::string broken = CheckSafety(); !broken.empty()) violations_.push_back(broken);
  }
  if (violations_.empty()) {
    if (std::string broken = CheckQuiet(); !broken.empty()) violations_.push_back(broken);
  }
  if (violations_.empty()) return "";
  std::ostringstream out;
  out << "seed " << seed_ << ": " << violations_.front()
      << "\n  (replay with TXC_SIM_SEED=" << seed_ << "); last events:\n";
  const size_t from = trace_.size() > 40 ? trace_.size() - 40 : 0;
  for (size_t i = from; i < trace_.size(); ++i) out << "    " << trace_[i] << "\n";
  return out.str();
}

void TwoPhaseWorld::Append(const std::string& gid, LogRecord record, Durability durability,
                           uint64_t append_id) {
  record.time_unix_ms = now_ms_;
  trace_.push_back(std::to_string(now_ms_) + " append " + gid + " " +
                   log::RecordTypeName(record.type) + " '" + record.body.substr(0, 40) + "'" +
                   (durability == Durability::kForced ? " forced" : " lazy"));
  // Everything is written at once but durable only once a sync completes: the completion of a
  // forced append is that sync, and it covers every record written before it.
  const bool forced = durability == Durability::kForced;
  unsynced_log_.push_back(std::move(record));
  Schedule(1 + static_cast<int64_t>(random_() % 3), true, [this, gid, append_id, forced] {
    if (forced) {
      for (auto& written : unsynced_log_) durable_log_.push_back(std::move(written));
      unsynced_log_.clear();
    }
    core_->OnAppended(gid, append_id, Status::Ok());
  });
}

void TwoPhaseWorld::Call(const std::string& gid, uint32_t branch, Op op) {
  trace_.push_back(std::to_string(now_ms_) + " call " + gid + "/" + std::to_string(branch) + " " +
                   participants::OpName(op));
  // The request travels to the participant (who acts even if the coordinator dies meanwhile).
  const bool request_lost = faults_ && Chance(options_.drop_probability);
  const bool reply_lost = faults_ && Chance(options_.drop_probability);
  const bool duplicated = faults_ && Chance(options_.duplicate_probability);
  const uint64_t caller_epoch = epoch_;
  auto reply_to_coordinator = [this, gid, branch, op, caller_epoch](CallResult result,
                                                                    int64_t delay) {
    events_.push(Event{now_ms_ + delay, random_(), caller_epoch, [this, gid, branch, op, result] {
                         trace_.push_back(std::to_string(now_ms_) + " reply " + gid + "/" +
                                          std::to_string(branch) + " " + participants::OpName(op) +
                                          " " + participants::CallOutcomeName(result.outcome));
                         core_->OnReply(gid, branch, op, result);
                       }});
  };
  if (request_lost) {
    reply_to_coordinator(CallResult::Unknown("timed out (request lost)"), kCallTimeoutMs);
    return;
  }
  if (faults_ && Chance(options_.drop_probability)) {
    // A request stuck in the network past the call's timeout: the coordinator hears "unknown"
    // first, and the participant gets the request later, maybe after the decision's phase 2.
    reply_to_coordinator(CallResult::Unknown("timed out (request late)"), kCallTimeoutMs);
    Schedule(kCallTimeoutMs + Latency(), false, [this, gid, branch, op] {
      trace_.push_back(std::to_string(now_ms_) + " late delivery " + gid + "/" +
                       std::to_string(branch) + " " + participants::OpName(op));
      (void)Deliver(gid, branch, op);
    });
    return;
  }
  const int64_t there = Latency();
  Schedule(there, false,
           [this, gid, branch, op, reply_lost, duplicated, there, reply_to_coordinator] {
             CallResult result = Deliver(gid, branch, op);
             if (duplicated) (void)Deliver(gid, branch, op);  // a retransmission: must be harmless
             if (reply_lost) {
               reply_to_coordinator(CallResult::Unknown("timed out (reply lost)"),
                                    std::max<int64_t>(1, kCallTimeoutMs - there));
             } else {
               reply_to_coordinator(result, Latency());
             }
           });
}

CallResult TwoPhaseWorld::Deliver(const std::string& gid, uint32_t branch, Op op) {
  Participant& p = participants_[{gid, branch}];
  if (faults_ && Chance(options_.transient_probability)) {
    return CallResult::Transient("participant busy");
  }
  switch (op) {
    case Op::kPrepare:
      if (p.state == ParticipantState::kNone) {
        if (p.votes_no) {
          p.state = ParticipantState::kAborted;
          return CallResult::Refused("vote no");
        }
        p.state = ParticipantState::kPrepared;
        return CallResult::Ok();
      }
      if (p.state == ParticipantState::kPrepared) return CallResult::Ok();
      if (p.state == ParticipantState::kAborted) return CallResult::Refused("already aborted");
      // A retransmitted prepare after the commit: the same request, answered as before.
      return CallResult::Ok();
    case Op::kCommit:
      if (p.state == ParticipantState::kPrepared || p.state == ParticipantState::kCommitted) {
        p.state = ParticipantState::kCommitted;
        return CallResult::Ok();
      }
      violations_.push_back("commit of a branch that is not prepared at " + gid + "/" +
                            std::to_string(branch));
      return CallResult::Ok();
    case Op::kAbort:
      if (p.state == ParticipantState::kCommitted) {
        violations_.push_back("abort of a committed branch at " + gid + "/" +
                              std::to_string(branch));
        return CallResult::Ok();
      }
      // Aborting what never prepared records the abort, so a late prepare is refused (what a
      // database does once the session is gone, and what the barrier does for HTTP).
      p.state = ParticipantState::kAborted;
      return CallResult::Ok();
    default:
      return CallResult::Permanent("not a 2pc operation");
  }
}

void TwoPhaseWorld::SetTimer(const std::string& gid, int64_t at_ms, engine::TimerKind kind,
                             uint32_t branch, uint64_t token) {
  Schedule(std::max<int64_t>(0, at_ms - now_ms_), true,
           [this, gid, kind, branch, token] { core_->OnTimer(gid, kind, branch, token); });
}

std::string TwoPhaseWorld::EndBody(const std::string& gid) { return "summary of " + gid; }

void TwoPhaseWorld::Finished(const std::string& gid, protocol::Outcome outcome) {
  trace_.push_back(std::to_string(now_ms_) + " finished " + gid + " " +
                   protocol::OutcomeName(outcome));
  TxnInfo& txn = txns_[gid];
  txn.finished_in_this_life = true;
  if (outcome == protocol::Outcome::kCommitted) {
    txn.client_told_committed = true;
    ++committed_;
  } else {
    if (txn.client_told_committed) {
      violations_.push_back(gid + " finished aborted after a client was told it committed");
    }
    ++aborted_;
  }
}

void TwoPhaseWorld::Stalled(const std::string& gid, const Status& why) {
  violations_.push_back("stalled " + gid + ": " + why.ToString());
}

void TwoPhaseWorld::Crash() {
  ++crashes_;
  trace_.push_back(std::to_string(now_ms_) + " CRASH (" + std::to_string(unsynced_log_.size()) +
                   " unsynced records lost)");
  // Unsynced records are lost, except a prefix that happened to reach the disk.
  const size_t survive =
      unsynced_log_.empty() ? 0 : static_cast<size_t>(random_() % (unsynced_log_.size() + 1));
  for (size_t i = 0; i < survive; ++i) durable_log_.push_back(std::move(unsynced_log_[i]));
  unsynced_log_.clear();
  ++epoch_;  // every event addressed to the old process is void
  core_ = std::make_unique<engine::EngineCore>(*this);
  // Restart a little later.
  Schedule(5, true, [this] { Recover(); });
}

void TwoPhaseWorld::Recover() {
  trace_.push_back(std::to_string(now_ms_) + " RECOVER");
  std::map<std::string, std::vector<LogRecord>> by_gid;
  std::vector<std::string> order;
  for (const auto& record : durable_log_) {
    if (record.type == RecordType::kBegin) {
      by_gid[record.gid].clear();
      order.push_back(record.gid);
    }
    by_gid[record.gid].push_back(record);
  }
  for (const auto& gid : order) {
    const auto& records = by_gid[gid];
    if (records.back().type == RecordType::kEnd) continue;
    auto machine = protocol::TwoPhaseCommit::Recover(txns_[gid].branches, records);
    if (!machine.ok()) {
      violations_.push_back("recover " + gid + ": " + machine.status().ToString());
      return;
    }
    Status s = core_->Resume(
        gid, std::make_unique<protocol::TwoPhaseCommit>(std::move(machine).value()), kRetry);
    if (!s.ok()) violations_.push_back("resume " + gid + ": " + s.ToString());
  }
  // Submissions that never reached a durable BEGIN are lost to the client (it got no answer),
  // which is allowed; they must not have touched a participant. CheckSafety verifies it.
}

std::string TwoPhaseWorld::CheckSafety() const {
  for (const auto& [gid, txn] : txns_) {
    int committed = 0;
    int prepared = 0;
    for (uint32_t b = 0; b < txn.branches; ++b) {
      const auto& p = participants_.at({gid, b});
      committed += p.state == ParticipantState::kCommitted ? 1 : 0;
      prepared += p.state == ParticipantState::kPrepared ? 1 : 0;
    }
    if (committed != 0 && committed != static_cast<int>(txn.branches)) {
      return "atomicity: " + gid + " has " + std::to_string(committed) + " of " +
             std::to_string(txn.branches) + " branches committed";
    }
    if (txn.client_told_committed && committed == 0) {
      return "durability: " + gid + " was reported committed but no branch committed";
    }
  }
  return "";
}

std::string TwoPhaseWorld::CheckQuiet() const {
  // After the liveness phase everything is finished: no branch left prepared, and every
  // transaction whose BEGIN is durable has its END.
  for (const auto& [key, p] : participants_) {
    if (p.state == ParticipantState::kPrepared) {
      return "liveness: " + key.first + "/" + std::to_string(key.second) + " left prepared";
    }
  }
  std::set<std::string> begun;
  std::set<std::string> ended;
  for (const auto& record : durable_log_) {
    if (record.type == RecordType::kBegin) begun.insert(record.gid);
    if (record.type == RecordType::kEnd) ended.insert(record.gid);
  }
  for (const auto& record : unsynced_log_) {
    if (record.type == RecordType::kEnd) ended.insert(record.gid);
  }
  for (const auto& gid : begun) {
    if (!ended.contains(gid)) return "liveness: " + gid + " never finished";
  }
  if (core_->active() != 0) return "liveness: the engine still has active transactions";
  return "";
}

}  // namespace txc::sim
