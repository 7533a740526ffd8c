// Access control for the HTTP API: API tokens with roles, read from the file named by
// `auth.tokens_file` (README "Access control").
//
// The file holds one token per line, `<role> <name> <token>`, fields separated by blanks; `#`
// starts a comment line, blank lines are ignored:
//
//   # role    name        token (at least 16 characters)
//   operate   alice       9f2c6b1e0d8a4f7e9b3c5d1a7e6f8b2c
//   read      dashboards  1b7d3e9f5a2c8e4d6b0f1a3c5e7d9b2f
//
// Roles: `read` may use the safe methods (GET, HEAD) on the API; `operate` may do everything,
// including submitting transactions (they act on participants) and the operator verbs (retry,
// abort, resolve). Fail closed: every request needs a token except the open paths (/healthz,
// /readyz, /metrics and the static page under /ui/), so a route added later is guarded too.
//
// Tokens are kept only as SHA-256 digests and compared in constant time, so neither the table in
// memory nor the timing of a comparison gives a token away. They are never logged and never put
// in a message: errors about the file name its line, not its fields.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"
#include "coordinator/server/http_message.h"
#include "coordinator/server/router.h"

namespace txc::server {

enum class Role { kRead, kOperate };
const char* RoleName(Role role);

inline constexpr size_t kTokenLengthMin = 16;
inline constexpr size_t kTokenLengthMax = 4096;  // beyond any real token; bounds the hashing
inline constexpr size_t kTokenNameLengthMax = 64;
inline constexpr size_t kTokensFileBytesMax = 1u << 20;

using TokenDigest = std::array<uint8_t, 32>;  // SHA-256

// One line of the token file; the token itself is not kept.
struct ApiToken {
  Role role = Role::kRead;
  std::string name;  // who: Request::principal, recorded with what an operator does
  TokenDigest digest{};
};

class TokenTable {
 public:
  // The text of a token file. Refuses (InvalidArgument, "line N: ...") a line without exactly
  // three fields, an unknown role, a name outside 1-64 of [A-Za-z0-9._@-], a token shorter than
  // kTokenLengthMin or longer than kTokenLengthMax or with characters outside printable ASCII, a
  // name or a token given twice, and a text without any token.
  static Result<TokenTable> Parse(std::string_view text);

  // Reads the file at `path` and parses it; messages start with the path. Refuses a file that is
  // not a regular file, larger than kTokensFileBytesMax, or that others than its owner may read
  // or write (mode & 077): tokens are credentials.
  static Result<TokenTable> Load(const std::string& path);

  // The entry whose token is `token`, or nullptr. Every entry is compared, each in constant
  // time, whatever matches.
  const ApiToken* Find(std::string_view token) const;

  const std::vector<ApiToken>& tokens() const { return tokens_; }

 private:
  std::vector<ApiToken> tokens_;
};

TokenDigest DigestToken(std::string_view token);

struct AccessControlOptions {
  // Served without a token: exact paths, and paths under these prefixes.
  std::vector<std::string> open_paths = {"/healthz", "/readyz", "/metrics", "/ui"};
  std::vector<std::string> open_prefixes = {"/ui/"};
  // Counts a refused request: reason "unauthorized" (401) or "forbidden" (403).
  std::function<void(const std::string& reason)> count_rejection;
};

class AccessControl {
 public:
  explicit AccessControl(TokenTable tokens, AccessControlOptions options = {});

  // nullopt when `request` may go on: its principal is set to the token's name (empty on an open
  // path). Otherwise the answer to send: 401 unauthorized with `WWW-Authenticate: Bearer` for a
  // missing, malformed or unknown token, 403 forbidden for a read token on anything but GET or
  // HEAD. Either way the Authorization header is removed from the request, so no handler or log
  // line downstream can ever see a token.
  std::optional<Response> Check(Request& request) const;

  // Check as a Router guard; the AccessControl must outlive the router.
  Guard AsGuard() const;

  bool IsOpenPath(const std::string& path) const;

 private:
  Response Refuse(int status, const std::string& reason, const std::string& message,
                  const std::string& challenge) const;

  TokenTable tokens_;
  AccessControlOptions options_;
};

}  // namespace txc::server
