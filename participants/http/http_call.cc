#include "participants/http/http_call.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <utility>

namespace txc::participants::http {
namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerAscii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = LowerAscii(c);
  return lower;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 9110 §5.6.2 tchar: what a header name (and a method) may consist of.
bool IsTokenChar(char c) {
  if (IsAlnum(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 3986: characters allowed raw in a path or query (unreserved, sub-delims, ':', '@', '/',
// '?', and '%' which starts an escape checked separately). Anything else must be percent-encoded.
bool IsTargetChar(char c) {
  if (IsAlnum(c)) return true;
  return std::string_view("-._~!$&'()*+,;=:@/?%").find(c) != std::string_view::npos;
}

// A value that is about to be quoted in an error message, made safe to print: the offending
// input may contain control characters, and messages end up in JSON answers and logs.
std::string Printable(std::string_view text) {
  constexpr size_t kPrintedBytesMax = 64;
  std::string printed;
  for (char c : text.substr(0, kPrintedBytesMax)) {
    const auto byte = static_cast<unsigned char>(c);
    printed.push_back(byte >= 0x20 && byte < 0x7f ? c : '?');
  }
  if (text.size() > kPrintedBytesMax) printed += "...";
  return printed;
}

Status FieldError(std::string_view field, const std::string& what) {
  return Status::InvalidArgument(std::string(field) + ": " + what);
}

Status CheckHostName(std::string_view host, std::string_view field) {
  if (host.empty()) return FieldError(field, "has no host");
  if (host.size() > kHostBytesMax) {
    return FieldError(field, "host is longer than " + std::to_string(kHostBytesMax) + " bytes");
  }
  for (char c : host) {
    if (!IsAlnum(c) && c != '.' && c != '-' && c != '_') {
      return FieldError(field, "host '" + Printable(host) + "' contains '" + Printable({&c, 1}) +
                                   "'; a host is a name or an IPv4 address, or an IPv6 address "
                                   "in brackets");
    }
  }
  // A trailing dot ("payments.internal.") names the same host as without it; refusing it keeps
  // one spelling per host, so participants.allow patterns cannot be sidestepped.
  if (host.front() == '.' || host.back() == '.' || host.find("..") != std::string_view::npos) {
    return FieldError(field, "host '" + Printable(host) + "' has an empty label");
  }
  return Status::Ok();
}

Status CheckIpv6Literal(std::string_view host, std::string_view field) {
  if (host.empty() || host.size() > 45 || host.find(':') == std::string_view::npos) {
    return FieldError(field, "'[" + Printable(host) + "]' is not an IPv6 address");
  }
  for (char c : host) {
    if (!IsHexDigit(c) && c != ':' && c != '.') {
      return FieldError(field, "'[" + Printable(host) + "]' is not an IPv6 address");
    }
  }
  return Status::Ok();
}

Result<uint16_t> ParsePort(std::string_view text, std::string_view field) {
  if (text.empty()) return FieldError(field, "port is empty after ':'");
  if (text.size() > 5 || !std::all_of(text.begin(), text.end(), IsDigit)) {
    return FieldError(field, "port '" + Printable(text) + "' is not a number from 1 to 65535");
  }
  const long value = std::stol(std::string(text));
  if (value < 1 || value > 65535) {
    return FieldError(field, "port " + std::string(text) + " is not from 1 to 65535");
  }
  return static_cast<uint16_t>(value);
}

// "." and ".." segments, also spelled with %2e: a server resolves them, so "/public/../admin"
// would reach /admin while matching an allow pattern "/public/*".
bool IsDotSegment(std::string_view segment) {
  std::string decoded;
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] == '%' && i + 2 < segment.size() && segment[i + 1] == '2' &&
        (segment[i + 2] == 'e' || segment[i + 2] == 'E')) {
      decoded.push_back('.');
      i += 2;
    } else {
      decoded.push_back(segment[i]);
    }
  }
  return decoded == "." || decoded == "..";
}

Result<std::string> ParseTarget(std::string_view target, std::string_view field) {
  if (target.find('#') != std::string_view::npos) {
    return FieldError(field, "must not have a #fragment (it is never sent to the server)");
  }
  std::string normalized;
  if (target.empty() || target.front() == '?') normalized = "/";
  normalized.append(target);
  for (size_t i = 0; i < normalized.size(); ++i) {
    const char c = normalized[i];
    if (!IsTargetChar(c)) {
      return FieldError(field, "character '" + Printable({&c, 1}) + "' at byte " +
                                   std::to_string(i) + " of the path must be percent-encoded");
    }
    if (c == '%' && (i + 2 >= normalized.size() || !IsHexDigit(normalized[i + 1]) ||
                     !IsHexDigit(normalized[i + 2]))) {
      return FieldError(field, "'%' at byte " + std::to_string(i) +
                                   " of the path is not followed by two hex digits");
    }
  }
  const std::string_view path = std::string_view(normalized).substr(0, normalized.find('?'));
  size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (IsDotSegment(path.substr(start, end - start))) {
      return FieldError(field, "path must not contain '.' or '..' segments");
    }
    start = end + 1;
  }
  return normalized;
}

// The only methods a participant endpoint can sensibly be called with. HEAD, OPTIONS, TRACE and
// CONNECT carry no operation; a typo ("POTS") is better refused at submission than answered 405
// in the middle of a transaction.
constexpr std::array<std::string_view, 5> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};

Status CheckMethod(const std::string& method, std::string_view field) {
  if (std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end()) return Status::Ok();
  return FieldError(std::string(field) + ".method",
                    "'" + Printable(method) + "' is not one of GET, POST, PUT, PATCH, DELETE");
}

