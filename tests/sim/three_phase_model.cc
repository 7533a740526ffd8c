#include "tests/sim/three_phase_model.h"

#include "coordinator/protocol/three_phase_commit.h"

namespace txc::sim {

using participants::CallResult;
using participants::Op;

namespace {
constexpr uint32_t kBranchesMax = 4;
}  // namespace

void ThreePhaseModel::Plan(const std::string& gid, std::mt19937_64& random,
                           double refuse_probability) {
  const std::vector<bool> refuses = DrawVotes(random, kBranchesMax, refuse_probability);
  branches_[gid] = static_cast<uint32_t>(refuses.size());
  for (uint32_t b = 0; b < refuses.size(); ++b) participants_[{gid, b}].votes_no = refuses[b];
}

std::unique_ptr<protocol::TransactionMachine> ThreePhaseModel::NewMachine(const std::string& gid,
                                                                          int64_t deadline_ms) {
  return std::make_unique<protocol::ThreePhaseCommit>(branches_.at(gid), deadline_ms);
}

Result<std::unique_ptr<protocol::TransactionMachine>> ThreePhaseModel::Recover(
    const std::string& gid, int64_t /*deadline_ms*/, const std::vector<log::LogRecord>& records) {
  auto machine = protocol::ThreePhaseCommit::Recover(branches_.at(gid), records);
  if (!machine.ok()) return machine.status();
  return std::unique_ptr<protocol::TransactionMachine>(
      std::make_unique<protocol::ThreePhaseCommit>(std::move(machine).value()));
}

CallResult ThreePhaseModel::Deliver(const std::string& gid, uint32_t branch, Op op,
                                    std::vector<std::string>* violations) {
  Participant& p = participants_[{gid, branch}];
  const std::string where = gid + "/" + std::to_string(branch);
  switch (op) {
    case Op::kCanCommit:
      if (p.state == State::kNone) {
        if (p.votes_no) {
          p.state = State::kAborted;
          return CallResult::Refused("vote no");
        }
        p.state = State::kVoted;
        return CallResult::Ok();
      }
      if (p.state == State::kAborted) return CallResult::Refused("already aborted");
      return CallResult::Ok();  // a retransmission, answered as before
    case Op::kPreCommit:
      if (p.state == State::kVoted || p.state == State::kPrecommitted ||
          p.state == State::kCommitted) {
        if (p.state == State::kVoted) p.state = State::kPrecommitted;
        return CallResult::Ok();
      }
      violations->push_back("pre_commit of a branch that did not vote yes at " + where);
      return CallResult::Refused("not voted");
    case Op::kDoCommit:
      if (p.state == State::kPrecommitted || p.state == State::kCommitted) {
        p.state = State::kCommitted;
        return CallResult::Ok();
      }
      violations->push_back("do_commit of a branch that is not pre-committed at " + where);
      return CallResult::Ok();
    case Op::kAbort:
      if (p.state == State::kPrecommitted || p.state == State::kCommitted) {
        violations->push_back("abort of a pre-committed or committed branch at " + where);
        return CallResult::Ok();
      }
      p.state = State::kAborted;  // a late can_commit is refused from now on
      return CallResult::Ok();
    default:
      return CallResult::Permanent(std::string("not a 3pc operation: ") + participants::OpName(op));
  }
}

std::string ThreePhaseModel::Check(const std::string& gid,
                                   std::optional<protocol::Outcome> outcome) const {
  const uint32_t branches = branches_.at(gid);
  uint32_t committed = 0;
  for (uint32_t b = 0; b < branches; ++b) {
    const State state = participants_.at({gid, b}).state;
    if (state == State::kVoted || state == State::kPrecommitted) {
      return "liveness: " + gid + "/" + std::to_string(b) + " left voted or pre-committed";
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
           std::to_string(committed) + " of " + std::to_string(branches) + " committed";
  }
  return "";
}

}  // namespace txc::sim
