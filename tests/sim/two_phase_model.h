// The 2PC model for the simulator: participants that prepare (or vote no), commit and abort like
// a database does. Invariants: all branches of a transaction end committed or all aborted; no
// branch commits without having prepared; nothing is left prepared.
#pragma once

#include <map>
#include <utility>

#include "tests/sim/protocol_model.h"

namespace txc::sim {

class TwoPhaseModel final : public ProtocolModel {
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
  enum class State { kNone, kPrepared, kCommitted, kAborted };
  struct Participant {
    State state = State::kNone;
    bool votes_no = false;
  };
  std::map<std::string, uint32_t> branches_;
  std::map<std::pair<std::string, uint32_t>, Participant> participants_;
};

}  // namespace txc::sim
