// Reading the shop's request bodies: a JSON object whose fields are checked one by one, each
// failure an InvalidArgument that names the field (`amount: must be an integer from 1 to ...`).
#pragma once

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <string>

#include "coordinator/common/status.h"
#include "coordinator/server/http_message.h"

namespace txc::shop {

// Amounts and quantities are whole units (cents, pieces); this bound keeps sums far from overflow.
inline constexpr int64_t kQuantityMax = 1'000'000'000'000;

// The body parsed as a JSON object; InvalidArgument "body: ..." for anything else.
Result<Poco::JSON::Object::Ptr> ParseJsonObject(const std::string& body);

// An identifier (account, item, order id): 1-64 of [A-Za-z0-9._-].
Result<std::string> RequireName(const Poco::JSON::Object& object, const std::string& field);

// Free text (a customer's name): 1-200 bytes without control characters.
Result<std::string> RequireText(const Poco::JSON::Object& object, const std::string& field);

// A JSON integer from min to max (30.0 and "30" are refused: money is counted, not measured).
Result<int64_t> RequireInteger(const Poco::JSON::Object& object, const std::string& field,
                               int64_t min, int64_t max);

// True when a path segment or field value is a valid identifier (see RequireName).
bool IsName(const std::string& text);

// 400 invalid_request with the status's message.
server::Response BadRequest(const Status& status);

}  // namespace txc::shop
