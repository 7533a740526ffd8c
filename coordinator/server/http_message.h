// Request and Response: the plain values route handlers take and return. They carry no socket,
// so every handler is testable by building a Request and looking at the Response.
#pragma once

#include <Poco/JSON/Object.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace txc::server {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // percent-decoded, without the query
  std::map<std::string, std::string> params;   // from `{name}` segments of the matched route
  std::map<std::string, std::string> query;    // ?a=b&c=d (the last value of a repeated name)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // at most limits.max_body_bytes
  // Who sent it: the name of its API token when access control is configured, "" otherwise.
  // What an operator does is recorded with this name.
  std::string principal;

  // The header's value, or nullptr. `name` in any case.
  const std::string* Header(std::string_view name) const;
  // The `{name}` segment's value, or "" when the route has none.
  std::string Param(const std::string& name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/-Length
  bool close_connection = false;  // answer with `Connection: close` and close after it

  // The first header of that name (any case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// `body` serialised as the response body, with Content-Type application/json.
Response JsonResponse(int status, const Poco::JSON::Object& body);

// API.md's error format: {"error": {"code": "<snake_case>", "message": "..."}}.
Response ErrorResponse(int status, std::string_view code, std::string_view message);

// A JSON object that keeps its keys in insertion order (documents read better that way).
Poco::JSON::Object::Ptr NewJsonObject();

std::string ToLower(std::string_view text);

}  // namespace txc::server
