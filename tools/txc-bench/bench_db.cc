#include "tools/txc-bench/bench_db.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <pqxx/pqxx>

namespace txc::bench {
namespace {

std::string FirstLine(const std::string& text) {
  const size_t end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

sql::mysql::MySQL_Driver* MysqlDriver() {
  static sql::mysql::MySQL_Driver* driver = sql::mysql::get_mysql_driver_instance();
  return driver;
}

}  // namespace

std::string DescribeException(const std::exception& e) {
  if (const auto* sql_error = dynamic_cast<const sql::SQLException*>(&e)) {
    return "MariaDB error " + std::to_string(sql_error->getErrorCode()) + " (" +
           sql_error->getSQLStateCStr() + "): " + FirstLine(e.what());
  }
  if (const auto* pg_error = dynamic_cast<const pqxx::sql_error*>(&e)) {
    return "PostgreSQL error " + pg_error->sqlstate() + ": " + FirstLine(e.what());
  }
  return FirstLine(e.what());
}

void InitMysqlDriver() { MysqlDriver(); }

MysqlThread::MysqlThread() { MysqlDriver()->threadInit(); }

MysqlThread::~MysqlThread() { MysqlDriver()->threadEnd(); }

std::unique_ptr<sql::Connection> ConnectMysql(const participants::mysql::MysqlDsn& dsn) {
  sql::ConnectOptionsMap options;
  options["hostName"] = sql::SQLString(dsn.ConnectorHostName());
  options["userName"] = sql::SQLString(dsn.user);
  options["password"] = sql::SQLString(dsn.password);
  if (!dsn.database.empty()) options["schema"] = sql::SQLString(dsn.database);
  options["OPT_CONNECT_TIMEOUT"] = 10;
  options["OPT_READ_TIMEOUT"] = 120;
  options["OPT_WRITE_TIMEOUT"] = 120;
  options["OPT_RECONNECT"] = false;  // a silent reconnect would lose the session's transaction
  options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  return std::unique_ptr<sql::Connection>(MysqlDriver()->connect(options));
}

void MysqlExecute(sql::Connection& connection, const std::string& text) {
  std::unique_ptr<sql::Statement> statement(connection.createStatement());
  if (statement->execute(text)) std::unique_ptr<sql::ResultSet>(statement->getResultSet());
}

std::string WithConnectTimeout(const std::string& dsn) {
  if (dsn.find("connect_timeout") != std::string::npos) return dsn;
  if (dsn.starts_with("postgresql://") || dsn.starts_with("postgres://")) {
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=10";
  }
  return dsn + " connect_timeout=10";
}

}  // namespace txc::bench
