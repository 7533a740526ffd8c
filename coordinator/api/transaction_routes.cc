#include "coordinator/api/transaction_routes.h"

#include <charconv>
#include <cstdio>
#include <random>

#include "coordinator/api/operator_request.h"
#include "coordinator/common/check.h"
#include "coordinator/server/http_message.h"

namespace txc::api {
namespace {

using server::ErrorResponse;
using server::Request;
using server::Response;

Response DocumentResponse(int status, const engine::TransactionDocument& document,
                          const engine::Engine& engine) {
  Response response;
  response.status = status;
  response.body = engine::DocumentToJson(document, engine.NowUnixMs(), engine.stuck_after_ms());
  return response;
}

Response Overloaded(const std::string& message) {
  Response response = ErrorResponse(503, "overloaded", message);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

Response ErrorFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return ErrorResponse(400, "invalid_request", status.message());
    case StatusCode::kNotFound:
      return ErrorResponse(404, "not_found", status.message());
    case StatusCode::kAlreadyExists:
      return ErrorResponse(409, "conflict", status.message());
    case StatusCode::kFailedPrecondition:
      return ErrorResponse(409, "conflict", status.message());
    case StatusCode::kResourceExhausted:
      return Overloaded(status.message());
    case StatusCode::kUnavailable: {
      Response response = ErrorResponse(503, "unavailable", status.message());
      response.headers.emplace_back("Retry-After", "1");
      return response;
    }
    default:
      return ErrorResponse(500, "internal", status.message());
  }
}

// The trace-id of the submitter's `traceparent` (W3C: 00-<32 hex>-<16 hex>-<2 hex>, trace-id
// not all zeros), so the participants' calls join its trace; otherwise a new random one.
std::string TraceIdOf(const Request& request) {
  if (const std::string* header = request.Header("traceparent")) {
    const std::string& t = *header;
    auto hex = [&t](size_t from, size_t count) {
      for (size_t i = from; i < from + count; ++i) {
        const char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
      }
      return true;
    };
    if (t.size() == 55 && t.compare(0, 3, "00-") == 0 && t[35] == '-' && t[52] == '-' &&
        hex(3, 32) && hex(36, 16) && hex(53, 2) && t.compare(3, 32, std::string(32, '0')) != 0) {
      return t.substr(3, 32);
    }
  }
  thread_local std::mt19937_64 random(std::random_device{}());
  char id[33];
  std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return id;
}

Response Submit(const TransactionRoutesContext& c, const Request& request) {
  if (c.ready && !c.ready()) {
    Response response = ErrorResponse(503, "not_ready", "txcoord is still recovering; try again");
    response.headers.emplace_back("Retry-After", "1");
    return response;
  }
  auto parsed = c.plans->Parse(request.body);
  if (!parsed.ok()) return ErrorFor(parsed.status());
  const TransactionRequest& spec = *parsed;
  engine::Engine& engine = *c.engine;
  auto plan = c.plans->Build(spec, engine.MonotonicMs(), engine.NowUnixMs(), TraceIdOf(request));
  if (!plan.ok()) return ErrorFor(plan.status());
  auto submitted = engine.Submit(std::move(plan).value());
  if (!submitted.ok()) {
    if (c.count_rejection) {
      if (submitted.status().code() == StatusCode::kResourceExhausted) {
        c.count_rejection("in_flight_limit");
      } else if (submitted.status().code() == StatusCode::kUnavailable) {
        c.count_rejection("log_unavailable");
      }
    }
    return ErrorFor(submitted.status());
  }
  if (submitted->submitted == engine::Engine::Submitted::kExisting) {
    return DocumentResponse(200, submitted->document, engine);
  }
  if (!spec.wait) return DocumentResponse(202, submitted->document, engine);
  auto final_document = engine.Wait(spec.gid, spec.timeout_ms);
  if (!final_document.ok()) return ErrorFor(final_document.status());
  return DocumentResponse(200, *final_document, engine);
}

Response List(const TransactionRoutesContext& c, const Request& request) {
  engine::ListFilter filter;
  auto query = [&](const char* name) -> const std::string* {
    auto it = request.query.find(name);
    return it == request.query.end() ? nullptr : &it->second;
  };
  if (const auto* state = query("state")) filter.state = *state;
  if (const auto* protocol = query("protocol")) filter.protocol = *protocol;
  if (const auto* stuck = query("stuck")) {
    if (*stuck != "true" && *stuck != "false") {
      return ErrorResponse(400, "invalid_request", "stuck: must be true or false");
    }
    filter.stuck_only = *stuck == "true";
  }
  if (const auto* limit = query("limit")) {
    size_t value = 0;
    const auto parsed = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (parsed.ec != std::errc() || parsed.ptr != limit->data() + limit->size() || value == 0 ||
        value > c.list_limit_max) {
      return ErrorResponse(
          400, "invalid_request",
          "limit: must be an integer from 1 to " + std::to_string(c.list_limit_max));
    }
    filter.limit = value;
  }
  if (const auto* cursor = query("cursor")) filter.after_gid = *cursor;
  std::optional<std::string> next;
  const auto page = c.engine->List(filter, &next);
  std::string body = "{\"transactions\":[";
  for (size_t i = 0; i < page.size(); ++i) {
    if (i > 0) body += ",";
    body += engine::DocumentToJson(page[i], c.engine->NowUnixMs(), c.engine->stuck_after_ms());
  }
  body += "],\"next_cursor\":";
  body += next ? "\"" + *next + "\"" : "null";  // gids hold no characters JSON must escape
  body += "}";
  Response response;
  response.body = std::move(body);
  return response;
}

}  // namespace

