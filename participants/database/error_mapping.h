// The one place where errors of the database client libraries (libpqxx exceptions,
// Connector/C++ sql::SQLException) become outcomes the engine acts on (STYLE.md 9).
//
// Two steps, both here:
//   1. Classify: exception -> DatabaseError{kind, code, message}. What went wrong, independent of
//      when. Table per library in error_mapping.cc, one comment per row.
//   2. Map: (kind, stage) -> CallResult. The same error means different things at different
//      moments: a lost connection before PREPARE was sent means nothing happened (the server
//      rolls back an unprepared transaction when its session ends): Transient; after it was sent
//      the branch may be prepared: Unknown.
// The adapters add nothing of their own except two checks that need the database: an unknown xid
// on MariaDB must be told apart from the 1397 trap through XA RECOVER before it is "done", and a
// duplicate xid at prepare is "already prepared" only if the database lists it as prepared.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"
#include "participants/participant.h"

namespace txc::participants::database {

enum class DatabaseErrorKind : uint8_t {
  kConnectFailed,      // no session could be opened (refused, unreachable, too many connections)
  kConnectionLost,     // the session broke or its state is unknown; the connection is discarded
  kConfiguration,      // wrong credentials, database, privileges of the resource, or a server
                       // setting (max_prepared_transactions = 0): an operator must fix it
  kConflict,           // deadlock, serialization failure, lock wait timeout, object busy: the
                       // server rolled the work back or refused it for now
  kTimeout,            // the server cancelled the statement (statement_timeout,
                       // max_statement_time)
  kResourceShortage,   // disk full, out of memory, too many prepared transactions
  kStatementRejected,  // the statement is wrong for this schema or data: constraint violations,
                       // syntax errors, unknown tables, bad values, permission denied, RAISE
  kUnknownXid,         // COMMIT/ROLLBACK PREPARED or XA of an xid the server does not know
  kDuplicateXid,       // PREPARE TRANSACTION / XA START of an xid already in use
  kXaState,            // an XA command in the wrong XA state of the session (XAER_RMFAIL, ...)
  kOther,              // anything else, including errors inside the client library
};
const char* DatabaseErrorKindName(DatabaseErrorKind kind);

struct DatabaseError {
  DatabaseErrorKind kind = DatabaseErrorKind::kOther;
  std::string code;     // "SQLSTATE 23505" or "MySQL 1062 (23000)"; "" when there is none
  std::string message;  // the database's own words, on one line, bounded in length
};

// libpqxx 6.4: pqxx::broken_connection, pqxx::sql_error (by SQLSTATE), the transaction_rollback
// family (which carries no SQLSTATE), pqxx::in_doubt_error; anything else is kOther.
DatabaseError ClassifyPostgresException(const std::exception& error);
DatabaseError ClassifyPostgresSqlstate(std::string_view sqlstate, std::string_view message);

// Connector/C++ 1.1: sql::SQLException by MySQL/MariaDB error code, then SQLSTATE class.
DatabaseError ClassifyMysqlException(const std::exception& error);
DatabaseError ClassifyMysqlError(int error_code, std::string_view sqlstate,
                                 std::string_view message);

// Where in a call the error happened.
enum class DatabaseStage : uint8_t {
  kBegin,             // BEGIN / XA START (and session set-up): nothing done yet
  kStatements,        // the branch's statements, XA END: nothing durable yet
  kPrepare,           // PREPARE TRANSACTION / XA PREPARE sent: the branch may be prepared
  kOnePhaseCommit,    // COMMIT of a one-phase branch sent: the writes may be applied
  kCommitPrepared,    // COMMIT PREPARED / XA COMMIT
  kRollbackPrepared,  // ROLLBACK PREPARED / XA ROLLBACK
};
const char* DatabaseStageName(DatabaseStage stage);

// The outcome of a call that failed with `error` at `stage`. `where` starts the reason
// ("resource orders (PostgreSQL): sql[1]"). The table is in error_mapping.cc.
CallResult ToCallResult(const DatabaseError& error, DatabaseStage stage, std::string_view where);

// For the calls that return Status (CheckReady, ListInDoubt, opening a connection):
// kConfiguration -> FailedPrecondition, kConnectFailed / kConnectionLost / kConflict / kTimeout /
// kResourceShortage -> Unavailable, others -> Internal. The message starts with `where`.
Status ToStatus(const DatabaseError& error, std::string_view where);

// The outcome of a call that could not even get a connection (the pool's or ToStatus's Status):
// FailedPrecondition and InvalidArgument -> Permanent (an operator must fix the configuration),
// everything else -> Transient (nothing was sent).
CallResult ConnectFailureToCallResult(const Status& status);

// True when the connection that produced `error` must not be used again.
bool MustDiscardConnection(const DatabaseError& error);

// The library's message on one line (runs of white space become one space), at most
// kMessageLengthMax bytes (a branch's last_error stays small).
inline constexpr std::size_t kMessageLengthMax = 1000;
std::string OneLineMessage(std::string_view message);

}  // namespace txc::participants::database
