// The barrier (barrier.h) on MySQL and MariaDB (InnoDB), through Connector/C++ 1.1. The table is
// txc_barrier (migrations/mysql/0001_txc_barrier.sql) in the connection's current database.
//
//   connection.setAutoCommit(false);
//   Result<Verdict> verdict = EnterMysql(connection, key);
//   if (!verdict.ok()) -> connection.rollback(), answer 5xx: the client retries
//   kRun: run the business logic; on its failure connection.rollback() and answer the failure
//   kDuplicate / kEmptyCompensation: connection.commit(), answer success
//   kRefusedAfterCancel: connection.commit(), answer 409
//   connection.commit();
#pragma once

#include <string_view>

#include "coordinator/common/status.h"
#include "tcc/barrier/barrier.h"

namespace sql {
class Connection;
}  // namespace sql

namespace txc::barrier {

// Enters the barrier for `key` in the caller's transaction on `connection`, which must have
// autocommit off (FailedPrecondition otherwise: each barrier row would commit on its own, and a
// rolled-back business change would leave its op recorded as done). The transaction will also
// hold the handler's business changes. The insert waits while another transaction holds a row
// with the same key uncommitted (up to innodb_lock_wait_timeout). Works at every isolation level:
// the row an insert found is read with a locking read, which sees the latest committed version
// even in a REPEATABLE READ snapshot taken before it.
//
// Never throws. Errors, with the database's message: InvalidArgument for a malformed key (the
// database is not touched); FailedPrecondition when txc_barrier does not exist (run the
// migration or EnsureMysqlBarrierTable), the user may not write it, or autocommit is on;
// Aborted for a deadlock or a lock wait timeout (roll back and retry); Unavailable when the
// connection broke; Internal otherwise. After any error, roll the transaction back.
Result<Verdict> EnterMysql(sql::Connection& connection, const BarrierKey& key);

// Creates txc_barrier from migrations/mysql/0001_txc_barrier.sql (compiled into the library; the
// source tree is never read) when the current database does not already have one. CREATE TABLE
// commits the open transaction implicitly, so call it between transactions, e.g. at start-up;
// with autocommit off it ends by committing, so that the connection holds no snapshot from it.
// When the table exists it only looks, so a user without CREATE privilege can call it. Safe to
// call from several processes at once. Never throws.
Status EnsureMysqlBarrierTable(sql::Connection& connection);

// The text of migrations/mysql/0001_txc_barrier.sql as compiled in.
std::string_view MysqlBarrierMigration();

}  // namespace txc::barrier
