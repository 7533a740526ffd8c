// Readiness: whether txcoord should be sent work (GET /readyz). Ready means recovery has finished
// (every unfinished transaction from the log has been taken over) and the decision log is healthy
// (nothing can be promised once a sync has failed). It stops being ready when shutdown begins, so
// load balancers drain it first.
#pragma once

#include <atomic>

#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"

namespace txc::server {

class Readiness {
 public:
  // `log` must outlive this object; null while no log is open (never ready).
  explicit Readiness(const log::DecisionLog* log) : log_(log) {}

  // Called once start-up recovery is done; until then Check() answers "recovering".
  void MarkRecoveryFinished() { recovery_finished_.store(true); }
  // Called when shutdown begins; from then on Check() answers "shutting down".
  void MarkDraining() { draining_.store(true); }

  // OK when ready, else Unavailable with the reason in words.
  Status Check() const;

 private:
  const log::DecisionLog* log_;
  std::atomic<bool> recovery_finished_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace txc::server
