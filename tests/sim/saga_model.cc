#include "tests/sim/saga_model.h"

#include "sagas/saga.h"

namespace txc::sim {

using participants::CallResult;
using participants::Op;

namespace {
constexpr uint32_t kStepsMax = 5;
constexpr double kRefuseCompensationProbability = 0.05;
}  // namespace

void SagaModel::Plan(const std::string& gid, std::mt19937_64& random, double refuse_probability) {
  auto chance = [&random](double p) {
    return std::uniform_real_distribution<double>(0, 1)(random) < p;
  };
  const uint32_t count = 1 + static_cast<uint32_t>(random() % kStepsMax);
  std::vector<std::vector<uint32_t>> after(count);
  for (uint32_t s = 1; s < count; ++s) {
    // Each earlier step is a dependency with probability 1/2: chains, fans and diamonds.
    for (uint32_t before = 0; before < s; ++before) {
      if (chance(0.5)) after[s].push_back(before);
    }
  }
  after_[gid] = after;
  for (uint32_t s = 0; s < count; ++s) {
    Step& step = steps_[{gid, s}];
    step.refuses = chance(refuse_probability / 2);  // several steps: keep most sagas succeeding
    step.compensation_refusals =
        chance(kRefuseCompensationProbability) ? 1 + static_cast<int>(random() % 2) : 0;
  }
}

std::unique_ptr<protocol::TransactionMachine> SagaModel::NewMachine(const std::string& gid,
                                                                    int64_t deadline_ms) {
  return std::make_unique<sagas::Saga>(sagas::SagaGraph::FromIndices(after_.at(gid)), deadline_ms);
}

Result<std::unique_ptr<protocol::TransactionMachine>> SagaModel::Recover(
    const std::string& gid, int64_t deadline_ms, const std::vector<log::LogRecord>& records) {
  auto machine =
      sagas::Saga::Recover(sagas::SagaGraph::FromIndices(after_.at(gid)), deadline_ms, records);
  if (!machine.ok()) return machine.status();
  return std::unique_ptr<protocol::TransactionMachine>(
      std::make_unique<sagas::Saga>(std::move(machine).value()));
}

CallResult SagaModel::Deliver(const std::string& gid, uint32_t branch, Op op,
                              std::vector<std::string>* violations) {
  Step& step = steps_[{gid, branch}];
  const auto& graph = after_.at(gid);
  const std::string where = gid + "/" + std::to_string(branch);
  if (op == Op::kAction) {
    switch (step.state) {
      case State::kNone:
        if (step.refuses) return CallResult::Refused("out of stock");
        for (uint32_t before : graph[branch]) {
          if (steps_.at({gid, before}).state != State::kApplied) {
            violations->push_back("order: the action of " + where + " took effect while step " +
                                  std::to_string(before) + " it waits for had not");
          }
        }
        step.state = State::kApplied;
        return CallResult::Ok();
      case State::kApplied:
        return CallResult::Ok();  // a duplicate: answered as before
      case State::kCompensated:
      case State::kBlocked:
        return CallResult::Refused("compensated already");
    }
  }
  if (op == Op::kCompensate) {
    if (step.compensation_refusals > 0) {
      --step.compensation_refusals;
      return CallResult::Refused("compensation refused (needs an operator)");
    }
    if (step.state == State::kApplied) {
      for (uint32_t later = 0; later < graph.size(); ++later) {
        for (uint32_t before : graph[later]) {
          if (before == branch && steps_.at({gid, later}).state == State::kApplied) {
            violations->push_back("order: " + where + " was compensated while step " +
                                  std::to_string(later) + " after it still held its effect");
          }
        }
      }
      step.state = State::kCompensated;
    } else if (step.state == State::kNone) {
      step.state = State::kBlocked;  // an empty compensation: the late action will be refused
    }
    return CallResult::Ok();
  }
  return CallResult::Permanent("not a saga operation");
}

std::string SagaModel::Check(const std::string& gid,
                             std::optional<protocol::Outcome> outcome) const {
  const size_t count = after_.at(gid).size();
  size_t applied = 0;
  for (uint32_t s = 0; s < count; ++s) {
    if (steps_.at({gid, s}).state == State::kApplied) ++applied;
  }
  if (outcome == protocol::Outcome::kCommitted && applied != count) {
    return "saga " + gid + " succeeded with " + std::to_string(applied) + " of " +
           std::to_string(count) + " steps in effect";
  }
  if (outcome != protocol::Outcome::kCommitted && applied != 0) {
    return "saga " + gid + " ended " +
           (outcome ? protocol::OutcomeName(*outcome) : "without a durable BEGIN") + " with " +
           std::to_string(applied) + " steps still in effect";
  }
  return "";
}

}  // namespace txc::sim
