// TargetAllowlist: `participants.allow`, the HTTP targets a transaction may call (API.md,
// Configuration). Without it, anyone who may submit a transaction could make txcoord send
// requests anywhere it can reach (server-side request forgery).
//
// A pattern is `http://HOST[:PORT][TARGET]` where `*` matches any run of characters within the
// part it is written in:
//   http://127.0.0.1:*                 any port and any path on 127.0.0.1
//   http://payments.internal:8080/*    any path on that host and port
//   http://*.internal:*/txc/*          any host under .internal, paths under /txc/
//   http://orders.internal             port 80 (made explicit, as in URLs), any path
// Patterns are matched part by part against the normalised URL (HttpUrl: host lowercase, port
// explicit), so a `*` in the host never reaches into the port or the path, and
// `http://127.0.0.1*` cannot be satisfied by `http://127.0.0.1.evil.example/`. A TARGET pattern
// is matched against the whole path and query: end it with `*` to allow everything under it.
// Without a TARGET, any path is allowed. A host pattern of digits, dots and stars
// ("10.0.0.*") matches IPv4 addresses only, never names. An empty list allows nothing.
//
// The check is on the URL as written: a name that is allowed may resolve to any address (DNS is
// trusted here), and names and the addresses they resolve to are not cross-checked.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"
#include "participants/http/http_call.h"

namespace txc::participants::http {

inline constexpr size_t kAllowPatternsMax = 256;
inline constexpr size_t kAllowPatternBytesMax = 2'048;

class TargetAllowlist {
 public:
  // Checks every pattern; errors name it ("participants.allow[2]: ...").
  static Result<TargetAllowlist> Create(const std::vector<std::string>& patterns,
                                        std::string_view field = "participants.allow");

  bool Allows(const HttpUrl& url) const;
  // Parses `url` first: a URL that is not a valid http:// URL is never allowed.
  bool Allows(std::string_view url) const;

  // OK, or InvalidArgument("<field>: http://... is not allowed by participants.allow ...") for
  // the 400 answer to a submission.
  Status Check(const HttpUrl& url, std::string_view field) const;

  const std::vector<std::string>& patterns() const { return texts_; }

 private:
  struct Pattern {
    std::string host;  // glob over HttpUrl::host
    // The host pattern is an IPv4 pattern (digits, dots, stars: "10.0.0.*"): it matches only
    // dotted-quad addresses, or "10.0.0.*" would also match the name "10.0.0.evil.example".
    bool ipv4_only = false;
    std::string port;    // glob over the decimal port
    std::string target;  // glob over HttpUrl::target; "*" when the pattern has no path
  };

  std::vector<std::string> texts_;
  std::vector<Pattern> patterns_;
};

// Whether `text` matches `glob`, where '*' matches any run of characters (also none) and every
// other character matches itself. Exposed for tests.
bool GlobMatches(std::string_view glob, std::string_view text);

}  // namespace txc::participants::http
