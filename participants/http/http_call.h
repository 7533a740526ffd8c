// HttpCall: the HTTP request one branch makes for one operation (API.md, the "call" object
// {"url", "method", "body", "headers", "timeout_ms"}), and HttpUrl, its parsed target.
//
// An HttpCall is built only through HttpCall::Create, which checks every field, so an HttpCall in
// hand is always sendable: the adapter never discovers a bad URL or an injected header in the
// middle of a transaction. Errors name the field path the caller gives
// ("branches[1].prepare.url: ..."), because they become the 400 answer to a submission.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"

namespace txc::participants::http {

inline constexpr int64_t kCallTimeoutMsDefault = 5'000;
inline constexpr int64_t kCallTimeoutMsMin = 1;
inline constexpr int64_t kCallTimeoutMsMax = 300'000;
inline constexpr size_t kUrlBytesMax = 2'048;
inline constexpr size_t kHostBytesMax = 253;  // the DNS limit for a name
// The whole submission is bounded by limits.max_body_bytes (1 MiB by default); one call's body
// cannot be larger than that.
inline constexpr size_t kCallBodyBytesMax = 1u << 20;
inline constexpr size_t kCallHeadersMax = 32;
inline constexpr size_t kHeaderNameBytesMax = 128;
inline constexpr size_t kHeaderValueBytesMax = 4'096;

// An absolute http:// URL, normalised: host in lowercase, the port always explicit.
struct HttpUrl {
  std::string host;    // lowercase; an IPv6 literal without its brackets ("::1")
  uint16_t port = 80;  // explicit even when the URL omitted it
  std::string target;  // path and query, always starting with '/'

  // "127.0.0.1:9001", "[::1]:80": the host and port as they appear in a URL.
  std::string Authority() const;
  // The value of the Host header: the port is omitted when it is 80 (RFC 9110 §7.2).
  std::string HostHeader() const;
  // "http://127.0.0.1:9001/pay?x=1": what participants.allow patterns are matched against.
  std::string Normalized() const;
  // "http://127.0.0.1:9001/pay": for reasons, logs and last_error. The query is left out because
  // it may carry a token, and secrets are never logged (API.md, Configuration).
  std::string Redacted() const;

  bool operator==(const HttpUrl& other) const = default;
};

// Parses `text` as an absolute http:// URL. Refused: other schemes (https is not supported yet),
// user:password@ (credentials would end up in last_error), fragments, dot segments ("/a/../b",
// which would defeat path patterns in participants.allow), spaces, control and non-ASCII
// characters (percent-encode them), bad percent escapes, port 0 or over 65535.
// Errors are InvalidArgument("<field>: <what is wrong>").
Result<HttpUrl> ParseHttpUrl(std::string_view text, std::string_view field);

// The call object as a submission gives it, not yet checked.
struct HttpCallSpec {
  std::string url;
  std::string method = "POST";
  std::string body;  // JSON text, sent as is; empty: no body
  std::map<std::string, std::string> headers;
  int64_t timeout_ms = kCallTimeoutMsDefault;
};

// True for the headers txcoord sets itself or that frame the message (Txc-*, Idempotency-Key,
// traceparent, Host, Content-Length, Transfer-Encoding, Connection, ...): a call may not set them.
// Case-insensitive.
bool IsReservedHeader(std::string_view name);

class HttpCall {
 public:
  // Checks every field of `spec`; errors name the failing field under `field`
  // (e.g. field "branches[1].prepare" → "branches[1].prepare.headers.Txc-Gid: ...").
  static Result<HttpCall> Create(HttpCallSpec spec, std::string_view field);

  const HttpUrl& url() const { return url_; }
  const std::string& method() const { return spec_.method; }
  const std::string& body() const { return spec_.body; }
  const std::map<std::string, std::string>& headers() const { return spec_.headers; }
  int64_t timeout_ms() const { return spec_.timeout_ms; }
  // The URL as the submission gave it.
  const std::string& url_text() const { return spec_.url; }

 private:
  HttpCall(HttpCallSpec spec, HttpUrl url) : spec_(std::move(spec)), url_(std::move(url)) {}

  HttpCallSpec spec_;
  HttpUrl url_;
};

}  // namespace txc::participants::http
