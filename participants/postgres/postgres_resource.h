// PostgresResource: a PostgreSQL database taking part in 2PC through PREPARE TRANSACTION
// (libpqxx 6.4). See database/database_resource.h for the contract of each call.
//
// How (shared/NOTES.md):
// - Every call runs on a pooled connection through pqxx::nontransaction, sending BEGIN, the
//   statements (with $1..$n parameters, extended protocol: one statement per text) and
//   PREPARE TRANSACTION '<xid>' as plain statements. Never pqxx::work: its commit() after
//   PREPARE TRANSACTION does not throw and leaves the transaction prepared behind its back.
// - COMMIT PREPARED / ROLLBACK PREPARED run on any connection to this database; SQLSTATE 42704
//   (no such prepared transaction) means already resolved: done.
// - Prepare is idempotent too: BEGIN is sent together with a look-up of the xid in
//   pg_prepared_xacts, so a retry after an Unknown answer finds the branch prepared and says Ok
//   instead of running the statements again (which would wait on the locks of its own prepared
//   twin until the timeout). PREPARE TRANSACTION is sent together with the same look-up, which
//   proves that it prepared something (a statement that ended the transaction would make it a
//   no-op that only warns).
// - libpqxx 6.4 silently reconnects a broken connection on its next use; a new session would run
//   the rest of a branch outside its transaction. Reactivation is therefore switched off, and a
//   broken connection is discarded.
// - Timeouts: waiting for a connection and connecting are bounded by the call's deadline; every
//   statement by statement_timeout = the call's timeout (set per session when it changes); the
//   deadline is checked again between statements. A call may therefore take up to about twice its
//   timeout in the worst case (a statement started just before the deadline).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"
#include "participants/database/connection_pool.h"
#include "participants/database/database_resource.h"

namespace txc::participants::postgres {

struct PostgresResourceOptions {
  std::string name;     // the resource's name in the configuration; starts every message
  std::string dsn;      // libpq URI (postgresql://...) or key=value conninfo; never logged
  std::string node_id;  // this coordinator's node_id, part of every xid
  std::size_t pool_size_max = 8;      // connections open at once, at most
  std::size_t in_doubt_max = 10'000;  // ListInDoubt answers at most this many, oldest first
};

// CheckReady's verdict on the server's max_prepared_transactions: Ok when positive, otherwise
// FailedPrecondition saying what to change and that PostgreSQL must be restarted.
Status MaxPreparedTransactionsStatus(std::string_view resource_name,
                                     int64_t max_prepared_transactions);

class PostgresResource final : public database::DatabaseResource {
 public:
  // Validates the options (node_id, pool size); does not connect (CheckReady does).
  static Result<std::unique_ptr<PostgresResource>> Create(PostgresResourceOptions options);
  ~PostgresResource() override;

  const std::string& name() const override { return options_.name; }
  Status CheckReady(std::chrono::milliseconds timeout) override;
  CallResult Prepare(std::string_view gid, uint32_t branch_index,
                     std::span<const database::Statement> statements,
                     std::chrono::milliseconds timeout) override;
  CallResult CommitPrepared(std::string_view gid, uint32_t branch_index,
                            std::chrono::milliseconds timeout) override;
  CallResult RollbackPrepared(std::string_view gid, uint32_t branch_index,
                              std::chrono::milliseconds timeout) override;
  CallResult CommitOnePhase(std::string_view gid, uint32_t branch_index,
                            std::span<const database::Statement> statements,
                            std::chrono::milliseconds timeout) override;
  Result<std::vector<database::InDoubtXid>> ListInDoubt(std::chrono::milliseconds timeout) override;

  // Connections open now (idle + in use), for tests and metrics.
  std::size_t OpenConnections() const;

 private:
  struct Connection;
  struct CallState;
  using Pool = database::ConnectionPool<Connection>;
  using Clock = std::chrono::steady_clock;
  template <typename T>
  struct Attempt;

  explicit PostgresResource(PostgresResourceOptions options);
  Result<std::unique_ptr<Connection>> Connect(Clock::time_point deadline) const;
  template <typename T, typename Body>
  Attempt<T> WithSession(Clock::time_point deadline, Body&& body);
  CallResult FinishCall(Attempt<CallResult> attempt) const;
  CallResult ResolvePrepared(std::string_view gid, uint32_t branch_index, bool commit,
                             std::chrono::milliseconds timeout);
  CallResult RunLocalTransaction(std::string_view gid, uint32_t branch_index,
                                 std::span<const database::Statement> statements,
                                 std::chrono::milliseconds timeout, bool prepare);
  std::string Where(std::string_view what) const;

  const PostgresResourceOptions options_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace txc::participants::postgres
