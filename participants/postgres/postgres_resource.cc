#include "participants/postgres/postgres_resource.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "coordinator/common/check.h"
#include "participants/database/error_mapping.h"
#include "participants/database/xid.h"

namespace txc::participants::postgres {
namespace {

using database::CheckBranchStatement;
using database::DatabaseError;
using database::DatabaseErrorKind;
using database::DatabaseStage;
using database::InDoubtXid;
using database::Statement;
using database::StatementName;
using database::StatementParam;

// A parameter in libpq's text format; nullopt is SQL NULL. libpqxx passes text parameters as C
// strings, so a NUL byte would silently cut the value short: such a parameter is refused (a
// PostgreSQL text value cannot hold NUL anyway).
using TextParam = std::optional<std::string>;

Result<TextParam> ToTextParam(const StatementParam& param) {
  return std::visit(
      [](const auto& value) -> Result<TextParam> {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return TextParam();
        } else if constexpr (std::is_same_v<T, bool>) {
          return TextParam(value ? "true" : "false");
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return TextParam(std::to_string(value));
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isnan(value)) return TextParam("NaN");
          if (std::isinf(value)) return TextParam(value > 0 ? "Infinity" : "-Infinity");
          char buffer[64];
          // Shortest text that reads back as the same double.
          const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
          TXC_CHECK(error == std::errc(), "64 bytes hold any double");
          return TextParam(std::string(buffer, end));
        } else {
          static_assert(std::is_same_v<T, std::string>);
          if (value.find('\0') != std::string::npos) {
            return Status::InvalidArgument("a string parameter contains a NUL byte");
          }
          return TextParam(value);
        }
      },
      param);
}

// The statements' parameters in text form, or the reason one of them cannot be sent.
Result<std::vector<std::vector<TextParam>>> ToTextParams(std::span<const Statement> statements) {
  std::vector<std::vector<TextParam>> all;
  all.reserve(statements.size());
  for (std::size_t i = 0; i < statements.size(); ++i) {
    TXC_RETURN_IF_ERROR(CheckBranchStatement(statements[i], i));
    std::vector<TextParam> params;
    params.reserve(statements[i].params.size());
    for (std::size_t j = 0; j < statements[i].params.size(); ++j) {
      Result<TextParam> param = ToTextParam(statements[i].params[j]);
      if (!param.ok()) {
        return Status::InvalidArgument(StatementName(i) + " parameter " + std::to_string(j + 1) +
                                       ": " + param.status().message());
      }
      params.push_back(std::move(*param));
    }
    all.push_back(std::move(params));
  }
  return all;
}

// libpq's connect_timeout, in whole seconds (libpq's unit), from the time left; libpq treats
// values below 2 as 2.
int64_t ConnectTimeoutSeconds(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
  return std::max<int64_t>(2, left.count());
}

bool IsUri(std::string_view dsn) {
  return dsn.starts_with("postgresql://") || dsn.starts_with("postgres://");
}

// The DSN with connect_timeout and application_name added (unless it sets them itself).
std::string ConninfoFor(const std::string& dsn, int64_t connect_timeout_s,
                        const std::string& node_id) {
  std::string conninfo = dsn;
  const auto add = [&](const std::string& key, const std::string& value) {
    if (dsn.find(key + "=") != std::string::npos) return;
    if (IsUri(dsn)) {
      conninfo += conninfo.find('?') == std::string::npos ? "?" : "&";
    } else {
      conninfo += " ";
    }
    conninfo += key + "=" + value;  // both values are [A-Za-z0-9_-]: no quoting needed
  };
  add("connect_timeout", std::to_string(connect_timeout_s));
  add("application_name", "txc-" + node_id);
  return conninfo;
}

DatabaseError ClassifyCurrentException() {
  try {
    throw;
  } catch (const std::exception& error) {
    return database::ClassifyPostgresException(error);
  } catch (...) {
    return DatabaseError{DatabaseErrorKind::kOther, "", "an exception of unknown type"};
  }
}

std::string XidLookupQuery(const std::string& xid_literal) {
  return "SELECT count(*) FROM pg_prepared_xacts WHERE gid = " + xid_literal;
}

int64_t SingleCount(const pqxx::result& result) {
  TXC_CHECK(result.size() == 1 && result.columns() == 1, "count(*) answers one row, one column");
  return result[0][0].as<int64_t>();
}

}  // namespace

