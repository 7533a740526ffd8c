// The part every saga and TCC endpoint of the shop shares, wrapped around its own handler:
//
//   1. the barrier key from the Txc-Gid, Txc-Branch and Txc-Op headers (400 invalid_header naming
//      the header when one is missing or malformed, or when Txc-Op is not the endpoint's op);
//   2. the body, which must be a JSON object (400 invalid_request);
//   3. the fault hooks (fault_injector.h): a delay, or a failure before or after the handler;
//   4. the handler, which opens the transaction and enters the barrier (postgres_database.h,
//      mysql_database.h);
//   5. one log line per call: route, gid, branch, op, status, milliseconds.
#pragma once

#include <Poco/JSON/Object.h>

#include <functional>

#include "coordinator/server/router.h"
#include "coordinator/server/structured_logger.h"
#include "examples/shop/common/fault_injector.h"
#include "tcc/barrier/barrier.h"

namespace txc::shop {

struct BusinessCall {
  barrier::BarrierKey key;
  Poco::JSON::Object::Ptr body;  // never null
};

using BusinessHandler = std::function<server::Response(const BusinessCall&)>;

// What the wrapper needs from the service; all outlive the routes.
struct BusinessContext {
  FaultInjector* faults = nullptr;
  server::StructuredLogger* logger = nullptr;
};

// A route handler that accepts only calls whose Txc-Op is `op`.
server::Handler BusinessRoute(const BusinessContext& context, barrier::BarrierOp op,
                              BusinessHandler handler);

}  // namespace txc::shop
