// The two-phase model for the simulator, for 2PC and for TCC (the same machine with TCC's words):
// participants that prepare/try (or refuse), commit/confirm and abort/cancel like a database or
// a service with the barrier does (an abort/cancel of what never prepared is recorded, and the
// late prepare/try refused). Invariants: all branches of a transaction end committed or all
// aborted; no branch commits without having prepared; nothing is left prepared (no reservation
// is left frozen).
#pragma once

#include <map>
#include <utility>

#include "coordinator/protocol/two_phase_commit.h"
#include "tests/sim/protocol_model.h"

namespace txc::sim {

class TwoPhaseModel final : public ProtocolModel {
 public:
  explicit TwoPhaseModel(
      const protocol::TwoPhaseVocabulary& vocabulary = protocol::TwoPhaseCommitVocabulary())
      : vocabulary_(vocabulary) {}

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
  const protocol::TwoPhaseVocabulary& vocabulary_;
  std::map<std::string, uint32_t> branches_;
  std::map<std::pair<std::string, uint32_t>, Participant> participants_;
};

}  // namespace txc::sim
