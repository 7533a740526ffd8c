// A seeded, deterministic world for any protocol: the real EngineCore and the protocol's state
// machine, with a simulated decision log, network and clock, and participants modelled by a
// ProtocolModel (protocol_model.h). One seed fixes every choice: which messages are lost,
// duplicated or late, when the coordinator crashes, how participants answer. A failure names its
// seed, and running that seed again replays it exactly.
//
// Faults: coordinator crashes (in-memory state and unsynced lazy records lost, then recovery from
// the durable log), lost requests and replies (the call times out: outcome unknown), requests
// delivered after their timeout, transient participant errors, duplicated deliveries, refusals,
// deadlines that pass. Invariants: the world checks that no transaction a client was told is
// committed ends otherwise and that everything begun finishes; the model checks what the
// participants hold (DESIGN.md's invariants for its protocol).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "coordinator/engine/engine_core.h"
#include "tests/sim/protocol_model.h"

namespace txc::sim {

struct WorldOptions {
  int transactions = 3;
  int fault_steps = 400;  // events processed with faults on; then the liveness phase
  int liveness_steps_max = 20'000;
  double crash_probability = 0.03;  // per event, during the fault phase
  double drop_probability = 0.05;   // request or reply lost
  double transient_probability = 0.05;
  double duplicate_probability = 0.03;
  double refuse_probability = 0.1;  // per branch: votes no, refuses its action or try
};

// No crashes, losses, transient errors, duplicates or refusals: every transaction must commit.
inline WorldOptions CalmWorld() {
  WorldOptions calm;
  calm.crash_probability = 0;
  calm.drop_probability = 0;
  calm.transient_probability = 0;
  calm.duplicate_probability = 0;
  calm.refuse_probability = 0;
  return calm;
}

class SimWorld final : public engine::EngineEnvironment {
 public:
  SimWorld(uint64_t seed, WorldOptions options, std::unique_ptr<ProtocolModel> model);
  ~SimWorld() override;

  // Runs the whole scenario; returns "" when every invariant held, else what broke.
  std::string Run();

  // What happened, for tests that check more than the invariants.
  int crashes() const { return crashes_; }
  int committed() const { return committed_; }
  int aborted() const { return aborted_; }
  const std::vector<std::string>& trace() const { return trace_; }

  // engine::EngineEnvironment
  void Append(const std::string& gid, log::LogRecord record, log::Durability durability,
              uint64_t append_id) override;
  void Call(const std::string& gid, uint32_t branch, participants::Op op) override;
  void SetTimer(const std::string& gid, int64_t at_ms, engine::TimerKind kind, uint32_t branch,
                uint64_t token) override;
  int64_t NowMs() override { return now_ms_; }
  uint64_t Random() override { return random_(); }
  std::string EndBody(const std::string& gid) override;
  void Finished(const std::string& gid, protocol::Outcome outcome) override;
  void Stalled(const std::string& gid, const Status& why) override;

 private:
  struct TxnInfo {
    int64_t timeout_ms = 0;
    int64_t deadline_ms = 0;  // set at submission: it holds across restarts
    bool client_told_committed = false;
    bool finished_in_this_life = false;
  };
  struct Event {
    int64_t at_ms;
    uint64_t order;  // random tie-break: equal times happen in a seeded order
    uint64_t epoch;  // events for the coordinator die with it (0: the participants' side)
    std::function<void()> action;
    bool operator>(const Event& other) const {
      return at_ms != other.at_ms ? at_ms > other.at_ms : order > other.order;
    }
  };

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(random_) < p; }
  int64_t Latency() { return 1 + static_cast<int64_t>(random_() % 20); }
  void Schedule(int64_t delay_ms, bool to_coordinator, std::function<void()> action);
  void Crash();
  void Recover();
  participants::CallResult Deliver(const std::string& gid, uint32_t branch, participants::Op op);
  std::string CheckQuiet() const;

  uint64_t seed_;
  WorldOptions options_;
  std::unique_ptr<ProtocolModel> model_;
  std::mt19937_64 random_;
  int64_t now_ms_ = 0;
  bool faults_ = true;
  uint64_t epoch_ = 1;
  uint64_t order_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::unique_ptr<engine::EngineCore> core_;

  std::vector<log::LogRecord> durable_log_;
  std::vector<log::LogRecord> unsynced_log_;
  std::map<std::string, TxnInfo> txns_;
  std::vector<std::string> violations_;
  std::vector<std::string> trace_;
  int crashes_ = 0;
  int committed_ = 0;
  int aborted_ = 0;
};

// Many worlds, one per seed: TXC_SIM_SEEDS seeds from 1 (default `default_seeds`), or just
// TXC_SIM_SEED. Stops at the first broken world; `failure` then says which and how to replay it.
struct SwarmResult {
  uint64_t seeds = 0;
  std::string failure;
  int crashes = 0;
  int committed = 0;
  int aborted = 0;
};
SwarmResult RunSwarm(const std::function<std::unique_ptr<ProtocolModel>()>& make_model,
                     WorldOptions options, uint64_t default_seeds);

// Prints what a swarm did (`name`: the protocol; `committed`/`aborted`: its words for the two
// outcomes) and, for a swarm of 1,000 seeds or more, "" when its faults were really exercised
// (more crashes than seeds, both outcomes in at least a quarter of the seeds' numbers), or what
// was not: a run that exercised nothing proves nothing.
std::string ReportSwarm(const SwarmResult& swarm, const char* name, const char* committed,
                        const char* aborted);

}  // namespace txc::sim
