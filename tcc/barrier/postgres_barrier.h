// The barrier (barrier.h) on PostgreSQL, through libpqxx 6.4. The table is txc_barrier
// (migrations/postgres/0001_txc_barrier.sql), found through the connection's search_path.
//
//   pqxx::work txn(connection);
//   Result<Verdict> verdict = EnterPostgres(txn, key);
//   if (!verdict.ok()) -> roll back (txn's destructor does), answer 5xx: the client retries
//   kRun: run the business logic in txn; on its failure roll back and answer the failure
//   kDuplicate / kEmptyCompensation: commit, answer success
//   kRefusedAfterCancel: commit, answer 409
//   txn.commit();
#pragma once

#include <pqxx/connection>
#include <pqxx/transaction_base>

#include <string_view>

#include "coordinator/common/status.h"
#include "tcc/barrier/barrier.h"

namespace txc::barrier {

// Enters the barrier for `key` inside `txn`: the transaction that will also hold the handler's
// business changes (a pqxx::work, or a pqxx::nontransaction after the caller sent BEGIN). The
// insert waits while another transaction holds a row with the same key uncommitted. Works at
// READ COMMITTED (PostgreSQL's default); at REPEATABLE READ or SERIALIZABLE a concurrent request
// with the same key makes it fail with a serialization error instead of waiting.
//
// Never throws. Errors, with the database's message: InvalidArgument for a malformed key (the
// database is not touched); FailedPrecondition when txc_barrier does not exist (run the
// migration or EnsurePostgresBarrierTable), the user may not write it, or the transaction had
// already failed; Aborted for a deadlock, serialization failure or timeout (roll back and
// retry); Unavailable when the connection broke; Internal otherwise. After any error other than
// InvalidArgument, PostgreSQL has aborted the transaction: roll it back.
Result<Verdict> EnterPostgres(pqxx::transaction_base& txn, const BarrierKey& key);

// Creates txc_barrier from migrations/postgres/0001_txc_barrier.sql (compiled into the library;
// the source tree is never read) when the search_path does not already show one, in a
// transaction of its own: call it with no transaction open on `connection`, e.g. at start-up.
// When the table exists it only looks, so a user without CREATE privilege can call it. Safe to
// call from several processes at once. Never throws.
Status EnsurePostgresBarrierTable(pqxx::connection& connection);

// The text of migrations/postgres/0001_txc_barrier.sql as compiled in.
std::string_view PostgresBarrierMigration();

}  // namespace txc::barrier
