// ProtocolModel: what the simulator (sim_world.h) needs to know of one protocol: how to make and
// recover its state machine, how its participants answer each operation, and which invariants
// their final state must satisfy. The world supplies the faults; the model is a deterministic
// participant that keeps the state a real one would (a database, a service with the barrier).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/protocol/transaction_machine.h"
#include "participants/participant.h"

namespace txc::sim {

class ProtocolModel {
 public:
  virtual ~ProtocolModel() = default;

  // A new transaction `gid`: its shape and its participants' behaviour, drawn from `random`.
  // `refuse_probability`: per branch, the chance that it refuses (votes no, refuses its action).
  virtual void Plan(const std::string& gid, std::mt19937_64& random, double refuse_probability) = 0;
  virtual std::unique_ptr<protocol::TransactionMachine> NewMachine(const std::string& gid,
                                                                   int64_t deadline_ms) = 0;
  virtual Result<std::unique_ptr<protocol::TransactionMachine>> Recover(
      const std::string& gid, int64_t deadline_ms, const std::vector<log::LogRecord>& records) = 0;

  // A request reaches branch `branch` of `gid` (the world has already decided it is delivered
  // and not answered with a transient error). A broken invariant is appended to *violations.
  virtual participants::CallResult Deliver(const std::string& gid, uint32_t branch,
                                           participants::Op op,
                                           std::vector<std::string>* violations) = 0;

  // At the end of a run: "" when what the participants of `gid` hold agrees with `outcome` (the
  // transaction's final outcome, nullopt when its BEGIN never became durable: then nothing may
  // have been touched), or what is wrong.
  virtual std::string Check(const std::string& gid,
                            std::optional<protocol::Outcome> outcome) const = 0;
};

// For the models whose branches vote: 1 to `max_branches` branches, each refusing with
// probability `refuse_probability` (true: it votes no).
inline std::vector<bool> DrawVotes(std::mt19937_64& random, uint32_t max_branches,
                                   double refuse_probability) {
  std::vector<bool> refuses(1 + static_cast<uint32_t>(random() % max_branches));
  for (size_t b = 0; b < refuses.size(); ++b) {
    refuses[b] = std::uniform_real_distribution<double>(0, 1)(random) < refuse_probability;
  }
  return refuses;
}

}  // namespace txc::sim
