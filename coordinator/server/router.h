// Router: the route table of the HTTP API. A route is (method, path pattern) → handler, where a
// pattern segment `{name}` matches one non-empty path segment and lands in Request::params:
//
//   router.Add("GET", "/v1/transactions/{gid}", [&](const Request& r) { ... r.Param("gid") ... });
//
// Dispatch answers 404 not_found when no pattern matches the path, and 405 method_not_allowed
// with an `Allow` header when patterns match but none for the method; both in API.md's error
// format. A handler that throws is answered with 500 internal (exceptions stop at this edge).
// Routes are added at start-up, before serving; Dispatch is then safe from many threads.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/server/http_message.h"

namespace txc::server {

using Handler = std::function<Response(const Request&)>;
// Runs before routing: nullopt lets the request through (the guard may have filled in
// Request::principal or removed headers no handler should see); a Response is sent instead of
// routing. Access control (access_control.h) is one.
using Guard = std::function<std::optional<Response>(Request& request)>;

class Router {
 public:
  // The pattern starts with '/'; `{name}` segments are named uniquely. A malformed pattern or a
  // second route for the same method and pattern is a programmer error (TXC_CHECK).
  void Add(const std::string& method, const std::string& pattern, Handler handler);

  // Sets the one guard every request passes before it is routed (even to a 404). Set at start-up,
  // before serving, like the routes.
  void SetGuard(Guard guard);

  // Runs the guard, then matches the request's method and path, fills its params and runs the
  // handler. When several patterns match, the one with more literal segments wins (`/v1/x/stats`
  // before `/v1/x/{gid}`).
  Response Dispatch(Request request) const;

  // The methods routed for `path`, sorted ("GET, POST"); empty when no pattern matches.
  std::string AllowedMethods(const std::string& path) const;

 private:
  struct Segment {
    std::string text;  // the literal, or the parameter's name
    bool is_parameter = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    int literal_count = 0;
  };

  static std::vector<std::string> SplitPath(const std::string& path);
  static bool Matches(const Route& route, const std::vector<std::string>& parts,
                      std::map<std::string, std::string>* params);

  std::vector<Route> routes_;
  Guard guard_;
};

}  // namespace txc::server
