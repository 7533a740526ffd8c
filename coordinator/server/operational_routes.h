// The routes every txcoord serves regardless of protocol engines: liveness, readiness, build and
// identity information, and Prometheus metrics (API.md "Operate").
//
//   GET /healthz   200 {"status":"ok"} while the process serves HTTP at all
//   GET /readyz    200 {"status":"ready"}, or 503 not_ready with the reason (Readiness)
//   GET /v1/info   {"version", "node_id", "log": {"kind"}}
//   GET /metrics   the Prometheus text format, version 0.0.4
#pragma once

#include <functional>
#include <string>

#include "coordinator/log/decision_log.h"
#include "coordinator/metrics/coordinator_metrics.h"
#include "coordinator/server/readiness.h"
#include "coordinator/server/router.h"

namespace txc::server {

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

struct OperationalContext {
  std::string node_id;
  const log::DecisionLog* log = nullptr;           // for /v1/info; outlives the router
  const Readiness* readiness = nullptr;            // outlives the router
  metrics::CoordinatorMetrics* metrics = nullptr;  // outlives the router
  // Runs before each scrape, to fold in counts kept elsewhere (the HTTP server's refusals).
  std::function<void()> before_scrape;
};

void AddOperationalRoutes(Router& router, OperationalContext context);

}  // namespace txc::server
