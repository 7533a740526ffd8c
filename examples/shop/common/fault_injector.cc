#include "examples/shop/common/fault_injector.h"

#include "examples/shop/common/json_fields.h"

namespace txc::shop {

Status FaultInjector::Configure(const Poco::JSON::Object& request) {
  for (const auto& [name, value] : request) {
    if (name != "fail_next" && name != "status" && name != "after_commit" && name != "delay_ms") {
      return Status::InvalidArgument(name +
                                     ": unknown (fail_next, status, after_commit, delay_ms)");
    }
  }
  std::lock_guard lock(mutex_);
  Plan next = plan_;
  if (request.has("fail_next")) {
    Result<int64_t> fail_next = RequireInteger(request, "fail_next", 0, kFailNextMax);
    if (!fail_next.ok()) return fail_next.status();
    next.fail_next = *fail_next;
  }
  if (request.has("status")) {
    // Only failures: a fault that answers 2xx would claim work that was never done.
    Result<int64_t> status = RequireInteger(request, "status", 400, 599);
    if (!status.ok()) return status.status();
    next.status = static_cast<int>(*status);
  }
  if (request.has("after_commit")) {
    const Poco::Dynamic::Var value = request.get("after_commit");
    if (!value.isBoolean()) return Status::InvalidArgument("after_commit: must be true or false");
    next.after_commit = value.extract<bool>();
  }
  if (request.has("delay_ms")) {
    Result<int64_t> delay_ms = RequireInteger(request, "delay_ms", 0, kDelayMsMax);
    if (!delay_ms.ok()) return delay_ms.status();
    next.delay_ms = *delay_ms;
  }
  plan_ = next;
  return Status::Ok();
}

void FaultInjector::Clear() {
  std::lock_guard lock(mutex_);
  plan_ = Plan{};
}

FaultInjector::Plan FaultInjector::plan() const {
  std::lock_guard lock(mutex_);
  return plan_;
}

uint64_t FaultInjector::injected_total() const {
  std::lock_guard lock(mutex_);
  return injected_total_;
}

FaultInjector::Fault FaultInjector::Take() {
  std::lock_guard lock(mutex_);
  Fault fault;
  fault.delay = std::chrono::milliseconds(plan_.delay_ms);
  if (plan_.fail_next > 0) {
    --plan_.fail_next;
    ++injected_total_;
    if (plan_.after_commit) {
      fault.fail_after = plan_.status;
    } else {
      fault.fail_before = plan_.status;
    }
  }
  return fault;
}

namespace {

server::Response PlanResponse(const FaultInjector& faults) {
  const FaultInjector::Plan plan = faults.plan();
  Poco::JSON::Object::Ptr body = server::NewJsonObject();
  body->set("fail_next", plan.fail_next);
  body->set("status", plan.status);
  body->set("after_commit", plan.after_commit);
  body->set("delay_ms", plan.delay_ms);
  body->set("injected_total", faults.injected_total());
  return server::JsonResponse(200, *body);
}

}  // namespace

void AddFaultRoutes(server::Router& router, FaultInjector* faults) {
  router.Add("GET", "/faults", [faults](const server::Request&) { return PlanResponse(*faults); });
  router.Add("DELETE", "/faults", [faults](const server::Request&) {
    faults->Clear();
    return PlanResponse(*faults);
  });
  router.Add("POST", "/faults", [faults](const server::Request& request) {
    Result<Poco::JSON::Object::Ptr> body = ParseJsonObject(request.body);
    if (!body.ok()) return BadRequest(body.status());
    if (Status configured = faults->Configure(**body); !configured.ok()) {
      return BadRequest(configured);
    }
    return PlanResponse(*faults);
  });
}

}  // namespace txc::shop
