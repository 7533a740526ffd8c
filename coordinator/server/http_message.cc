#include "coordinator/server/http_message.h"

#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace txc::server {

std::string ToLower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const std::string* Request::Header(std::string_view name) const {
  auto found = headers.find(ToLower(name));
  return found == headers.end() ? nullptr : &found->second;
}

std::string Request::Param(const std::string& name) const {
  auto found = params.find(name);
  return found == params.end() ? std::string() : found->second;
}

const std::string* Response::Header(std::string_view name) const {
  const std::string wanted = ToLower(name);
  for (const auto& [key, value] : headers) {
    if (ToLower(key) == wanted) return &value;
  }
  return nullptr;
}

Poco::JSON::Object::Ptr NewJsonObject() {
  return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
}

Response JsonResponse(int status, const Poco::JSON::Object& body) {
  std::ostringstream out;
  body.stringify(out);
  Response response;
  response.status = status;
  response.body = out.str();
  return response;
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  Poco::JSON::Object::Ptr error = NewJsonObject();
  error->set("code", std::string(code));
  error->set("message", std::string(message));
  Poco::JSON::Object::Ptr body = NewJsonObject();
  body->set("error", error);
  return JsonResponse(status, *body);
}

}  // namespace txc::server
