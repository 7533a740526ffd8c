#include "participants/mysql/mysql_dsn.h"

#include <charconv>
#include <optional>
#include <string>
#include <system_error>

namespace txc::participants::mysql {
namespace {

constexpr std::string_view kScheme = "mysql://";

std::optional<int> HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

// Decodes %XX; nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;  // needs two more characters
    const std::optional<int> high = HexValue(text[i + 1]);
    const std::optional<int> low = HexValue(text[i + 2]);
    if (!high || !low) return std::nullopt;
    decoded.push_back(static_cast<char>(*high * 16 + *low));
    i += 2;
  }
  return decoded;
}

Status Invalid(std::string_view what) {
  return Status::InvalidArgument("MySQL DSN (mysql://user:password@host:port/database): " +
                                 std::string(what));
}

}  // namespace

std::string MysqlDsn::Redacted() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string text = std::string(kScheme) + user + (password.empty() ? "" : ":***") + "@" +
                     (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (!database.empty()) text += "/" + database;
  return text;
}

std::string MysqlDsn::ConnectorHostName() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return "tcp://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<MysqlDsn> ParseMysqlDsn(std::string_view dsn) {
  if (!dsn.starts_with(kScheme)) return Invalid("does not start with mysql://");
  std::string_view rest = dsn.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Invalid("query parameters and fragments (? #) are not supported");
  }
  // user:password@host:port / database. The last '@' ends the user part, so that an
  // unencoded '@' in a password still parses; a '/' in a password must be encoded.
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return Invalid("no user@ before the host");
  const std::string_view user_info = authority.substr(0, at);
  const std::string_view host_port = authority.substr(at + 1);

  MysqlDsn parsed;
  const std::size_t colon = user_info.find(':');
  std::optional<std::string> user = PercentDecode(user_info.substr(0, colon));
  if (!user) return Invalid("malformed %-escape in the user");
  if (user->empty()) return Invalid("the user is empty");
  parsed.user = std::move(*user);
  if (colon != std::string_view::npos) {
    std::optional<std::string> password = PercentDecode(user_info.substr(colon + 1));
    if (!password) return Invalid("malformed %-escape in the password");
    parsed.password = std::move(*password);
  }
  if (path.find('/') != std::string_view::npos) return Invalid("the database name contains '/'");
  std::optional<std::string> database = PercentDecode(path);
  if (!database) return Invalid("malformed %-escape in the database name");
  parsed.database = std::move(*database);

  std::string_view port_text;
  bool has_port = false;
  if (host_port.starts_with("[")) {
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) return Invalid("an [IPv6 address] is not closed");
    parsed.host = std::string(host_port.substr(1, close - 1));
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(":")) return Invalid("unexpected text after the [IPv6 address]");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const std::size_t port_colon = host_port.find(':');
    parsed.host = std::string(host_port.substr(0, port_colon));
    if (port_colon != std::string_view::npos) {
      port_text = host_port.substr(port_colon + 1);
      has_port = true;
    }
  }
  if (parsed.host.empty()) return Invalid("the host is empty");
  if (has_port) {
    int port = 0;
    const char* const end = port_text.data() + port_text.size();
    const auto [stop, error] = std::from_chars(port_text.data(), end, port);
    if (port_text.empty() || error != std::errc() || stop != end || port < 1 || port > 65535) {
      return Invalid("the port '" + std::string(port_text) + "' is not a number in 1-65535");
    }
    parsed.port = port;
  }
  return parsed;
}

}  // namespace txc::participants::mysql
