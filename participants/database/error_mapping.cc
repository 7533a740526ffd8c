#include "participants/database/error_mapping.h"

#include <cppconn/exception.h>

#include <pqxx/except>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <string>
#include <utility>

namespace txc::participants::database {
namespace {

using Kind = DatabaseErrorKind;

bool OneOf(int code, std::initializer_list<int> codes) {
  for (const int candidate : codes) {
    if (candidate == code) return true;
  }
  return false;
}

bool OneOf(std::string_view text, std::initializer_list<std::string_view> values) {
  for (const std::string_view candidate : values) {
    if (candidate == text) return true;
  }
  return false;
}

std::string_view SqlstateClass(std::string_view sqlstate) { return sqlstate.substr(0, 2); }

DatabaseError Make(Kind kind, std::string code, std::string_view message) {
  return DatabaseError{kind, std::move(code), OneLineMessage(message)};
}

// PostgreSQL SQLSTATE -> kind. https://www.postgresql.org/docs/15/errcodes-appendix.html
Kind PostgresKind(std::string_view sqlstate) {
  const std::string_view group = SqlstateClass(sqlstate);
  // 08001 sqlclient_unable_to_establish_sqlconnection, 08004 sqlserver_rejected_establishment,
  // 57P03 cannot_connect_now (starting up / shutting down), 53300 too_many_connections: no
  // session was opened, nothing was sent.
  if (OneOf(sqlstate, {"08001", "08004", "57P03", "53300"})) return Kind::kConnectFailed;
  // Class 08 connection_exception; 57P01 admin_shutdown, 57P02 crash_shutdown, 57P05
  // idle_session_timeout: the server ended the session.
  if (group == "08" || OneOf(sqlstate, {"57P01", "57P02", "57P05"})) return Kind::kConnectionLost;
  // 40003 statement_completion_unknown: the server itself cannot say whether it happened.
  if (sqlstate == "40003") return Kind::kConnectionLost;
  // Class 28 invalid_authorization_specification, 3D000 invalid_catalog_name (no such
  // database), 57P04 database_dropped: the resource's configuration is wrong.
  if (group == "28" || OneOf(sqlstate, {"3D000", "57P04"})) return Kind::kConfiguration;
  // 55000 object_not_in_prerequisite_state: what PREPARE TRANSACTION answers when
  // max_prepared_transactions = 0 ("prepared transactions are disabled").
  if (sqlstate == "55000") return Kind::kConfiguration;
  // 40000 transaction_rollback, 40001 serialization_failure, 40P01 deadlock_detected: rolled
  // back by the server, a retry may succeed. 55P03 lock_not_available (NOWAIT, lock_timeout),
  // 55006 object_in_use (e.g. "prepared transaction ... is busy": another session is finishing
  // it right now).
  if (OneOf(sqlstate, {"40000", "40001", "40P01", "55P03", "55006"})) return Kind::kConflict;
  // 57014 query_canceled: statement_timeout fired (or a cancel request).
  if (sqlstate == "57014") return Kind::kTimeout;
  // Class 53 insufficient_resources: disk full, out of memory, and "maximum number of prepared
  // transactions reached" (53400 configuration_limit_exceeded).
  if (group == "53") return Kind::kResourceShortage;
  // 42704 undefined_object: COMMIT/ROLLBACK PREPARED of an unknown id ("prepared transaction
  // with identifier ... does not exist"); in a branch's own statement it is an unknown type or
  // object, which the stage mapping turns into a vote no.
  if (sqlstate == "42704") return Kind::kUnknownXid;
  // 42710 duplicate_object: PREPARE TRANSACTION of an id already in use ("transaction identifier
  // ... is already in use"); in a statement, a duplicate object (a vote no again).
  if (sqlstate == "42710") return Kind::kDuplicateXid;
  // Statement errors: 21 cardinality, 22 data_exception, 23 integrity_constraint_violation, 2B
  // dependent privilege descriptors still exist, 2D invalid_transaction_termination, 25
  // invalid_transaction_state, 26 invalid SQL statement name, 27 triggered data change, 2F/38/39
  // routine exceptions, 34 invalid cursor name, 40002 integrity violation at commit, 42
  // syntax_error_or_access_rule_violation (42501 insufficient_privilege included), 44 with check
  // option, 54 program_limit_exceeded, 0A feature_not_supported, P0 PL/pgSQL RAISE.
  if (OneOf(group, {"21", "22", "23", "2B", "2D", "25", "26", "27", "2F", "34", "38", "39", "42",
                    "44", "54", "0A", "P0"}) ||
      sqlstate == "40002") {
    return Kind::kStatementRejected;
  }
  // 58 system_error (I/O), XX internal_error, F0 config file error, no SQLSTATE at all.
  return Kind::kOther;
}

// MySQL / MariaDB error code (then SQLSTATE class) -> kind.
// https://mariadb.com/kb/en/mariadb-error-code-reference/,
// https://dev.mysql.com/doc/mysql-errors/8.0/en/
Kind MysqlKind(int code, std::string_view sqlstate) {
  // 2002 CR_CONNECTION_ERROR, 2003 CR_CONN_HOST_ERROR, 2005 CR_UNKNOWN_HOST, 1040
  // ER_CON_COUNT_ERROR (too many connections), 1203 ER_TOO_MANY_USER_CONNECTIONS, 1226
  // ER_USER_LIMIT_REACHED: no session.
  if (OneOf(code, {2002, 2003, 2005, 1040, 1203, 1226})) return Kind::kConnectFailed;
  // Other client errors 2000-2999 (2006 CR_SERVER_GONE_ERROR, 2013 CR_SERVER_LOST, 2014
  // CR_COMMANDS_OUT_OF_SYNC, 2055 CR_SERVER_LOST_EXTENDED, ...), 1053 ER_SERVER_SHUTDOWN, 1927
  // ER_CONNECTION_KILLED, 1152/1184 aborted connection, 1158-1161 network read/write errors and
  // timeouts, 4031 (MySQL 8: disconnected for inactivity): the session is gone or out of step.
  if ((code >= 2000 && code <= 2999) ||
      OneOf(code, {1053, 1927, 1152, 1184, 1158, 1159, 1160, 1161, 4031})) {
    return Kind::kConnectionLost;
  }
  // 1045 ER_ACCESS_DENIED_ERROR, 1044 ER_DBACCESS_DENIED_ERROR, 1049 ER_BAD_DB_ERROR, 1698
  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR, 1130 ER_HOST_NOT_PRIVILEGED, 1251
  // ER_NOT_SUPPORTED_AUTH_MODE, 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR (e.g. MySQL 8's XA RECOVER
  // without XA_RECOVER_ADMIN).
  if (OneOf(code, {1045, 1044, 1049, 1698, 1130, 1251, 1227})) return Kind::kConfiguration;
  // 1205 ER_LOCK_WAIT_TIMEOUT, 1213 ER_LOCK_DEADLOCK, 1402 XA_RBROLLBACK, 1613 XA_RBTIMEOUT,
  // 1614 XA_RBDEADLOCK: the server rolled the branch back (or the statement) for now.
  if (OneOf(code, {1205, 1213, 1402, 1613, 1614})) return Kind::kConflict;
  // 1969 ER_STATEMENT_TIMEOUT (MariaDB max_statement_time), 3024
  // ER_QUERY_TIMEOUT (MySQL max_execution_time), 1317 ER_QUERY_INTERRUPTED (KILL QUERY).
  if (OneOf(code, {1969, 3024, 1317})) return Kind::kTimeout;
  // 1397 XAER_NOTA "Unknown XID" (SQLSTATE XAE04). On MariaDB also what XA COMMIT from another
  // session answers while the preparing session is still connected: the adapter checks XA
  // RECOVER before believing it (shared/NOTES.md).
  if (code == 1397) return Kind::kUnknownXid;
  // 1440 XAER_DUPID "The XID already exists" (XA START).
  if (code == 1440) return Kind::kDuplicateXid;
  // 1398 XAER_INVAL, 1399 XAER_RMFAIL (command not allowed in this XA state), 1400 XAER_OUTSIDE,
  // 1401 XAER_RMERR: the session's XA state is not what we think.
  if (OneOf(code, {1398, 1399, 1400, 1401})) return Kind::kXaState;
  // 1021 ER_DISK_FULL, 1037/1038/1041 out of memory, 1114 ER_RECORD_FILE_FULL (table full), 1135
  // ER_CANT_CREATE_THREAD.
  if (OneOf(code, {1021, 1037, 1038, 1041, 1114, 1135})) return Kind::kResourceShortage;
  const std::string_view group = SqlstateClass(sqlstate);
  if (group == "08") return Kind::kConnectionLost;
  if (group == "40") return Kind::kConflict;
  if (group == "28") return Kind::kConfiguration;
  if (group == "XA") return Kind::kXaState;
  // Statement errors by SQLSTATE: 21, 22 data (1406 data too long, 1264 out of range), 23
  // integrity (1062 duplicate entry, 1451/1452 foreign keys, 1048 NULL, 4025 MariaDB CHECK), 42
  // syntax and access (1064, 1146 no such table, 1054 unknown column, 1142 command denied), 44,
  // 45 SIGNAL, 0A not supported.
  if (OneOf(group, {"21", "22", "23", "42", "44", "45", "0A"})) return Kind::kStatementRejected;
  // Any other error the server raised (1000-1999, 3000+; e.g. 1364 "Field doesn't have a default
  // value", 3819 MySQL CHECK, both SQLSTATE HY000) is about the statement.
  if (code >= 1000) return Kind::kStatementRejected;
  // Code 0: an exception of Connector/C++ itself (invalid argument, not implemented).
  return Kind::kOther;
}

CallResult WithOutcome(CallOutcome outcome, std::string reason) {
  return CallResult{outcome, std::move(reason)};
}

}  // namespace

const char* DatabaseErrorKindName(DatabaseErrorKind kind) {
  switch (kind) {
    case Kind::kConnectFailed:
      return "connect_failed";
    case Kind::kConnectionLost:
      return "connection_lost";
    case Kind::kConfiguration:
      return "configuration";
    case Kind::kConflict:
      return "conflict";
    case Kind::kTimeout:
      return "timeout";
    case Kind::kResourceShortage:
      return "resource_shortage";
    case Kind::kStatementRejected:
      return "statement_rejected";
    case Kind::kUnknownXid:
      return "unknown_xid";
    case Kind::kDuplicateXid:
      return "duplicate_xid";
    case Kind::kXaState:
      return "xa_state";
    case Kind::kOther:
      return "other";
  }
  return "other";
}

const char* DatabaseStageName(DatabaseStage stage) {
  switch (stage) {
    case DatabaseStage::kBegin:
      return "begin";
    case DatabaseStage::kStatements:
      return "statements";
    case DatabaseStage::kPrepare:
      return "prepare";
    case DatabaseStage::kOnePhaseCommit:
      return "one-phase commit";
    case DatabaseStage::kCommitPrepared:
      return "commit prepared";
    case DatabaseStage::kRollbackPrepared:
      return "rollback prepared";
  }
  return "unknown";
}

std::string OneLineMessage(std::string_view message) {
  std::string line;
  line.reserve(std::min(message.size(), kMessageLengthMax));
  bool pending_space = false;
  for (const char c : message) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      pending_space = !line.empty();
      continue;
    }
    if (pending_space) line.push_back(' ');
    pending_space = false;
    line.push_back(c);
    if (line.size() >= kMessageLengthMax) break;
  }
  return line;
}

