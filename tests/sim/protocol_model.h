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

}  // namespace txc::sim
