#include "coordinator/server/readiness.h"

namespace txc::server {

Status Readiness::Check() const {
  if (draining_.load()) return Status::Unavailable("shutting down: no new work is accepted");
  if (log_ == nullptr) return Status::Unavailable("the decision log is not open");
  if (!recovery_finished_.load()) {
    return Status::Unavailable(
        "recovering: unfinished transactions from the decision log are "
        "being taken over");
  }
  if (!log_->Healthy()) {
    return Status::Unavailable("the decision log is unhealthy: " + log_->Health().ToString());
  }
  return Status::Ok();
}

}  // namespace txc::server
