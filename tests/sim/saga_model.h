// The saga model for the simulator: step services with the barrier's behaviour (an action after
// its compensation is refused; a compensation without its action is recorded and does nothing),
// some of which refuse their action (409) or refuse their compensation a few times (which needs
// an operator, and is retried slowly). Step graphs are random DAGs.
//
// Invariants: an action takes effect only while every step it waits for has taken effect; a
// step is compensated only while no step after it still holds its effect; a succeeded saga has
// every step's effect in place; a compensated one has none left.
#pragma once

#include <map>
#include <utility>

#include "sagas/saga_graph.h"
#include "tests/sim/protocol_model.h"

namespace txc::sim {

class SagaModel final : public ProtocolModel {
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
  enum class State { kNone, kApplied, kCompensated, kBlocked };
  struct Step {
    State state = State::kNone;
    bool refuses = false;
    int compensation_refusals = 0;  // how many compensations it refuses before it accepts one
  };
  std::map<std::string, std::vector<std::vector<uint32_t>>> after_;
  std::map<std::pair<std::string, uint32_t>, Step> steps_;
};

}  // namespace txc::sim