void AddTransactionRoutes(server::Router& router, TransactionRoutesContext context) {
  TXC_CHECK(context.engine != nullptr && context.plans != nullptr, "routes need an engine");
  router.Add("POST", "/v1/transactions",
             [context](const Request& request) { return Submit(context, request); });
  router.Add("GET", "/v1/transactions",
             [context](const Request& request) { return List(context, request); });
  router.Add("GET", "/v1/transactions/{gid}", [context](const Request& request) {
    auto document = context.engine->Get(request.Param("gid"));
    if (!document.ok()) return ErrorFor(document.status());
    return DocumentResponse(200, *document, *context.engine);
  });
  router.Add("POST", "/v1/transactions/{gid}/abort", [context](const Request& request) {
    const std::string gid = request.Param("gid");
    auto reason = ParseAbortReason(request.body);
    if (!reason.ok()) return ErrorFor(reason.status());
    Status aborted = context.engine->Abort(gid, request.principal, *reason);
    if (!aborted.ok()) return ErrorFor(aborted);
    auto document = context.engine->Get(gid);
    if (!document.ok()) return ErrorFor(document.status());
    return DocumentResponse(200, *document, *context.engine);
  });
  router.Add("POST", "/v1/transactions/{gid}/resolve", [context](const Request& request) {
    const std::string gid = request.Param("gid");
    auto resolve = ParseResolveRequest(request.body);
    if (!resolve.ok()) return ErrorFor(resolve.status());
    Status resolved = context.engine->Resolve(gid, resolve->branch, resolve->outcome,
                                              request.principal, resolve->reason);
    if (!resolved.ok()) return ErrorFor(resolved);
    auto document = context.engine->Get(gid);
    if (!document.ok()) return ErrorFor(document.status());
    return DocumentResponse(200, *document, *context.engine);
  });
  router.Add("POST", "/v1/transactions/{gid}/retry", [context](const Request& request) {
    const std::string gid = request.Param("gid");
    Status retried = context.engine->RetryNow(gid);
    if (retried.code() == StatusCode::kNotFound && context.engine->Get(gid).ok()) {
      return ErrorResponse(409, "conflict", "transaction " + gid + " is finished");
    }
    if (!retried.ok()) return ErrorFor(retried);
    auto document = context.engine->Get(gid);
    if (!document.ok()) return ErrorFor(document.status());
    return DocumentResponse(200, *document, *context.engine);
  });
}

}  // namespace txc::api
