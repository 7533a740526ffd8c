// A seeded, deterministic world for 2PC: the real EngineCore and TwoPhaseCommit, with a simulated
// decision log, participants, network and clock. One seed fixes every choice: which messages are
// lost, duplicated or late, when the coordinator crashes, how participants vote. A failure names
// its seed, and running that seed again replays it exactly.
//
// Faults: coordinator crashes (in-memory state and unsynced lazy records lost, then recovery from
// the durable log), lost requests and replies (the call times out: outcome unknown), transient
// participant errors, duplicated deliveries, participants that vote no, deadlines that pass.
// Invariants (DESIGN.md): all branches of a transaction end committed or all aborted; no branch
// commits without having prepared; no transaction a client was told is committed is lost;
// nothing is left prepared once the world is quiet.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "coordinator/engine/engine_core.h"
#include "coordinator/protocol/two_phase_commit.h"

namespace txc::sim {

struct WorldOptions {
  int transactions = 3;
  int branches_max = 4;
  int fault_steps = 400;  // events processed with faults on; then the liveness phase
  int liveness_steps_max = 20'000;
  double crash_probability = 0.03;  // per event, during the fault phase
  double drop_probability = 0.05;   // request or reply lost
  double transient_probability = 0.05;
  double duplicate_probability = 0.03;
  double vote_no_probability = 0.1;  // per branch
};

class TwoPhaseWorld final : public engine::EngineEnvironment {
 public:
  TwoPhaseWorld(uint64_t seed, WorldOptions options);
  ~TwoPhaseWorld() override;

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
  enum class ParticipantState { kNone, kPrepared, kCommitted, kAborted };
  struct Participant {
    ParticipantState state = ParticipantState::kNone;
    bool votes_no = false;
    bool committed_without_prepare = false;
  };
  struct TxnInfo {
    uint32_t branches = 0;
    int64_t deadline_ms = 0;
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
  std::string CheckSafety() const;
  std::string CheckQuiet() const;

  uint64_t seed_;
  WorldOptions options_;
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
  std::map<std::pair<std::string, uint32_t>, Participant> participants_;
  std::vector<std::string> violations_;
  std::vector<std::string> trace_;
  int crashes_ = 0;
  int committed_ = 0;
  int aborted_ = 0;
};

}  // namespace txc::sim
