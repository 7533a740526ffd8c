#include "tcc/barrier/postgres_barrier.h"

#include <pqxx/except>
#include <pqxx/result>
#include <pqxx/transaction>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "tcc/barrier/barrier_store.h"
#include "txc_barrier_migrations.h"

namespace txc::barrier {
namespace {

using internal::DescribeKey;

constexpr const char* kMissingTableHint =
    " (create the table: run migrations/postgres/0001_txc_barrier.sql, or call "
    "EnsurePostgresBarrierTable)";

// The server's message without what repeats the statement: libpq's text is "ERROR:  <message>"
// followed by lines that quote the statement ("LINE 1: INSERT ...") and point into it.
std::string ServerMessage(const std::exception& error) {
  std::string_view text = error.what();
  text = text.substr(0, text.find('\n'));
  if (text.starts_with("ERROR:")) text.remove_prefix(6);
  return internal::OneLine(text);
}

// The error the exception being handled stands for, prefixed with `what` (the step and key).
// libpqxx 6.4 reports connection loss and the transaction_rollback family by type, without a
// SQLSTATE, so the type is looked at before the code.
Status CurrentPostgresError(const std::string& what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& error) {
    return Status::Unavailable(what + ": connection lost: " + ServerMessage(error));
  } catch (const pqxx::in_doubt_error& error) {
    return Status::Unavailable(what + ": " + ServerMessage(error));
  } catch (const pqxx::statement_completion_unknown& error) {
    return Status::Unavailable(what + ": " + ServerMessage(error));
  } catch (const pqxx::transaction_rollback& error) {
    // 40001 serialization_failure, 40P01 deadlock_detected: rolled back; a retry may succeed.
    return Status::Aborted(what + ": " + ServerMessage(error));
  } catch (const pqxx::sql_error& error) {
    const std::string& sqlstate = error.sqlstate();
    std::string message = what + ": ";
    if (!sqlstate.empty()) message += "SQLSTATE " + sqlstate + ": ";
    message += ServerMessage(error);
    // 42P01 undefined_table.
    if (sqlstate == "42P01") return Status::FailedPrecondition(message + kMissingTableHint);
    // 42501 insufficient_privilege; 25P02 in_failed_sql_transaction (the caller's transaction
    // had failed before the barrier was entered).
    if (sqlstate == "42501" || sqlstate == "25P02") return Status::FailedPrecondition(message);
    // 55P03 lock_not_available (lock_timeout), 57014 query_canceled (statement_timeout).
    if (sqlstate == "55P03" || sqlstate == "57014") return Status::Aborted(message);
    // Class 08 connection_exception, 57P01-57P03 the server is shutting down or starting.
    if (sqlstate.starts_with("08") || sqlstate.starts_with("57P")) {
      return Status::Unavailable(message);
    }
    return Status::Internal(message);
  } catch (const pqxx::usage_error& error) {
    // E.g. a transaction object that was already committed or aborted.
    return Status::FailedPrecondition(what + ": " + ServerMessage(error));
  } catch (const std::exception& error) {
    return Status::Internal(what + ": " + ServerMessage(error));
  } catch (...) {
    return Status::Internal(what + ": an exception of unknown type");
  }
}

// Statements go through exec with quoted values, never exec_params: libpqxx 6.4's exec_params
// skips the transaction object's state check, so after the transaction was aborted (a failed
// statement of the caller's) or committed it would run the insert on the bare connection, in a
// transaction of its own that commits at once, recording the op as done although the caller's
// business changes are gone. exec refuses instead (pqxx::usage_error). The values are
// [A-Za-z0-9._-] (CheckBarrierKey) and quote() escapes them anyway.
class PostgresStore final : public internal::BarrierStore {
 public:
  explicit PostgresStore(pqxx::transaction_base& txn) : txn_(txn) {}

  Result<bool> InsertIfAbsent(const BarrierKey& key, BarrierOp op, BarrierOp origin) override {
    try {
      // The conflict target is the primary key: any other error (a CHECK, a missing column)
      // still fails instead of passing for a duplicate.
      const pqxx::result result = txn_.exec(
          "INSERT INTO txc_barrier (gid, branch, op, origin) VALUES (" + txn_.quote(key.gid) +
          ", " + txn_.quote(key.branch) + ", " + txn_.quote(BarrierOpName(op)) + ", " +
          txn_.quote(BarrierOpName(origin)) + ") ON CONFLICT (gid, branch, op) DO NOTHING");
      return result.affected_rows() == 1;
    } catch (...) {
      return CurrentPostgresError("txc_barrier: insert " + std::string(BarrierOpName(op)) +
                                  " row for " + DescribeKey(key));
    }
  }

  Result<std::optional<std::string>> ReadOrigin(const BarrierKey& key, BarrierOp op) override {
    try {
      // At READ COMMITTED this statement's snapshot is taken after the insert's wait, so it sees
      // the row that made the insert do nothing.
      const pqxx::result result = txn_.exec(
          "SELECT origin FROM txc_barrier WHERE gid = " + txn_.quote(key.gid) +
          " AND branch = " + txn_.quote(key.branch) + " AND op = " + txn_.quote(BarrierOpName(op)));
      if (result.empty()) return std::optional<std::string>();
      return std::optional<std::string>(result[0][0].as<std::string>());
    } catch (...) {
      return CurrentPostgresError("txc_barrier: read " + std::string(BarrierOpName(op)) +
                                  " row for " + DescribeKey(key));
    }
  }

 private:
  pqxx::transaction_base& txn_;
};

Result<bool> TableExists(pqxx::connection& connection) {
  try {
    pqxx::read_transaction txn(connection, "txc_barrier_exists");
    // to_regclass resolves the name through the search_path, as the barrier's statements do.
    const pqxx::result result = txn.exec("SELECT to_regclass('txc_barrier') IS NOT NULL");
    return result[0][0].as<bool>();
  } catch (...) {
    return CurrentPostgresError("txc_barrier: look for the table");
  }
}

}  // namespace

Result<Verdict> EnterPostgres(pqxx::transaction_base& txn, const BarrierKey& key) {
  PostgresStore store(txn);
  return internal::Enter(store, key);
}

Status EnsurePostgresBarrierTable(pqxx::connection& connection) {
  Result<bool> exists = TableExists(connection);
  if (!exists.ok()) return exists.status();
  if (*exists) return Status::Ok();
  Status created;
  try {
    pqxx::work txn(connection, "txc_barrier_create");
    txn.exec(std::string(PostgresBarrierMigration()));
    txn.commit();
  } catch (...) {
    created = CurrentPostgresError("txc_barrier: create the table");
  }
  if (created.ok()) return created;
  // CREATE TABLE IF NOT EXISTS is not safe against itself: of two sessions creating the table at
  // once, one can fail (23505 on pg_type's unique index). Then the table is there all the same.
  Result<bool> exists_now = TableExists(connection);
  if (exists_now.ok() && *exists_now) return Status::Ok();
  return created;
}

std::string_view PostgresBarrierMigration() { return kPostgresBarrierMigration; }

}  // namespace txc::barrier