DatabaseError ClassifyPostgresSqlstate(std::string_view sqlstate, std::string_view message) {
  return Make(PostgresKind(sqlstate), sqlstate.empty() ? "" : "SQLSTATE " + std::string(sqlstate),
              message);
}

DatabaseError ClassifyPostgresException(const std::exception& error) {
  // libpqxx 6.4 turns some SQLSTATEs into classes that do not keep the code, so the type is
  // looked at first. Order matters: too_many_connections is a broken_connection.
  if (dynamic_cast<const pqxx::too_many_connections*>(&error) != nullptr) {
    return Make(Kind::kConnectFailed, "SQLSTATE 53300", error.what());
  }
  // Lost or failed connection (libpq reports class 08 this way, without SQLSTATE).
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) {
    return Make(Kind::kConnectionLost, "", error.what());
  }
  // "Don't know whether the transaction was committed": the connection broke during a commit.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
    return Make(Kind::kConnectionLost, "", error.what());
  }
  // 40003: the server does not know whether the statement completed.
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&error) != nullptr) {
    return Make(Kind::kConnectionLost, "SQLSTATE 40003", error.what());
  }
  // 40001 serialization_failure, 40P01 deadlock_detected, 40000 transaction_rollback.
  if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) {
    return Make(Kind::kConflict, "", error.what());
  }
  if (const auto* sql_error = dynamic_cast<const pqxx::sql_error*>(&error)) {
    return ClassifyPostgresSqlstate(sql_error->sqlstate(), error.what());
  }
  // pqxx::usage_error, conversion_error, internal_error, std::bad_alloc, ...
  return Make(Kind::kOther, "", error.what());
}

