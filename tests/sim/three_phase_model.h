// The 3PC model for the simulator: participants that vote (or refuse), acknowledge pre_commit,
// commit and abort, the way the 3PC participant contract describes (without their own
// timeouts: the coordinator drives every transition here). Invariants: all branches end committed
// or all aborted; nothing commits without a pre-commit, nothing pre-commits without its vote;
// nothing is left voted or pre-committed.
#pragma once

#include <map>
#include <utility>

#include "tests/sim/protocol_model.h"

namespace txc::sim {

class ThreePhaseModel final : public ProtocolModel {
 public:
  void Plan(const std::string& gid, std::mt19937_64& random, double refuse_probability) override;
  std::unique_ptr<protocol::TransactionMachine> NewMachine(const std::string& gid,
                                                           int64_t deadline_ms) override;
  Result<std::unique_ptr<protocol::TransactionMachine>> Recover(
      const std::string& gid, int64_t deadline_ms,
      const std::vector<log::LogRecord>& records) override;
  participants::CallResult Deliver(const std::string& gid, uint32_t branch, participants::Op op,
                                   std::vector<std::string>* violations) override;
  std::string Check(const std::string& gid,
                    std::optional<protocol::Outcome> outcome) const override;

 private:
  enum class State { kNone, kVoted, kPrecommitted, kCommitted, kAborted };
  struct Participant {
    State state = State::kNone;
    bool votes_no = false;
  };
  std::map<std::string, uint32_t> branches_;
  std::map<std::pair<std::string, uint32_t>, Participant> participants_;
};

}  // namespace txc::sim