Status CheckHeaders(const std::map<std::string, std::string>& headers, std::string_view field) {
  const std::string headers_field = std::string(field) + ".headers";
  if (headers.size() > kCallHeadersMax) {
    return FieldError(headers_field, "has " + std::to_string(headers.size()) +
                                         " headers; at most " + std::to_string(kCallHeadersMax));
  }
  for (auto it = headers.begin(); it != headers.end(); ++it) {
    const std::string& name = it->first;
    const std::string& value = it->second;
    if (name.empty() || name.size() > kHeaderNameBytesMax ||
        !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return FieldError(headers_field, "'" + Printable(name) + "' is not a valid header name");
    }
    const std::string name_field = headers_field + "." + name;
    if (IsReservedHeader(name)) {
      return FieldError(name_field,
                        "is set by txcoord (or frames the message); a call may not "
                        "set it");
    }
    for (auto other = headers.begin(); other != it; ++other) {
      if (EqualsIgnoreCase(other->first, name)) {
        return FieldError(name_field, "is given twice (header names are case-insensitive)");
      }
    }
    if (value.size() > kHeaderValueBytesMax) {
      return FieldError(name_field,
                        "value is longer than " + std::to_string(kHeaderValueBytesMax) + " bytes");
    }
    // CR and LF would let a value start a new header or a new request (header injection).
    for (char c : value) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
        return FieldError(name_field, "value contains a control character");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::string HttpUrl::Authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string HttpUrl::HostHeader() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string value = ipv6 ? "[" + host + "]" : host;
  if (port != 80) value += ":" + std::to_string(port);
  return value;
}

std::string HttpUrl::Normalized() const { return "http://" + Authority() + target; }

std::string HttpUrl::Redacted() const {
  return "http://" + Authority() + target.substr(0, target.find('?'));
}

Result<HttpUrl> ParseHttpUrl(std::string_view text, std::string_view field) {
  if (text.empty()) return FieldError(field, "is empty");
  if (text.size() > kUrlBytesMax) {
    return FieldError(field, "is longer than " + std::to_string(kUrlBytesMax) + " bytes");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte <= 0x20 || byte >= 0x7f) {
      return FieldError(field, "has a space, control or non-ASCII character at byte " +
                                   std::to_string(i) + "; percent-encode it");
    }
  }
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return FieldError(field, "must be an absolute http:// URL, e.g. http://127.0.0.1:9001/pay");
  }
  const std::string scheme = LowerAscii(text.substr(0, scheme_end));
  if (scheme == "https") return FieldError(field, "https is not supported yet; use http://");
  if (scheme != "http") {
    return FieldError(field, "scheme '" + Printable(scheme) + "' is not supported; use http://");
  }
  const std::string_view rest = text.substr(scheme_end + 3);
  const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return FieldError(field,
                      "must not contain user:password@ (it would be logged); send credentials "
                      "in the call's headers");
  }
  HttpUrl url;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return FieldError(field, "IPv6 address lacks its ']'");
    const std::string_view literal = authority.substr(1, close - 1);
    TXC_RETURN_IF_ERROR(CheckIpv6Literal(literal, field));
    url.host = LowerAscii(literal);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return FieldError(field, "unexpected text after ']'");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    TXC_RETURN_IF_ERROR(CheckHostName(host, field));
    url.host = LowerAscii(host);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (has_port) {
    Result<uint16_t> port = ParsePort(port_text, field);
    if (!port.ok()) return port.status();
    url.port = *port;
  }
  Result<std::string> target = ParseTarget(rest.substr(authority_end), field);
  if (!target.ok()) return target.status();
  url.target = std::move(target).value();
  return url;
}

bool IsReservedHeader(std::string_view name) {
  // Txc-* is txcoord's namespace as a whole, so later additions cannot collide with a call's
  // headers. The framing and hop-by-hop headers are POCO's to write: a call setting them could
  // desynchronise a keep-alive connection (request smuggling).
  constexpr std::array<std::string_view, 12> kReserved = {
      "idempotency-key",   "traceparent", "host",       "content-length",
      "transfer-encoding", "connection",  "keep-alive", "te",
      "trailer",           "upgrade",     "expect",     "proxy-connection"};
  const std::string lower = LowerAscii(name);
  if (lower.starts_with("txc-")) return true;
  return std::find(kReserved.begin(), kReserved.end(), lower) != kReserved.end();
}

Result<HttpCall> HttpCall::Create(HttpCallSpec spec, std::string_view field) {
  Result<HttpUrl> url = ParseHttpUrl(spec.url, std::string(field) + ".url");
  if (!url.ok()) return url.status();
  TXC_RETURN_IF_ERROR(CheckMethod(spec.method, field));
  if (spec.body.size() > kCallBodyBytesMax) {
    return FieldError(std::string(field) + ".body",
                      "is larger than " + std::to_string(kCallBodyBytesMax) + " bytes");
  }
  TXC_RETURN_IF_ERROR(CheckHeaders(spec.headers, field));
  if (spec.timeout_ms < kCallTimeoutMsMin || spec.timeout_ms > kCallTimeoutMsMax) {
    return FieldError(std::string(field) + ".timeout_ms",
                      std::to_string(spec.timeout_ms) + " is not from " +
                          std::to_string(kCallTimeoutMsMin) + " to " +
                          std::to_string(kCallTimeoutMsMax));
  }
  return HttpCall(std::move(spec), std::move(url).value());
}

}  // namespace txc::participants::http
