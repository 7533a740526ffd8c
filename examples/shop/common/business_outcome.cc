#include "examples/shop/common/business_outcome.h"

#include <string>
#include <utility>

namespace txc::shop {

BusinessOutcome BusinessOutcome::Done(Poco::JSON::Object::Ptr fields) {
  BusinessOutcome outcome;
  outcome.fields_ = std::move(fields);
  return outcome;
}

BusinessOutcome BusinessOutcome::Refused(std::string code, std::string message) {
  BusinessOutcome outcome;
  outcome.refused_ = true;
  outcome.code_ = std::move(code);
  outcome.message_ = std::move(message);
  return outcome;
}

server::Response BusinessOutcome::ToResponse() const {
  if (refused_) return server::ErrorResponse(409, code_, message_);
  Poco::JSON::Object::Ptr body = server::NewJsonObject();
  body->set("verdict", barrier::VerdictName(barrier::Verdict::kRun));
  if (fields_) {
    // getNames keeps the fields' insertion order (iterating the object would sort them).
    for (const std::string& name : fields_->getNames()) body->set(name, fields_->get(name));
  }
  return server::JsonResponse(200, *body);
}

std::optional<server::Response> VerdictResponse(barrier::Verdict verdict,
                                                const barrier::BarrierKey& key) {
  switch (verdict) {
    case barrier::Verdict::kRun:
      return std::nullopt;
    case barrier::Verdict::kDuplicate:
    case barrier::Verdict::kEmptyCompensation: {
      Poco::JSON::Object::Ptr body = server::NewJsonObject();
      body->set("verdict", barrier::VerdictName(verdict));
      return server::JsonResponse(200, *body);
    }
    case barrier::Verdict::kRefusedAfterCancel:
      return server::ErrorResponse(
          409, "refused_after_cancel",
          std::string(barrier::BarrierOpName(key.op)) + " of " + key.gid + "/" + key.branch +
              " arrived after its cancel or compensation: refused, nothing done");
  }
  return server::ErrorResponse(500, "internal", "unknown barrier verdict");
}

server::Response DatabaseUnavailableResponse(const std::string& message) {
  return server::ErrorResponse(503, "database_unavailable", message);
}

server::Response BarrierErrorResponse(const Status& status) {
  const std::string message = "barrier: " + status.ToString();
  if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kAborted) {
    return DatabaseUnavailableResponse(message);
  }
  return server::ErrorResponse(500, "barrier_failed", message);
}

}  // namespace txc::shop