Status MaxPreparedTransactionsStatus(std::string_view resource_name,
                                     int64_t max_prepared_transactions) {
  if (max_prepared_transactions > 0) return Status::Ok();
  return Status::FailedPrecondition(
      "resource " + std::string(resource_name) + " (PostgreSQL): max_prepared_transactions is " +
      std::to_string(max_prepared_transactions) +
      ", so PREPARE TRANSACTION is disabled and this database cannot take part in 2PC. Set "
      "max_prepared_transactions in postgresql.conf to at least the number of 2PC branches that "
      "may be prepared at once on it (max_connections is a safe choice) and restart PostgreSQL");
}

struct PostgresResource::Connection {
  std::unique_ptr<pqxx::connection> session;
  int64_t statement_timeout_ms = -1;  // the session's statement_timeout as we last set it

  // Sets statement_timeout for the session when it differs from what was set last. Must run
  // outside a transaction block: a SET inside one would be undone by its ROLLBACK.
  void SetStatementTimeout(pqxx::nontransaction& tx, std::chrono::milliseconds timeout) {
    // At least 1 ms: 0 would switch the limit off.
    const int64_t timeout_ms = std::max<int64_t>(1, timeout.count());
    if (statement_timeout_ms == timeout_ms) return;
    tx.exec("SET statement_timeout = " + std::to_string(timeout_ms));
    statement_timeout_ms = timeout_ms;
  }
};

// What one attempt was doing; read when it fails.
struct PostgresResource::CallState {
  DatabaseStage stage = DatabaseStage::kBegin;
  std::string what;             // what was running, for the reason ("sql[2]")
  bool in_transaction = false;  // a BEGIN is open: roll it back when something fails
  // Nothing was sent yet that had an effect, or what was sent is idempotent: after a lost
  // connection the attempt may be repeated on a fresh one.
  bool retry_safe = true;
};

template <typename T>
struct PostgresResource::Attempt {
  std::optional<T> value;
  Status connect_failure;              // set when no connection could be had
  std::optional<DatabaseError> error;  // set when the body failed
  CallState state;
};

PostgresResource::PostgresResource(PostgresResourceOptions options) : options_(std::move(options)) {
  pool_ = std::make_unique<Pool>(options_.pool_size_max,
                                 [this](Clock::time_point deadline) { return Connect(deadline); });
}

PostgresResource::~PostgresResource() = default;

Result<std::unique_ptr<PostgresResource>> PostgresResource::Create(
    PostgresResourceOptions options) {
  if (options.name.empty()) return Status::InvalidArgument("a PostgreSQL resource needs a name");
  const std::string where = "resource " + options.name + " (PostgreSQL)";
  if (Status status = database::ValidateNodeId(options.node_id); !status.ok()) {
    return Status::InvalidArgument(where + ": " + status.message());
  }
  if (options.dsn.empty()) return Status::InvalidArgument(where + ": dsn is empty");
  if (options.pool_size_max == 0) {
    return Status::InvalidArgument(where + ": pool_size_max must be at least 1");
  }
  if (options.in_doubt_max == 0) {
    return Status::InvalidArgument(where + ": in_doubt_max must be at least 1");
  }
  return std::unique_ptr<PostgresResource>(new PostgresResource(std::move(options)));
}

std::string PostgresResource::Where(std::string_view what) const {
  std::string where = "resource " + options_.name + " (PostgreSQL)";
  if (!what.empty()) where += ": " + std::string(what);
  return where;
}

std::size_t PostgresResource::OpenConnections() const { return pool_->counts().open; }

Result<std::unique_ptr<PostgresResource::Connection>> PostgresResource::Connect(
    Clock::time_point deadline) const {
  try {
    auto connection = std::make_unique<Connection>();
    connection->session = std::make_unique<pqxx::connection>(
        ConninfoFor(options_.dsn, ConnectTimeoutSeconds(deadline), options_.node_id));
    // libpqxx 6.4 reconnects a broken connection by itself on its next use; for us that would
    // run the rest of a branch on a new session, outside the branch's transaction. The only
    // switch is deprecated (libpqxx 7 drops reactivation altogether).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    connection->session->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    return connection;
  } catch (...) {
    DatabaseError error = ClassifyCurrentException();
    // Whatever breaks while opening a session is a failure to connect (libpq gives no SQLSTATE
    // for refused connections or bad passwords), unless the server said more precisely.
    if (error.kind == DatabaseErrorKind::kConnectionLost)
      error.kind = DatabaseErrorKind::kConnectFailed;
    return database::ToStatus(error, Where("connect"));
  }
}

