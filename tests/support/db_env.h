// Connections to the throwaway database servers that scripts/dbs.sh starts for the integration,
// e2e and chaos tests. scripts/test.sh exports their DSNs:
//   TXC_TEST_PG_DSN=postgresql://user:password@127.0.0.1:PORT/db   (any libpq URI or conninfo)
//   TXC_TEST_MYSQL_DSN=mysql://user:password@127.0.0.1:PORT/db
// Tests read them with TXC_REQUIRE_ENV (tests/support/test_env.h), which fails when one is unset.
#pragma once

#include <pqxx/pqxx>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sql {
class Connection;
}  // namespace sql

namespace txc::testing {

// The parts of `mysql://user[:password]@host[:port][/database]`; user, password and database
// are percent-decoded.
struct MysqlDsn {
  std::string host;
  int port = 3306;
  std::string user;
  std::string password;
  std::string database;
};

// Parses a mysql:// DSN. On a malformed one returns nullopt and says why in *error.
std::optional<MysqlDsn> ParseMysqlDsn(std::string_view dsn, std::string* error);

// Opens a PostgreSQL connection. Throws pqxx::broken_connection when the server is unreachable.
std::unique_ptr<pqxx::connection> ConnectPostgres(const std::string& dsn);

// Opens a MySQL/MariaDB connection over TCP and selects dsn.database (when not empty).
// Throws sql::SQLException.
std::unique_ptr<sql::Connection> ConnectMysql(const MysqlDsn& dsn);

// Runs one statement outside any pqxx transaction object (the way 2PC statements must run:
// BEGIN, PREPARE TRANSACTION and COMMIT PREPARED are sent as plain statements).
pqxx::result ExecPostgres(pqxx::connection& connection, const std::string& statement);

// The SQLSTATE `statement` fails with on `connection`, or "" when it succeeds.
std::string PostgresSqlstateOf(pqxx::connection& connection, const std::string& statement);

// The gids in pg_prepared_xacts (all databases) that start with `prefix`, sorted.
std::vector<std::string> PreparedPostgresGids(pqxx::connection& connection,
                                              const std::string& prefix);

// Runs one statement that returns no rows.
void ExecMysql(sql::Connection& connection, const std::string& statement);

// The MySQL error code `statement` fails with on `connection`, or 0 when it succeeds.
int MysqlErrorOf(sql::Connection& connection, const std::string& statement);

// The first column of the first row of `query`, as a string ("" when there is no row).
std::string QueryMysqlString(sql::Connection& connection, const std::string& query);

// One XA transaction identifier.
struct XaXid {
  std::string gtrid;
  std::string bqual;
  long format_id = 1;

  bool operator==(const XaXid&) const = default;
};

// The xid as SQL: X'<gtrid hex>',X'<bqual hex>',<formatID>, safe for any bytes.
std::string XaXidSql(const XaXid& xid);

// The prepared branches that `XA RECOVER` lists and whose gtrid starts with `gtrid_prefix`,
// split into gtrid and bqual by the gtrid_length and bqual_length columns.
std::vector<XaXid> RecoverMysqlXids(sql::Connection& connection, const std::string& gtrid_prefix);

}  // namespace txc::testing
