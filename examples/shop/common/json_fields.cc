#include "examples/shop/common/json_fields.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

namespace txc::shop {
namespace {

constexpr size_t kNameBytesMax = 64;
constexpr size_t kTextBytesMax = 200;

}  // namespace

Result<Poco::JSON::Object::Ptr> ParseJsonObject(const std::string& body) {
  if (body.empty()) return Status::InvalidArgument("body: expected a JSON object, got nothing");
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(body);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
      return Status::InvalidArgument("body: expected a JSON object");
    }
    return parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("body: invalid JSON: " + e.message());
  }
}

bool IsName(const std::string& text) {
  if (text.empty() || text.size() > kNameBytesMax) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> RequireName(const Poco::JSON::Object& object, const std::string& field) {
  const Poco::Dynamic::Var value = object.get(field);
  if (value.isEmpty()) return Status::InvalidArgument(field + ": required");
  if (!value.isString()) return Status::InvalidArgument(field + ": must be a string");
  std::string text = value.extract<std::string>();
  if (!IsName(text)) {
    return Status::InvalidArgument(field + ": must be 1-64 of [A-Za-z0-9._-]");
  }
  return text;
}

Result<std::string> RequireText(const Poco::JSON::Object& object, const std::string& field) {
  const Poco::Dynamic::Var value = object.get(field);
  if (value.isEmpty()) return Status::InvalidArgument(field + ": required");
  if (!value.isString()) return Status::InvalidArgument(field + ": must be a string");
  std::string text = value.extract<std::string>();
  if (text.empty() || text.size() > kTextBytesMax) {
    return Status::InvalidArgument(field + ": must be 1-200 bytes");
  }
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(field + ": must not contain control characters");
    }
  }
  return text;
}

Result<int64_t> RequireInteger(const Poco::JSON::Object& object, const std::string& field,
                               int64_t min, int64_t max) {
  const Poco::Dynamic::Var value = object.get(field);
  if (value.isEmpty()) return Status::InvalidArgument(field + ": required");
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value.isInteger() || value.isString() || value.isBoolean()) {
    return Status::InvalidArgument(field + ": must be " + range);
  }
  int64_t number = 0;
  try {
    number = value.convert<Poco::Int64>();
  } catch (const Poco::Exception&) {
    return Status::InvalidArgument(field + ": must be " + range);  // beyond int64
  }
  if (number < min || number > max) return Status::InvalidArgument(field + ": must be " + range);
  return number;
}

server::Response BadRequest(const Status& status) {
  return server::ErrorResponse(400, "invalid_request", status.message());
}

}  // namespace txc::shop
