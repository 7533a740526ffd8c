// EngineMetrics: the engine's observations (engine::EngineObserver) turned into the transaction
// and branch metrics that CoordinatorMetrics declares.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "coordinator/engine/engine.h"
#include "coordinator/metrics/coordinator_metrics.h"

namespace txc::metrics {

class EngineMetrics final : public engine::EngineObserver {
 public:
  explicit EngineMetrics(CoordinatorMetrics& metrics) : metrics_(metrics) {}

  void OnStarted(const std::string& protocol) override;
  void OnRecovered(const std::string& protocol) override;
  void OnStateChange(const std::string& protocol, const std::string& previous,
                     const std::string& state) override;
  void OnFinished(const std::string& protocol, const std::string& outcome, double seconds) override;
  void OnBranchCall(const std::string& protocol, participants::Op op,
                    participants::CallOutcome outcome, double seconds) override;
  void OnRetry(const std::string& protocol, participants::Op op) override;
  void OnStuckCount(const std::map<std::string, int64_t>& stuck_by_protocol) override;

  // The `result` label of txc_branch_calls_total: an unknown outcome is retried like a transient
  // one, so it is counted as one.
  static const char* ResultLabel(participants::CallOutcome outcome);

 private:
  static bool IsFinal(const std::string& state);
  CoordinatorMetrics& metrics_;
};

}  // namespace txc::metrics