DatabaseError ClassifyMysqlError(int error_code, std::string_view sqlstate,
                                 std::string_view message) {
  std::string code;
  if (error_code != 0) {
    code = "MySQL " + std::to_string(error_code);
    if (!sqlstate.empty()) code += " (" + std::string(sqlstate) + ")";
  }
  return Make(MysqlKind(error_code, sqlstate), std::move(code), message);
}

DatabaseError ClassifyMysqlException(const std::exception& error) {
  if (const auto* sql_error = dynamic_cast<const sql::SQLException*>(&error)) {
    return ClassifyMysqlError(sql_error->getErrorCode(), sql_error->getSQLState(), error.what());
  }
  return Make(Kind::kOther, "", error.what());
}

// The table. T = Transient, U = Unknown, R = Refused, P = Permanent, Ok = done.
//
//                     begin  statements  prepare  one-phase commit  commit/rollback prepared
// connect_failed      T      T           T        T                 T
// connection_lost     T      T           U        U                 U
// configuration       P      P           P        P                 P
// conflict            T      T           T        T                 T
// timeout             T      T           T        T                 T
// resource_shortage   T      T           T        T                 T
// statement_rejected  P      R           R        R                 P
// unknown_xid         P      R           P        R                 Ok
// duplicate_xid       U      R           U        R                 P
// xa_state            T      R           T        T                 T
// other               T      R           U        U                 P
//
// Why:
// - connection_lost before the prepare (or commit) was sent: the server rolls back a transaction
//   that is neither prepared nor committed when its session ends, so nothing happened. After it
//   was sent, the answer is what was lost: Unknown; phase 2 by xid is idempotent and settles it.
// - conflict / timeout / resource_shortage: the server answered, so it did not do it (an error
//   reply to PREPARE TRANSACTION, XA PREPARE or COMMIT leaves the transaction rolled back);
//   retrying later may work.
// - statement_rejected: API.md "a statement that fails is a vote no", with the database's
//   message. At prepare (a deferred constraint checked by PREPARE TRANSACTION) and at a one-phase
//   COMMIT too. In phase 2 nothing of the branch's SQL runs, so it is a privilege or setup
//   problem for an operator.
// - unknown_xid in phase 2: already resolved (PostgreSQL keeps no record of resolved ids; only
//   this coordinator resolves xids with its node_id). MariaDB's 1397 trap is ruled out by the
//   adapter (XA RECOVER) before it gets here. In statements it is an unknown object: a vote no.
// - duplicate_xid at begin/prepare: an earlier attempt of this very branch holds the xid (its
//   answer was lost, or it is still finishing). The adapter first checks whether the database
//   lists it as prepared (then Ok); otherwise retrying settles it.
// - xa_state: our session is out of step with the server; it is discarded and the call retried.
//   Among the statements it is the statement's fault: MySQL refuses COMMIT, DDL and other
//   statements that would end the XA transaction with XAER_RMFAIL: a vote no.
// - other: unclassified. Treated like a failing statement in phase 1 before anything was sent for
//   preparing; as possibly done once it was; as an operator's matter in phase 2 (it is still
//   retried at the longest backoff).
CallResult ToCallResult(const DatabaseError& error, DatabaseStage stage, std::string_view where) {
  std::string reason = std::string(where) + ": " + error.message;
  if (!error.code.empty()) reason += " [" + error.code + "]";
  const bool phase_two =
      stage == DatabaseStage::kCommitPrepared || stage == DatabaseStage::kRollbackPrepared;
  const bool sent_decisive =
      stage == DatabaseStage::kPrepare || stage == DatabaseStage::kOnePhaseCommit || phase_two;
  const auto unknown = [&](std::string text) {
    return WithOutcome(CallOutcome::kUnknown,
                       std::move(text) + "; " + DatabaseStageName(stage) +
                           " was sent and its answer was lost: it may have happened");
  };
  switch (error.kind) {
    case Kind::kConnectFailed:
    case Kind::kConflict:
    case Kind::kTimeout:
    case Kind::kResourceShortage:
      return CallResult::Transient(std::move(reason));
    case Kind::kXaState:
      if (stage == DatabaseStage::kStatements) return CallResult::Refused(std::move(reason));
      return CallResult::Transient(std::move(reason));
    case Kind::kConnectionLost:
      if (sent_decisive) return unknown(std::move(reason));
      return CallResult::Transient(std::move(reason) +
                                   "; nothing was prepared or committed (the server rolls back "
                                   "the open transaction of a lost session)");
    case Kind::kConfiguration:
      return CallResult::Permanent(
          std::move(reason) + "; the resource's configuration or server settings must be fixed");
    case Kind::kStatementRejected:
      if (stage == DatabaseStage::kBegin || phase_two)
        return CallResult::Permanent(std::move(reason));
      return CallResult::Refused(std::move(reason));
    case Kind::kUnknownXid:
      if (phase_two) return CallResult::Ok();
      if (stage == DatabaseStage::kStatements || stage == DatabaseStage::kOnePhaseCommit) {
        return CallResult::Refused(std::move(reason));
      }
      return CallResult::Permanent(std::move(reason));
    case Kind::kDuplicateXid:
      if (stage == DatabaseStage::kBegin || stage == DatabaseStage::kPrepare) {
        return WithOutcome(CallOutcome::kUnknown,
                           std::move(reason) +
                               "; an earlier attempt of this branch holds the xid and may have "
                               "prepared it");
      }
      if (phase_two) return CallResult::Permanent(std::move(reason));
      return CallResult::Refused(std::move(reason));
    case Kind::kOther:
      if (phase_two) return CallResult::Permanent(std::move(reason));
      if (sent_decisive) return unknown(std::move(reason));
      if (stage == DatabaseStage::kBegin) return CallResult::Transient(std::move(reason));
      return CallResult::Refused(std::move(reason));
  }
  return CallResult::Permanent(std::move(reason));
}

