#include "coordinator/metrics/engine_metrics.h"

namespace txc::metrics {

const char* EngineMetrics::ResultLabel(participants::CallOutcome outcome) {
  switch (outcome) {
    case participants::CallOutcome::kOk:
      return "ok";
    case participants::CallOutcome::kRefused:
      return "refused";
    case participants::CallOutcome::kTransient:
    case participants::CallOutcome::kUnknown:
      return "transient";
    case participants::CallOutcome::kPermanent:
      return "permanent";
  }
  return "transient";
}

bool EngineMetrics::IsFinal(const std::string& state) {
  return state == "committed" || state == "aborted" || state == "confirmed" ||
         state == "cancelled" || state == "succeeded" || state == "compensated";
}

void EngineMetrics::OnStarted(const std::string& protocol) {
  metrics_.transactions_started().Add({{"protocol", protocol}}).Increment();
}

void EngineMetrics::OnRecovered(const std::string& protocol) {
  metrics_.recovered_transactions().Add({{"protocol", protocol}}).Increment();
}

void EngineMetrics::OnStateChange(const std::string& protocol, const std::string& previous,
                                  const std::string& state) {
  if (!previous.empty() && !IsFinal(previous)) {
    metrics_.transactions_in_flight()
        .Add({{"protocol", protocol}, {"state", previous}})
        .Decrement();
  }
  if (!IsFinal(state)) {
    metrics_.transactions_in_flight().Add({{"protocol", protocol}, {"state", state}}).Increment();
  }
}

void EngineMetrics::OnFinished(const std::string& protocol, const std::string& outcome,
                               double seconds) {
  metrics_.transactions_finished().Add({{"protocol", protocol}, {"outcome", outcome}}).Increment();
  metrics_.transaction_duration()
      .Add({{"protocol", protocol}, {"outcome", outcome}},
           CoordinatorMetrics::TransactionDurationBuckets())
      .Observe(seconds);
}

void EngineMetrics::OnBranchCall(const std::string& protocol, participants::Op op,
                                 participants::CallOutcome outcome, double seconds) {
  metrics_.branch_calls()
      .Add({{"protocol", protocol},
            {"op", participants::OpName(op)},
            {"result", ResultLabel(outcome)}})
      .Increment();
  metrics_.branch_call_duration()
      .Add({{"op", participants::OpName(op)}}, CoordinatorMetrics::BranchCallDurationBuckets())
      .Observe(seconds);
}

void EngineMetrics::OnRetry(const std::string& protocol, participants::Op op) {
  metrics_.retries().Add({{"protocol", protocol}, {"op", participants::OpName(op)}}).Increment();
}

void EngineMetrics::OnStuckCount(const std::map<std::string, int64_t>& stuck_by_protocol) {
  for (const auto& protocol : MetricLabelValues::Protocols()) {
    auto it = stuck_by_protocol.find(protocol);
    metrics_.transactions_stuck()
        .Add({{"protocol", protocol}})
        .Set(static_cast<double>(it == stuck_by_protocol.end() ? 0 : it->second));
  }
}

}  // namespace txc::metrics
