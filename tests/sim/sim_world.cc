#include "tests/sim/sim_world.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
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

SimWorld::SimWorld(uint64_t seed, WorldOptions options, std::unique_ptr<ProtocolModel> model)
    : seed_(seed), options_(options), model_(std::move(model)), random_(seed) {}

SimWorld::~SimWorld() = default;

void SimWorld::Schedule(int64_t delay_ms, bool to_coordinator, std::function<void()> action) {
  events_.push(
      Event{now_ms_ + delay_ms, random_(), to_coordinator ? epoch_ : 0, std::move(action)});
}

std::string SimWorld::Run() {
  core_ = std::make_unique<engine::EngineCore>(*this);
  for (int t = 0; t < options_.transactions; ++t) {
    const std::string gid = "g" + std::to_string(t);
    TxnInfo info;
    info.timeout_ms = 100 + static_cast<int64_t>(random_() % 400);
    model_->Plan(gid, random_, options_.refuse_probability);
    txns_[gid] = info;
    // Submissions arrive at different times; each is an event for the coordinator.
    Schedule(static_cast<int64_t>(random_() % 30), true, [this, gid] {
      TxnInfo& txn = txns_[gid];
      txn.deadline_ms = now_ms_ + txn.timeout_ms;
      Status s =
          core_->Submit(gid, model_->NewMachine(gid, txn.deadline_ms), "spec of " + gid, kRetry);
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
    if (std::string broken = CheckQuiet(); !broken.empty()) violations_.push_back(broken);
  }
  if (violations_.empty()) return "";
  std::ostringstream out;
  out << "seed " << seed_ << ": " << violations_.front()
      << "\n  (replay with TXC_SIM_SEED=" << seed_ << " TXC_SIM_TRACE_LINES=1000); last events:\n";
  // The last 40 events, or TXC_SIM_TRACE_LINES of them when replaying one seed.
  const char* lines_env = std::getenv("TXC_SIM_TRACE_LINES");
  const size_t lines = lines_env != nullptr ? std::strtoull(lines_env, nullptr, 10) : 40;
  const size_t from = trace_.size() > lines ? trace_.size() - lines : 0;
  for (size_t i = from; i < trace_.size(); ++i) out << "    " << trace_[i] << "\n";
  return out.str();
}

void SimWorld::Append(const std::string& gid, LogRecord record, Durability durability,
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

void SimWorld::Call(const std::string& gid, uint32_t branch, Op op) {
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

CallResult SimWorld::Deliver(const std::string& gid, uint32_t branch, Op op) {
  if (faults_ && Chance(options_.transient_probability)) {
    return CallResult::Transient("participant busy");
  }
  return model_->Deliver(gid, branch, op, &violations_);
}

void SimWorld::SetTimer(const std::string& gid, int64_t at_ms, engine::TimerKind kind,
                        uint32_t branch, uint64_t token) {
  Schedule(std::max<int64_t>(0, at_ms - now_ms_), true,
           [this, gid, kind, branch, token] { core_->OnTimer(gid, kind, branch, token); });
}

std::string SimWorld::EndBody(const std::string& gid) {
  // The outcome goes into the summary, as in txcoord: a transaction whose END became durable in
  // a process that died before reporting it still has its outcome on record.
  const protocol::TransactionMachine* machine = core_->Find(gid);
  const auto outcome = machine != nullptr ? machine->FinalOutcome() : std::nullopt;
  return std::string(outcome ? protocol::OutcomeName(*outcome) : "unknown");
}

void SimWorld::Finished(const std::string& gid, protocol::Outcome outcome) {
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

void SimWorld::Stalled(const std::string& gid, const Status& why) {
  violations_.push_back("stalled " + gid + ": " + why.ToString());
}

void SimWorld::Crash() {
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

void SimWorld::Recover() {
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
    auto machine = model_->Recover(gid, txns_[gid].deadline_ms, records);
    if (!machine.ok()) {
      violations_.push_back("recover " + gid + ": " + machine.status().ToString());
      return;
    }
    Status s = core_->Resume(gid, std::move(machine).value(), kRetry);
    if (!s.ok()) violations_.push_back("resume " + gid + ": " + s.ToString());
  }
  // Submissions that never reached a durable BEGIN are lost to the client (it got no answer),
  // which is allowed; they must not have touched a participant. CheckSafety verifies it.
}

std::string SimWorld::CheckQuiet() const {
  // After the liveness phase everything is finished: every transaction whose BEGIN is durable
  // has its END, and its participants agree with its outcome.
  std::set<std::string> begun;
  std::map<std::string, std::string> ended;  // gid → the outcome its END records
  for (const auto& record : durable_log_) {
    if (record.type == RecordType::kBegin) begun.insert(record.gid);
    if (record.type == RecordType::kEnd) ended[record.gid] = record.body;
  }
  for (const auto& record : unsynced_log_) {
    if (record.type == RecordType::kEnd) ended[record.gid] = record.body;
  }
  for (const auto& gid : begun) {
    if (!ended.contains(gid)) return "liveness: " + gid + " never finished";
  }
  if (core_->active() != 0) return "liveness: the engine still has active transactions";
  for (const auto& [gid, txn] : txns_) {
    std::optional<protocol::Outcome> outcome;
    if (begun.contains(gid)) {
      outcome = ended.at(gid) == protocol::OutcomeName(protocol::Outcome::kCommitted)
                    ? protocol::Outcome::kCommitted
                    : protocol::Outcome::kAborted;
    }
    if (std::string broken = model_->Check(gid, outcome); !broken.empty()) return broken;
    if (txn.client_told_committed && outcome != protocol::Outcome::kCommitted) {
      return "durability: " + gid + " was reported committed and is not";
    }
  }
  return "";
}

SwarmResult RunSwarm(const std::function<std::unique_ptr<ProtocolModel>()>& make_model,
                     WorldOptions options, uint64_t default_seeds) {
  auto env = [](const char* name) -> std::optional<uint64_t> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::strtoull(value, nullptr, 10);
  };
  const auto one = env("TXC_SIM_SEED");
  const uint64_t first = one.value_or(1);
  SwarmResult result;
  result.seeds = one ? 1 : env("TXC_SIM_SEEDS").value_or(default_seeds);
  for (uint64_t seed = first; seed < first + result.seeds; ++seed) {
    SimWorld world(seed, options, make_model());
    result.failure = world.Run();
    result.crashes += world.crashes();
    result.committed += world.committed();
    result.aborted += world.aborted();
    if (!result.failure.empty()) break;
  }
  return result;
}

std::string ReportSwarm(const SwarmResult& swarm, const char* name, const char* committed,
                        const char* aborted) {
  std::printf("%s simulation: %llu seeds, %d coordinator crashes, %d %s, %d %s\n", name,
              static_cast<unsigned long long>(swarm.seeds), swarm.crashes, swarm.committed,
              committed, swarm.aborted, aborted);
  if (swarm.seeds < 1000) return "";
  const auto seeds = static_cast<int>(swarm.seeds);
  if (swarm.crashes <= seeds) return "too few coordinator crashes";
  if (swarm.committed <= seeds / 4) return std::string("too few ") + committed;
  if (swarm.aborted <= seeds / 4) return std::string("too few ") + aborted;
  return "";
}

}  // namespace txc::sim
