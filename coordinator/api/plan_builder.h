// PlanBuilder: turns a checked TransactionRequest into what the engine runs (a protocol state
// machine and one Participant per branch), and turns a BEGIN record back into the same plan after
// a restart. The BEGIN body is the request in canonical form with its creation time, so recovery
// needs nothing but the log and the configuration.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "coordinator/api/transaction_request.h"
#include "coordinator/common/status.h"
#include "coordinator/engine/engine.h"
#include "coordinator/log/decision_log.h"
#include "participants/database/database_resource.h"
#include "participants/http/http_client_pool.h"

namespace txc::api {

struct PlanResources {
  std::map<std::string, participants::database::DatabaseResource*> databases;  // by name
  participants::http::HttpClientPool* http_pool = nullptr;
};

class PlanBuilder {
 public:
  PlanBuilder(RequestContext context, PlanResources resources);

  const RequestContext& context() const { return context_; }

  // Parses and checks a submission (InvalidArgument naming the field).
  Result<TransactionRequest> Parse(const std::string& body) const;

  // The plan of a new transaction; `now_ms` is engine time (monotonic), for the deadline.
  // `trace_id`: the W3C trace-id its participant calls carry (32 lowercase hex digits), kept in
  // BEGIN so that calls after a restart carry it too.
  Result<engine::TransactionPlan> Build(const TransactionRequest& request, int64_t now_ms,
                                        int64_t now_unix_ms, const std::string& trace_id) const;

  // The plan of a transaction found unfinished in the log (records[0] is its BEGIN). `now_ms`
  // (engine time) and `now_unix_ms` place its original deadline in this process's time.
  Result<engine::TransactionPlan> Rebuild(const std::string& gid,
                                          const std::vector<log::LogRecord>& records,
                                          int64_t now_ms, int64_t now_unix_ms) const;

  // The BEGIN body for a request: {"created_unix_ms": ..., "trace_id": "...", "spec": <canonical
  // request>}.
  static std::string BeginBody(const TransactionRequest& request, int64_t created_unix_ms,
                               const std::string& trace_id);

 private:
  Result<engine::TransactionPlan> Assemble(const TransactionRequest& request,
                                           int64_t created_unix_ms,
                                           const std::string& trace_id) const;

  RequestContext context_;
  PlanResources resources_;
};

}  // namespace txc::api
