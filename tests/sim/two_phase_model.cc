#include "tests/sim/two_phase_model.h"

#include "coordinator/protocol/two_phase_commit.h"

namespace txc::sim {

using participants::CallResult;
using participants::Op;

namespace {
constexpr uint32_t kBranchesMax = 4;
}  // namespace

void TwoPhaseModel::Plan(const std::string& gid, std::mt19937_64& random,
                         double refuse_probability) {
  const std::vector<bool> refuses = DrawVotes(random, kBranchesMax, refuse_probability);
  branches_[gid] = static_cast<uint32_t>(refuses.size());
  for (uint32_t b = 0; b < refuses.size(); ++b) participants_[{gid, b}].votes_no = refuses[b];
}

std::unique_ptr<protocol::TransactionMachine> TwoPhaseModel::NewMachine(const std::string& gid,
                                                                        int64_t deadline_ms) {
  return std::make_unique<protocol::TwoPhaseCommit>(branches_.at(gid), deadline_ms, vocabulary_);
}

Result<std::unique_ptr<protocol::TransactionMachine>> TwoPhaseModel::Recover(
    const std::string& gid, int64_t /*deadline_ms*/, const std::vector<log::LogRecord>& records) {
  auto machine = protocol::TwoPhaseCommit::Recover(branches_.at(gid), records, vocabulary_);
  if (!machine.ok()) return machine.status();
  return std::unique_ptr<protocol::TransactionMachine>(
      std::make_unique<protocol::TwoPhaseCommit>(std::move(machine).value()));
}

CallResult TwoPhaseModel::Deliver(const std::string& gid, uint32_t branch, Op op,
                                  std::vector<std::string>* violations) {
  Participant& p = participants_[{gid, branch}];
  if (op == vocabulary_.vote) {
    if (p.state == State::kNone) {
      if (p.votes_no) {
        p.state = State::kAborted;
        return CallResult::Refused("vote no");
      }
      p.state = State::kPrepared;
      return CallResult::Ok();
    }
    if (p.state == State::kAborted) return CallResult::Refused("already aborted");
    // Prepared, or a retransmitted prepare after the commit: answered as before.
    return CallResult::Ok();
  }
  if (op == vocabulary_.commit) {
    if (p.state == State::kPrepared || p.state == State::kCommitted) {
      p.state = State::kCommitted;
      return CallResult::Ok();
    }
    violations->push_back("commit of a branch that is not prepared at " + gid + "/" +
                          std::to_string(branch));
    return CallResult::Ok();
  }
  if (op == vocabulary_.abort) {
    if (p.state == State::kCommitted) {
      violations->push_back("abort of a committed branch at " + gid + "/" + std::to_string(branch));
      return CallResult::Ok();
    }
    // Aborting what never prepared records the abort, so a late prepare is refused (what a
    // database does once the session is gone, and what the barrier does for HTTP).
    p.state = State::kAborted;
    return CallResult::Ok();
  }
  return CallResult::Permanent(std::string("not an operation of this protocol: ") +
                               participants::OpName(op));
}

std::string TwoPhaseModel::Check(const std::string& gid,
                                 std::optional<protocol::Outcome> outcome) const {
  const uint32_t branches = branches_.at(gid);
  uint32_t committed = 0;
  for (uint32_t b = 0; b < branches; ++b) {
    const State state = participants_.at({gid, b}).state;
    if (state == State::kPrepared) {
      return "liveness: " + gid + "/" + std::to_string(b) + " left prepared";
    }
    if (state == State::kCommitted) ++committed;
  }
  if (committed != 0 && committed != branches) {
    return "atomicity: " + gid + " has " + std::to_string(committed) + " of " +
           std::to_string(branches) + " branches committed";
  }
  const bool should_commit = outcome == protocol::Outcome::kCommitted;
  if (should_commit != (committed == branches)) {
    return "agreement: " + gid + " ended " +
           (outcome ? protocol::OutcomeName(*outcome) : "without a durable BEGIN") + " with " +
           std::to_string(committed) + " of " + std::to_string(branches) + " branches committed";
  }
  return "";
}

}  // namespace txc::sim