// Runs `body(connection, state)` on a pooled connection. A database error thrown by the body is
// classified; the open transaction (state.in_transaction) is rolled back, or the connection
// discarded when it broke or cannot be rolled back. One retry on a fresh connection when a
// reused one turned out dead while retrying was safe (state.retry_safe): after a server restart
// every idle connection is stale, and each call would otherwise fail once for it.
template <typename T, typename Body>
PostgresResource::Attempt<T> PostgresResource::WithSession(Clock::time_point deadline,
                                                           Body&& body) {
  for (int attempt_number = 1;; ++attempt_number) {
    Attempt<T> attempt;
    Result<Pool::Lease> lease = pool_->Acquire(deadline);
    if (!lease.ok()) {
      attempt.connect_failure = lease.status();
      return attempt;
    }
    try {
      attempt.value.emplace(body(**lease, attempt.state));
      return attempt;
    } catch (...) {
      attempt.error = ClassifyCurrentException();
    }
    const DatabaseError& error = *attempt.error;
    if (database::MustDiscardConnection(error)) {
      lease->Discard();
      if (error.kind == DatabaseErrorKind::kConnectionLost) pool_->DiscardIdle();
    } else if (attempt.state.in_transaction) {
      try {
        pqxx::nontransaction tx(*(*lease)->session);
        tx.exec("ROLLBACK");
      } catch (...) {
        lease->Discard();  // its state is unknown now
      }
    }
    const bool retry = error.kind == DatabaseErrorKind::kConnectionLost && lease->reused() &&
                       attempt.state.retry_safe && attempt_number == 1 && Clock::now() < deadline;
    if (!retry) return attempt;
  }
}

CallResult PostgresResource::FinishCall(Attempt<CallResult> attempt) const {
  if (attempt.value) return std::move(*attempt.value);
  if (!attempt.error) return database::ConnectFailureToCallResult(attempt.connect_failure);
  return database::ToCallResult(*attempt.error, attempt.state.stage, Where(attempt.state.what));
}

Status PostgresResource::CheckReady(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  Attempt<Status> attempt =
      WithSession<Status>(deadline, [&](Connection& connection, CallState& state) {
        state.what = "SHOW max_prepared_transactions";
        pqxx::nontransaction tx(*connection.session);
        connection.SetStatementTimeout(tx, timeout);
        const pqxx::result result = tx.exec("SHOW max_prepared_transactions");
        return MaxPreparedTransactionsStatus(options_.name, result.at(0).at(0).as<int64_t>());
      });
  if (attempt.value) return std::move(*attempt.value);
  if (!attempt.error) return attempt.connect_failure;
  return database::ToStatus(*attempt.error, Where(attempt.state.what));
}

CallResult PostgresResource::Prepare(std::string_view gid, uint32_t branch_index,
                                     std::span<const Statement> statements,
                                     std::chrono::milliseconds timeout) {
  return RunLocalTransaction(gid, branch_index, statements, timeout, /*prepare=*/true);
}

CallResult PostgresResource::CommitOnePhase(std::string_view gid, uint32_t branch_index,
                                            std::span<const Statement> statements,
                                            std::chrono::milliseconds timeout) {
  return RunLocalTransaction(gid, branch_index, statements, timeout, /*prepare=*/false);
}

CallResult PostgresResource::RunLocalTransaction(std::string_view gid, uint32_t branch_index,
                                                 std::span<const Statement> statements,
                                                 std::chrono::milliseconds timeout, bool prepare) {
  const Clock::time_point deadline = Clock::now() + timeout;
  Result<std::string> xid = database::PostgresXid(options_.node_id, gid, branch_index);
  if (!xid.ok()) return CallResult::Permanent(Where("") + ": " + xid.status().message());
  Result<std::vector<std::vector<TextParam>>> params = ToTextParams(statements);
  if (!params.ok()) return CallResult::Refused(Where("") + ": " + params.status().message());
  const std::string xid_literal = database::PostgresStringLiteral(*xid);

  Attempt<CallResult> attempt =
      WithSession<CallResult>(deadline, [&](Connection& connection, CallState& state) {
        state.what = prepare ? "BEGIN (xid " + *xid + ")" : "BEGIN (one-phase)";
        pqxx::nontransaction tx(*connection.session);
        connection.SetStatementTimeout(tx, timeout);
        // BEGIN and the look-up travel together: one round trip. An xid already prepared means
        // an earlier attempt of this branch got as far as PREPARE TRANSACTION and its answer was
        // lost: the vote is yes already.
        state.in_transaction = true;
        if (prepare) {
          if (SingleCount(tx.exec("BEGIN; " + XidLookupQuery(xid_literal))) > 0) {
            tx.exec("ROLLBACK");
            state.in_transaction = false;
            return CallResult::Ok();
          }
        } else {
          tx.exec("BEGIN");
        }
        // From here on a lost connection may leave the old session's locks behind for a moment:
        // no retry within this call.
        state.retry_safe = false;
        state.stage = DatabaseStage::kStatements;
        for (std::size_t i = 0; i < statements.size(); ++i) {
          state.what = StatementName(i);
          if (Clock::now() >= deadline) {
            // Not an error of the database: roll back here and say why.
            tx.exec("ROLLBACK");
            state.in_transaction = false;
            return CallResult::Transient(Where(state.what) +
                                         ": the call's timeout passed before this statement; "
                                         "rolled back, nothing was prepared");
          }
          tx.exec_params(statements[i].text, pqxx::prepare::make_dynamic_params((*params)[i]));
        }
        if (!prepare) {
          state.stage = DatabaseStage::kOnePhaseCommit;
          state.what = "COMMIT";
          tx.exec("COMMIT");
          state.in_transaction = false;
          return CallResult::Ok();
        }
        state.stage = DatabaseStage::kPrepare;
        state.what = "PREPARE TRANSACTION " + xid_literal;
        // The look-up after PREPARE TRANSACTION proves it prepared: if a statement had ended the
        // transaction, PREPARE TRANSACTION would only have warned "there is no transaction in
        // progress".
        const int64_t prepared = SingleCount(
            tx.exec("PREPARE TRANSACTION " + xid_literal + "; " + XidLookupQuery(xid_literal)));
        state.in_transaction = false;
        if (prepared != 1) {
          return CallResult::Permanent(
              Where(state.what) +
              ": nothing was prepared because the local transaction had already ended; a "
              "statement of the branch must have ended it, and its writes may be committed");
        }
        return CallResult::Ok();
      });
  return FinishCall(std::move(attempt));
}

