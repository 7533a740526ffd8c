// The transaction routes of the HTTP API (API.md "Submit", "The transaction document", "Operate"):
//
//   POST /v1/transactions                 submit; 202 once BEGIN is durable, or 200 when final
//                                         (wait: true), 200 for an identical resubmission
//   GET  /v1/transactions/{gid}           the document, or 404
//   GET  /v1/transactions?state=&protocol=&stuck=&limit=&cursor=
//   POST /v1/transactions/{gid}/abort     before the decision only (409 after); optional
//                                         {"reason": "..."}, recorded with who
//   POST /v1/transactions/{gid}/retry     run the pending step now
//   POST /v1/transactions/{gid}/resolve   {"branch", "outcome", "reason"}: an operator settled a
//                                         branch by hand; recorded in the log and the history
//
// Errors: 400 naming the field, 404, 409 conflict, 503 with Retry-After when at the in-flight
// bound or when the log cannot take the transaction (counted in txc_requests_rejected_total).
#pragma once

#include <functional>
#include <string>

#include "coordinator/api/plan_builder.h"
#include "coordinator/engine/engine.h"
#include "coordinator/server/router.h"

namespace txc::api {

struct TransactionRoutesContext {
  engine::Engine* engine = nullptr;
  const PlanBuilder* plans = nullptr;
  // False until start-up recovery is done: submissions wait for it (503 not_ready).
  std::function<bool()> ready;
  // Counts a rejected request by reason ("in_flight_limit", "log_unavailable").
  std::function<void(const std::string& reason)> count_rejection;
  size_t list_limit_max = 1000;
};

void AddTransactionRoutes(server::Router& router, TransactionRoutesContext context);

}  // namespace txc::api
