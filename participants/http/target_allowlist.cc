#include "participants/http/target_allowlist.h"

#include <algorithm>
#include <utility>

namespace txc::participants::http {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string LowerAscii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// "a.b.c.d" with each part a decimal number from 0 to 255 written without leading zeros: the one
// spelling of an IPv4 address that the URL parser lets through as is and that every resolver
// reads the same way.
bool IsDottedQuad(std::string_view host) {
  int parts = 0;
  size_t start = 0;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const std::string_view part = host.substr(start, end - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), IsDigit)) {
      return false;
    }
    if (part.size() > 1 && part.front() == '0') return false;
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4;
}

Status PatternError(std::string_view field, const std::string& what) {
  return Status::InvalidArgument(std::string(field) + ": " + what);
}

}  // namespace

bool GlobMatches(std::string_view glob, std::string_view text) {
  // Greedy with one backtrack point: on a mismatch, let the last '*' swallow one more character.
  // Linear in practice and at worst O(glob × text), both bounded by kAllowPatternBytesMax and
  // kUrlBytesMax.
  size_t g = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      star_text = t;
    } else if (g < glob.size() && glob[g] == text[t]) {
      ++g;
      ++t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

Result<TargetAllowlist> TargetAllowlist::Create(const std::vector<std::string>& patterns,
                                                std::string_view field) {
  if (patterns.size() > kAllowPatternsMax) {
    return PatternError(field, "has " + std::to_string(patterns.size()) + " patterns; at most " +
                                   std::to_string(kAllowPatternsMax));
  }
  TargetAllowlist allowlist;
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string& text = patterns[i];
    const std::string item = std::string(field) + "[" + std::to_string(i) + "]";
    if (text.size() > kAllowPatternBytesMax) {
      return PatternError(item,
                          "is longer than " + std::to_string(kAllowPatternBytesMax) + " bytes");
    }
    constexpr std::string_view kScheme = "http://";
    if (text.size() < kScheme.size() || LowerAscii(text.substr(0, kScheme.size())) != kScheme) {
      return PatternError(
          item, "'" + text.substr(0, 64) + "' must start with http:// (e.g. http://127.0.0.1:*)");
    }
    const std::string_view rest = std::string_view(text).substr(kScheme.size());
    const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
    const std::string_view authority = rest.substr(0, authority_end);
    const std::string_view target = rest.substr(authority_end);

    Pattern pattern;
    std::string_view port = "80";  // as in URLs: no port means port 80
    if (!authority.empty() && authority.front() == '[') {
      const size_t close = authority.find(']');
      if (close == std::string_view::npos) return PatternError(item, "IPv6 address lacks ']'");
      pattern.host = LowerAscii(authority.substr(1, close - 1));
      for (char c : pattern.host) {
        if (!IsDigit(c) && !(c >= 'a' && c <= 'f') && c != ':' && c != '.' && c != '*') {
          return PatternError(item, "IPv6 host pattern may hold hex digits, ':', '.' and '*'");
        }
      }
      const std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return PatternError(item, "unexpected text after ']'");
        port = after.substr(1);
      }
    } else {
      const size_t colon = authority.find(':');
      pattern.host = LowerAscii(authority.substr(0, colon));
      for (char c : pattern.host) {
        if (!IsAlnum(c) && c != '.' && c != '-' && c != '_' && c != '*') {
          return PatternError(item, "host pattern '" + pattern.host.substr(0, 64) +
                                        "' may hold letters, digits, '.', '-', '_' and '*'");
        }
      }
      if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (pattern.host.empty()) return PatternError(item, "has no host (use * for any host)");
    pattern.ipv4_only = pattern.host.find_first_not_of("0123456789.*") == std::string::npos &&
                        pattern.host.find_first_not_of('*') != std::string::npos;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return IsDigit(c) || c == '*'; })) {
      return PatternError(item, "port pattern must be digits or '*'");
    }
    if (port.find('*') == std::string_view::npos) {
      const long value = std::stol(std::string(port));
      if (value < 1 || value > 65535) return PatternError(item, "port is not from 1 to 65535");
    }
    pattern.port = std::string(port);

    if (target.empty()) {
      pattern.target = "*";
    } else {
      if (target.front() != '/') return PatternError(item, "path pattern must start with '/'");
      if (target.find('#') != std::string_view::npos) {
        return PatternError(item, "must not have a #fragment");
      }
      for (char c : target) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f) {
          return PatternError(item, "has a space, control or non-ASCII character");
        }
      }
      pattern.target = std::string(target);
    }
    allowlist.texts_.push_back(text);
    allowlist.patterns_.push_back(std::move(pattern));
  }
  return allowlist;
}

bool TargetAllowlist::Allows(const HttpUrl& url) const {
  const std::string port = std::to_string(url.port);
  return std::any_of(patterns_.begin(), patterns_.end(), [&](const Pattern& pattern) {
    if (pattern.ipv4_only && !IsDottedQuad(url.host)) return false;
    return GlobMatches(pattern.host, url.host) && GlobMatches(pattern.port, port) &&
           GlobMatches(pattern.target, url.target);
  });
}

bool TargetAllowlist::Allows(std::string_view url) const {
  Result<HttpUrl> parsed = ParseHttpUrl(url, "url");
  return parsed.ok() && Allows(*parsed);
}

Status TargetAllowlist::Check(const HttpUrl& url, std::string_view field) const {
  if (Allows(url)) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + ": " + url.Redacted() +
                                 " is not allowed: no pattern in participants.allow of the "
                                 "coordinator's configuration matches it");
}

}  // namespace txc::participants::http