CallResult PostgresResource::CommitPrepared(std::string_view gid, uint32_t branch_index,
                                            std::chrono::milliseconds timeout) {
  return ResolvePrepared(gid, branch_index, /*commit=*/true, timeout);
}

CallResult PostgresResource::RollbackPrepared(std::string_view gid, uint32_t branch_index,
                                              std::chrono::milliseconds timeout) {
  return ResolvePrepared(gid, branch_index, /*commit=*/false, timeout);
}

CallResult PostgresResource::ResolvePrepared(std::string_view gid, uint32_t branch_index,
                                             bool commit, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  Result<std::string> xid = database::PostgresXid(options_.node_id, gid, branch_index);
  if (!xid.ok()) return CallResult::Permanent(Where("") + ": " + xid.status().message());
  const std::string statement = std::string(commit ? "COMMIT PREPARED " : "ROLLBACK PREPARED ") +
                                database::PostgresStringLiteral(*xid);
  Attempt<CallResult> attempt =
      WithSession<CallResult>(deadline, [&](Connection& connection, CallState& state) {
        state.what = statement;
        pqxx::nontransaction tx(*connection.session);
        connection.SetStatementTimeout(tx, timeout);
        // Idempotent: state.retry_safe stays true, so a connection found dead is replaced once.
        state.stage = commit ? DatabaseStage::kCommitPrepared : DatabaseStage::kRollbackPrepared;
        tx.exec(statement);  // 42704 "does not exist": resolved before; mapped to Ok
        return CallResult::Ok();
      });
  return FinishCall(std::move(attempt));
}

Result<std::vector<InDoubtXid>> PostgresResource::ListInDoubt(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const std::string prefix = std::string(database::kXidPrefix) + ":" + options_.node_id + ":";
  using List = std::vector<InDoubtXid>;
  Attempt<List> attempt =
      WithSession<List>(deadline, [&](Connection& connection, CallState& state) {
        state.what = "SELECT FROM pg_prepared_xacts";
        pqxx::nontransaction tx(*connection.session);
        connection.SetStatementTimeout(tx, timeout);
        // COMMIT/ROLLBACK PREPARED must be run from a connection to the database that prepared,
        // so only this resource's database; starts_with because '_' in a node id would be a LIKE
        // wildcard. Oldest first: they have held their locks longest.
        const pqxx::result rows = tx.exec_params(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
            "AND starts_with(gid, $1) ORDER BY prepared LIMIT $2",
            prefix, static_cast<int64_t>(options_.in_doubt_max));
        List found;
        for (const pqxx::row& row : rows) {
          const std::string gid = row[0].as<std::string>();
          if (std::optional<database::BranchId> branch =
                  database::ParsePostgresXid(gid, options_.node_id)) {
            found.push_back(InDoubtXid{std::move(branch->gid), branch->branch_index, gid});
          }
        }
        return found;
      });
  if (attempt.value) return std::move(*attempt.value);
  if (!attempt.error) return attempt.connect_failure;
  return database::ToStatus(*attempt.error, Where(attempt.state.what));
}

}  // namespace txc::participants::postgres
