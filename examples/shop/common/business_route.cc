#include "examples/shop/common/business_route.h"

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "coordinator/common/check.h"
#include "examples/shop/common/json_fields.h"

namespace txc::shop {
namespace {

std::string HeaderOrEmpty(const server::Request& request, std::string_view name) {
  const std::string* value = request.Header(name);
  return value == nullptr ? std::string() : *value;
}

server::Response InjectedFault(int status, std::string_view when) {
  return server::ErrorResponse(status, "injected_fault",
                               "failed on purpose by POST /faults (" + std::string(when) + ")");
}

server::Response Serve(const BusinessContext& context, barrier::BarrierOp op,
                       const BusinessHandler& handler, const server::Request& request,
                       BusinessCall* call) {
  Result<barrier::BarrierKey> key = barrier::ParseBarrierKey(HeaderOrEmpty(request, "Txc-Gid"),
                                                             HeaderOrEmpty(request, "Txc-Branch"),
                                                             HeaderOrEmpty(request, "Txc-Op"));
  if (!key.ok()) return server::ErrorResponse(400, "invalid_header", key.status().message());
  call->key = std::move(key).value();
  if (call->key.op != op) {
    return server::ErrorResponse(400, "invalid_header",
                                 "Txc-Op: " + request.path + " takes \"" +
                                     barrier::BarrierOpName(op) + "\", not \"" +
                                     barrier::BarrierOpName(call->key.op) + "\"");
  }
  Result<Poco::JSON::Object::Ptr> body = ParseJsonObject(request.body);
  if (!body.ok()) return BadRequest(body.status());
  call->body = std::move(body).value();

  const FaultInjector::Fault fault = context.faults->Take();
  if (fault.delay.count() > 0) std::this_thread::sleep_for(fault.delay);
  if (fault.fail_before.has_value()) return InjectedFault(*fault.fail_before, "before the work");
  server::Response response = handler(*call);
  if (fault.fail_after.has_value()) return InjectedFault(*fault.fail_after, "after the work");
  return response;
}

}  // namespace

server::Handler BusinessRoute(const BusinessContext& context, barrier::BarrierOp op,
                              BusinessHandler handler) {
  TXC_CHECK(context.faults != nullptr && context.logger != nullptr,
            "a business route needs its fault hooks and a logger");
  return [context, op, handler = std::move(handler)](const server::Request& request) {
    const auto started = std::chrono::steady_clock::now();
    BusinessCall call;
    server::Response response = Serve(context, op, handler, request, &call);
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
    context.logger->Log(response.status < 500 ? server::LogLevel::kInfo : server::LogLevel::kWarn,
                        "business_call",
                        {{"route", request.path},
                         {"gid", call.key.gid},
                         {"branch", call.key.branch},
                         {"op", barrier::BarrierOpName(op)},
                         {"status", std::to_string(response.status)},
                         {"ms", std::to_string(elapsed_ms)}});
    return response;
  };
}

}  // namespace txc::shop
