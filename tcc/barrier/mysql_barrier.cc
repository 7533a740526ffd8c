#include "tcc/barrier/mysql_barrier.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tcc/barrier/barrier_store.h"
#include "txc_barrier_migrations.h"

namespace txc::barrier {
namespace {

using internal::DescribeKey;

constexpr const char* kMissingTableHint =
    " (create the table: run migrations/mysql/0001_txc_barrier.sql, or call "
    "EnsureMysqlBarrierTable)";

// https://mariadb.com/kb/en/mariadb-error-code-reference/,
// https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
constexpr int kNoSuchTable = 1146;        // ER_NO_SUCH_TABLE
constexpr int kNoDatabase = 1046;         // ER_NO_DB_ERROR: no database selected
constexpr int kTableAccessDenied = 1142;  // ER_TABLEACCESS_DENIED_ERROR
constexpr int kDbAccessDenied = 1044;     // ER_DBACCESS_DENIED_ERROR
constexpr int kLockWaitTimeout = 1205;    // ER_LOCK_WAIT_TIMEOUT
constexpr int kDeadlock = 1213;           // ER_LOCK_DEADLOCK
constexpr int kStatementTimeout = 1969;   // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
constexpr int kQueryTimeout = 3024;       // ER_QUERY_TIMEOUT (MySQL max_execution_time)
constexpr int kServerShutdown = 1053;     // ER_SERVER_SHUTDOWN
constexpr int kConnectionKilled = 1927;   // ER_CONNECTION_KILLED

// The error the exception being handled stands for, prefixed with `what` (the step and key).
Status CurrentMysqlError(const std::string& what) {
  try {
    throw;
  } catch (const sql::SQLException& error) {
    const int code = error.getErrorCode();
    std::string message = what + ": ";
    if (code != 0) {
      message += "MySQL error " + std::to_string(code);
      const std::string sqlstate = error.getSQLState();
      if (!sqlstate.empty()) message += " (SQLSTATE " + sqlstate + ")";
      message += ": ";
    }
    message += internal::OneLine(error.what());
    if (code == kNoSuchTable) return Status::FailedPrecondition(message + kMissingTableHint);
    if (code == kNoDatabase || code == kTableAccessDenied || code == kDbAccessDenied) {
      return Status::FailedPrecondition(message);
    }
    // A deadlock rolls the whole transaction back, a lock wait timeout the statement: either way
    // nothing was decided, and the caller rolls back and retries.
    if (code == kLockWaitTimeout || code == kDeadlock || code == kStatementTimeout ||
        code == kQueryTimeout) {
      return Status::Aborted(message);
    }
    // 2000-2999 are the client library's own errors (2006 server gone, 2013 lost connection...).
    if ((code >= 2000 && code <= 2999) || code == kServerShutdown || code == kConnectionKilled) {
      return Status::Unavailable(message);
    }
    return Status::Internal(message);
  } catch (const std::exception& error) {
    return Status::Internal(what + ": " + internal::OneLine(error.what()));
  } catch (...) {
    return Status::Internal(what + ": an exception of unknown type");
  }
}

class MysqlStore final : public internal::BarrierStore {
 public:
  explicit MysqlStore(sql::Connection& connection) : connection_(connection) {}

  Result<bool> InsertIfAbsent(const BarrierKey& key, BarrierOp op, BarrierOp origin) override {
    try {
      // IGNORE turns the duplicate key into a warning and 0 affected rows. It would also let
      // through values the columns cannot hold, which CheckBarrierKey has already excluded.
      // UTC_TIMESTAMP: created_at is a DATETIME, which keeps no time zone.
      const std::unique_ptr<sql::PreparedStatement> insert(connection_.prepareStatement(
          "INSERT IGNORE INTO txc_barrier (gid, branch, op, origin, created_at) "
          "VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))"));
      insert->setString(1, key.gid);
      insert->setString(2, key.branch);
      insert->setString(3, BarrierOpName(op));
      insert->setString(4, BarrierOpName(origin));
      return insert->executeUpdate() == 1;
    } catch (...) {
      return CurrentMysqlError("txc_barrier: insert " + std::string(BarrierOpName(op)) +
                               " row for " + DescribeKey(key));
    }
  }

  Result<std::optional<std::string>> ReadOrigin(const BarrierKey& key, BarrierOp op) override {
    try {
      // A locking read: under REPEATABLE READ a plain SELECT reads the transaction's snapshot,
      // which may predate the commit of the row the insert found. LOCK IN SHARE MODE is the
      // spelling both MySQL and MariaDB accept.
      const std::unique_ptr<sql::PreparedStatement> select(connection_.prepareStatement(
          "SELECT origin FROM txc_barrier WHERE gid = ? AND branch = ? AND op = ? "
          "LOCK IN SHARE MODE"));
      select->setString(1, key.gid);
      select->setString(2, key.branch);
      select->setString(3, BarrierOpName(op));
      const std::unique_ptr<sql::ResultSet> rows(select->executeQuery());
      if (!rows->next()) return std::optional<std::string>();
      return std::optional<std::string>(std::string(rows->getString(1)));
    } catch (...) {
      return CurrentMysqlError("txc_barrier: read " + std::string(BarrierOpName(op)) + " row for " +
                               DescribeKey(key));
    }
  }

 private:
  sql::Connection& connection_;
};

// The migration as one statement: without the client flag for several statements the server
// refuses text after the first statement's semicolon.
std::string AsOneStatement(std::string_view text) {
  while (!text.empty() && (text.back() == ';' || text.back() == ' ' || text.back() == '\n' ||
                           text.back() == '\r' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

}  // namespace

Result<Verdict> EnterMysql(sql::Connection& connection, const BarrierKey& key) {
  TXC_RETURN_IF_ERROR(CheckBarrierKey(key));
  try {
    if (connection.getAutoCommit()) {
      return Status::FailedPrecondition(
          "txc_barrier: " + DescribeKey(key) +
          ": the connection has autocommit on; the barrier must run in the caller's transaction "
          "(setAutoCommit(false))");
    }
  } catch (...) {
    return CurrentMysqlError("txc_barrier: " + DescribeKey(key) + ": read autocommit");
  }
  MysqlStore store(connection);
  return internal::Enter(store, key);
}

Status EnsureMysqlBarrierTable(sql::Connection& connection) {
  try {
    const std::unique_ptr<sql::Statement> statement(connection.createStatement());
    bool exists = false;
    {
      const std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(
          "SELECT COUNT(*) FROM information_schema.TABLES "
          "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'txc_barrier'"));
      exists = rows->next() && rows->getInt64(1) > 0;
    }
    // IF NOT EXISTS in the text covers another process creating it since the look.
    if (!exists) statement->execute(AsOneStatement(MysqlBarrierMigration()));
    if (!connection.getAutoCommit()) connection.commit();
    return Status::Ok();
  } catch (...) {
    return CurrentMysqlError("txc_barrier: create the table");
  }
}

std::string_view MysqlBarrierMigration() { return kMysqlBarrierMigration; }

}  // namespace txc::barrier
