#include "tests/support/db_env.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace txc::testing {
namespace {

constexpr std::string_view kMysqlScheme = "mysql://";

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; nullopt on a truncated or non-hex escape.
std::optional<std::string> PercentDecode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = HexDigitValue(text[i + 1]);
    const int low = HexDigitValue(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    decoded.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return decoded;
}

std::optional<MysqlDsn> Fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

std::unique_ptr<sql::Statement> NewStatement(sql::Connection& connection) {
  return std::unique_ptr<sql::Statement>(connection.createStatement());
}

}  // namespace

std::optional<MysqlDsn> ParseMysqlDsn(std::string_view dsn, std::string* error) {
  if (dsn.substr(0, kMysqlScheme.size()) != kMysqlScheme) {
    return Fail(error, "a MySQL DSN starts with mysql://");
  }
  std::string_view rest = dsn.substr(kMysqlScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Fail(error, "query parameters and fragments are not supported");
  }
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return Fail(error, "no user (mysql://user:password@host)");
  const std::string_view user_info = authority.substr(0, at);
  std::string_view host_port = authority.substr(at + 1);

  MysqlDsn parsed;
  const std::size_t colon = user_info.find(':');
  std::optional<std::string> user = PercentDecode(user_info.substr(0, colon));
  std::optional<std::string> password =
      colon == std::string_view::npos ? std::string() : PercentDecode(user_info.substr(colon + 1));
  std::optional<std::string> database = PercentDecode(path);
  if (!user || !password || !database) return Fail(error, "malformed %-escape");
  if (user->empty()) return Fail(error, "empty user");
  parsed.user = std::move(*user);
  parsed.password = std::move(*password);
  parsed.database = std::move(*database);

  std::optional<std::string_view> port_text;             // set when a ':' follows the host
  if (!host_port.empty() && host_port.front() == '[') {  // [IPv6 literal]
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) return Fail(error, "unterminated [IPv6 address]");
    parsed.host = std::string(host_port.substr(1, close - 1));
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Fail(error, "junk after ]");
      port_text = after.substr(1);
    }
  } else {
    const std::size_t port_colon = host_port.find(':');
    parsed.host = std::string(host_port.substr(0, port_colon));
    if (port_colon != std::string_view::npos) port_text = host_port.substr(port_colon + 1);
  }
  if (parsed.host.empty()) return Fail(error, "empty host");
  if (port_text) {
    int port = 0;
    const char* const end = port_text->data() + port_text->size();
    const auto [parsed_end, code] = std::from_chars(port_text->data(), end, port);
    if (port_text->empty() || code != std::errc() || parsed_end != end || port < 1 ||
        port > 65535) {
      return Fail(error, "bad port '" + std::string(*port_text) + "'");
    }
    parsed.port = port;
  }
  return parsed;
}

std::unique_ptr<pqxx::connection> ConnectPostgres(const std::string& dsn) {
  return std::make_unique<pqxx::connection>(dsn);
}

std::unique_ptr<sql::Connection> ConnectMysql(const MysqlDsn& dsn) {
  sql::mysql::MySQL_Driver* driver = sql::mysql::get_mysql_driver_instance();
  const bool ipv6 = dsn.host.find(':') != std::string::npos;
  const std::string url =
      "tcp://" + (ipv6 ? "[" + dsn.host + "]" : dsn.host) + ":" + std::to_string(dsn.port);
  std::unique_ptr<sql::Connection> connection(driver->connect(url, dsn.user, dsn.password));
  if (!dsn.database.empty()) connection->setSchema(dsn.database);
  return connection;
}

pqxx::result ExecPostgres(pqxx::connection& connection, const std::string& statement) {
  pqxx::nontransaction session(connection);
  return session.exec(statement);
}

std::string PostgresSqlstateOf(pqxx::connection& connection, const std::string& statement) {
  try {
    ExecPostgres(connection, statement);
  } catch (const pqxx::sql_error& e) {
    return e.sqlstate().empty() ? "(no sqlstate)" : e.sqlstate();
  }
  return "";
}

std::vector<std::string> PreparedPostgresGids(pqxx::connection& connection,
                                              const std::string& prefix) {
  pqxx::nontransaction session(connection);
  const pqxx::result rows =
      session.exec("SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, " +
                   session.quote(prefix) + ") ORDER BY gid");
  std::vector<std::string> gids;
  for (const auto& row : rows) gids.push_back(row[0].as<std::string>());
  return gids;
}

void ExecMysql(sql::Connection& connection, const std::string& statement) {
  NewStatement(connection)->execute(statement);
}

int MysqlErrorOf(sql::Connection& connection, const std::string& statement) {
  try {
    ExecMysql(connection, statement);
  } catch (const sql::SQLException& e) {
    return e.getErrorCode() != 0 ? e.getErrorCode() : -1;
  }
  return 0;
}

std::string QueryMysqlString(sql::Connection& connection, const std::string& query) {
  std::unique_ptr<sql::ResultSet> rows(NewStatement(connection)->executeQuery(query));
  if (!rows->next()) return "";
  return rows->getString(1).asStdString();
}

std::string XaXidSql(const XaXid& xid) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto hex_literal = [](const std::string& bytes) {
    std::string literal = "X'";
    for (const char c : bytes) {
      const auto byte = static_cast<unsigned char>(c);
      literal.push_back(kHex[byte >> 4]);
      literal.push_back(kHex[byte & 0xf]);
    }
    literal.push_back('\'');
    return literal;
  };
  return hex_literal(xid.gtrid) + "," + hex_literal(xid.bqual) + "," +
         std::to_string(xid.format_id);
}

std::vector<XaXid> RecoverMysqlXids(sql::Connection& connection, const std::string& gtrid_prefix) {
  std::unique_ptr<sql::ResultSet> rows(NewStatement(connection)->executeQuery("XA RECOVER"));
  std::vector<XaXid> xids;
  while (rows->next()) {
    const std::string data = rows->getString("data").asStdString();
    const auto gtrid_length = static_cast<std::size_t>(rows->getInt("gtrid_length"));
    const auto bqual_length = static_cast<std::size_t>(rows->getInt("bqual_length"));
    if (gtrid_length + bqual_length > data.size()) continue;  // not a well-formed row
    XaXid xid{data.substr(0, gtrid_length), data.substr(gtrid_length, bqual_length),
              static_cast<long>(rows->getInt64("formatID"))};
    if (xid.gtrid.starts_with(gtrid_prefix)) xids.push_back(std::move(xid));
  }
  std::sort(xids.begin(), xids.end(), [](const XaXid& a, const XaXid& b) {
    return a.gtrid != b.gtrid ? a.gtrid < b.gtrid : a.bqual < b.bqual;
  });
  return xids;
}

}  // namespace txc::testing