Status ToStatus(const DatabaseError& error, std::string_view where) {
  std::string message = std::string(where) + ": " + error.message;
  if (!error.code.empty()) message += " [" + error.code + "]";
  switch (error.kind) {
    case Kind::kConfiguration:
      return Status::FailedPrecondition(std::move(message));
    case Kind::kConnectFailed:
    case Kind::kConnectionLost:
    case Kind::kConflict:
    case Kind::kTimeout:
    case Kind::kResourceShortage:
    case Kind::kXaState:
      return Status::Unavailable(std::move(message));
    case Kind::kStatementRejected:
    case Kind::kUnknownXid:
    case Kind::kDuplicateXid:
    case Kind::kOther:
      return Status::Internal(std::move(message));
  }
  return Status::Internal(std::move(message));
}

CallResult ConnectFailureToCallResult(const Status& status) {
  if (status.code() == StatusCode::kFailedPrecondition ||
      status.code() == StatusCode::kInvalidArgument) {
    return CallResult::Permanent(status.message());
  }
  return CallResult::Transient(status.message() + "; nothing was sent");
}

bool MustDiscardConnection(const DatabaseError& error) {
  switch (error.kind) {
    case Kind::kConnectFailed:
    case Kind::kConnectionLost:
    case Kind::kXaState:
    case Kind::kOther:
      return true;
    default:
      return false;
  }
}

}  // namespace txc::participants::database
