#include "coordinator/server/router.h"

#include <algorithm>
#include <exception>
#include <set>

#include "coordinator/common/check.h"

namespace txc::server {

std::vector<std::string> Router::SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t begin = 1;  // past the leading '/'
  while (begin <= path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string::npos) end = path.size();
    parts.push_back(path.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

void Router::Add(const std::string& method, const std::string& pattern, Handler handler) {
  TXC_CHECK(!method.empty(), "a route needs a method");
  TXC_CHECK(!pattern.empty() && pattern.front() == '/', "a route pattern starts with '/'");
  TXC_CHECK(handler != nullptr, "a route needs a handler");
  Route route;
  route.method = method;
  route.pattern = pattern;
  route.handler = std::move(handler);
  std::set<std::string> parameter_names;
  for (const std::string& part : SplitPath(pattern)) {
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      segment.text = part.substr(1, part.size() - 2);
      segment.is_parameter = true;
      TXC_CHECK(!segment.text.empty(), "a route parameter needs a name");
      TXC_CHECK(parameter_names.insert(segment.text).second, "route parameter named twice");
    } else {
      TXC_CHECK(part.find_first_of("{}") == std::string::npos,
                "braces only around a whole route segment");
      segment.text = part;
      ++route.literal_count;
    }
    route.segments.push_back(std::move(segment));
  }
  for (const Route& existing : routes_) {
    TXC_CHECK(!(existing.method == method && existing.pattern == pattern), "route added twice");
  }
  routes_.push_back(std::move(route));
}

bool Router::Matches(const Route& route, const std::vector<std::string>& parts,
                     std::map<std::string, std::string>* params) {
  if (route.segments.size() != parts.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& segment = route.segments[i];
    if (segment.is_parameter) {
      if (parts[i].empty()) return false;
      found[segment.text] = parts[i];
    } else if (segment.text != parts[i]) {
      return false;
    }
  }
  if (params != nullptr) *params = std::move(found);
  return true;
}

std::string Router::AllowedMethods(const std::string& path) const {
  if (path.empty() || path.front() != '/') return "";
  const std::vector<std::string> parts = SplitPath(path);
  std::set<std::string> methods;
  for (const Route& route : routes_) {
    if (Matches(route, parts, nullptr)) methods.insert(route.method);
  }
  std::string allow;
  for (const std::string& method : methods) allow += (allow.empty() ? "" : ", ") + method;
  return allow;
}

void Router::SetGuard(Guard guard) {
  TXC_CHECK(guard != nullptr, "a guard must be callable");
  TXC_CHECK(guard_ == nullptr, "the router has a guard already");
  guard_ = std::move(guard);
}

Response Router::Dispatch(Request request) const {
  // Before matching, so that an unauthenticated client learns nothing about which routes exist.
  if (guard_) {
    if (std::optional<Response> refused = guard_(request)) return std::move(*refused);
  }
  if (request.path.empty() || request.path.front() != '/') {
    return ErrorResponse(404, "not_found", "no route for path \"" + request.path + "\"");
  }
  const std::vector<std::string> parts = SplitPath(request.path);
  const Route* best = nullptr;
  bool path_known = false;
  for (const Route& route : routes_) {
    if (!Matches(route, parts, nullptr)) continue;
    path_known = true;
    if (route.method != request.method) continue;
    if (best == nullptr || route.literal_count > best->literal_count) best = &route;
  }
  if (best == nullptr) {
    if (!path_known) {
      return ErrorResponse(404, "not_found", "no route for " + request.method + " " + request.path);
    }
    const std::string allow = AllowedMethods(request.path);
    Response response = ErrorResponse(
        405, "method_not_allowed",
        request.method + " is not allowed on " + request.path + " (allowed: " + allow + ")");
    response.headers.emplace_back("Allow", allow);
    return response;
  }
  bool matched = Matches(*best, parts, &request.params);
  TXC_CHECK(matched, "the chosen route matches the path");
  try {
    return best->handler(request);
  } catch (const std::exception& e) {
    return ErrorResponse(
        500, "internal",
        "the handler of " + best->method + " " + best->pattern + " failed: " + e.what());
  } catch (...) {
    return ErrorResponse(500, "internal",
                         "the handler of " + best->method + " " + best->pattern + " failed");
  }
}

}  // namespace txc::server
