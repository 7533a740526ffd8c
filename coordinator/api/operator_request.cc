#include "coordinator/api/operator_request.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <set>

namespace txc::api {
namespace {

using Object = Poco::JSON::Object::Ptr;

Result<Object> ParseObject(const std::string& body, const std::set<std::string>& allowed) {
  Object object;
  try {
    Poco::JSON::Parser parser;
    auto parsed = parser.parse(body);
    if (parsed.type() != typeid(Object)) {
      return Status::InvalidArgument("body: must be a JSON object");
    }
    object = parsed.extract<Object>();
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("body: not valid JSON: " + e.displayText());
  }
  for (const auto& [key, value] : *object) {
    if (!allowed.contains(key)) return Status::InvalidArgument(key + ": is not a known field");
  }
  return object;
}

// The string `field` of `object`; InvalidArgument naming it when absent (and `required`), not a
// string, or longer than `max_bytes`.
Result<std::string> StringField(const Object& object, const std::string& field, bool required,
                                size_t max_bytes) {
  if (!object->has(field) || object->isNull(field)) {
    if (required) return Status::InvalidArgument(field + ": is required");
    return std::string();
  }
  const auto value = object->get(field);
  if (!value.isString()) return Status::InvalidArgument(field + ": must be a string");
  std::string text = value.extract<std::string>();
  if (text.size() > max_bytes) {
    return Status::InvalidArgument(field + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (required && text.empty()) return Status::InvalidArgument(field + ": must not be empty");
  return text;
}

}  // namespace

Result<ResolveRequest> ParseResolveRequest(const std::string& body) {
  auto object = ParseObject(body, {"branch", "outcome", "reason"});
  if (!object.ok()) return object.status();
  ResolveRequest request;
  auto branch = StringField(*object, "branch", true, 64);
  if (!branch.ok()) return branch.status();
  request.branch = *branch;
  auto outcome = StringField(*object, "outcome", true, 16);
  if (!outcome.ok()) return outcome.status();
  if (*outcome == "committed") {
    request.outcome = protocol::Outcome::kCommitted;
  } else if (*outcome == "aborted") {
    request.outcome = protocol::Outcome::kAborted;
  } else {
    return Status::InvalidArgument("outcome: must be committed or aborted, got '" + *outcome + "'");
  }
  auto reason = StringField(*object, "reason", true, kOperatorReasonMaxBytes);
  if (!reason.ok()) return reason.status();
  request.reason = *reason;
  return request;
}

Result<std::string> ParseAbortReason(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::string();
  auto object = ParseObject(body, {"reason"});
  if (!object.ok()) return object.status();
  return StringField(*object, "reason", false, kOperatorReasonMaxBytes);
}

}  // namespace txc::api
