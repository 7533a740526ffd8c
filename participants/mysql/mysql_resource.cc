#include "participants/mysql/mysql_resource.h"

#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "coordinator/common/check.h"
#include "participants/database/error_mapping.h"
#include "participants/database/xid.h"

namespace txc::participants::mysql {
namespace {

using database::CheckBranchStatement;
using database::DatabaseError;
using database::DatabaseErrorKind;
using database::DatabaseStage;
using database::InDoubtXid;
using database::MysqlXid;
using database::Statement;
using database::StatementName;

// The driver singleton. Its first get_mysql_driver_instance() call is not thread-safe
// (shared/NOTES.md), so it happens exactly once, under call_once.
sql::mysql::MySQL_Driver* Driver() {
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* driver = nullptr;
  std::call_once(once, [] { driver = sql::mysql::get_mysql_driver_instance(); });
  return driver;
}

// Registers the calling thread with the driver (mysql_thread_init) on its first call into the
// resource, and unregisters it (mysql_thread_end) when the thread exits.
class DriverThread {
 public:
  DriverThread() : driver_(Driver()) { driver_->threadInit(); }
  ~DriverThread() { driver_->threadEnd(); }
  DriverThread(const DriverThread&) = delete;
  DriverThread& operator=(const DriverThread&) = delete;

 private:
  sql::mysql::MySQL_Driver* driver_;
};

void RegisterThisThread() { thread_local DriverThread registration; }

// Thrown inside a call when its deadline passes between statements, so that the work is undone
// by the same path as after a database error.
class DeadlinePassed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

DatabaseError ClassifyCurrentException() {
  try {
    throw;
  } catch (const DeadlinePassed& error) {
    return DatabaseError{DatabaseErrorKind::kTimeout, "", error.what()};
  } catch (const std::exception& error) {
    return database::ClassifyMysqlException(error);
  } catch (...) {
    return DatabaseError{DatabaseErrorKind::kOther, "", "an exception of unknown type"};
  }
}

struct ServerVersion {
  bool mariadb = false;
  int major = 0;
  int minor = 0;
  int patch = 0;
};

// "10.11.6-MariaDB-0+deb12u1", "8.0.36".
ServerVersion ParseServerVersion(const std::string& text) {
  ServerVersion version;
  version.mariadb = text.find("MariaDB") != std::string::npos;
  if (std::sscanf(text.c_str(), "%d.%d.%d", &version.major, &version.minor, &version.patch) < 2) {
    version.major = version.minor = version.patch = 0;
  }
  return version;
}

bool AtLeast(const ServerVersion& version, int major, int minor, int patch) {
  if (version.major != major) return version.major > major;
  if (version.minor != minor) return version.minor > minor;
  return version.patch >= patch;
}

}  // namespace

struct MysqlResource::Connection {
  std::unique_ptr<sql::Connection> session;
  ServerVersion version;
  int64_t statement_timeout_ms = -1;  // the session's statement bound as we last set it

  // Runs one statement of our own (XA ..., SET, START TRANSACTION), discarding any result.
  void Execute(const std::string& text) {
    std::unique_ptr<sql::Statement> statement(session->createStatement());
    if (statement->execute(text)) Drain(statement->getResultSet());
  }

  std::unique_ptr<sql::ResultSet> Query(const std::string& text) {
    std::unique_ptr<sql::Statement> statement(session->createStatement());
    return std::unique_ptr<sql::ResultSet>(statement->executeQuery(text));
  }

  // Runs one statement of the branch. With parameters: a server-side prepared statement, each
  // JSON scalar bound with its own type. A result set (a SELECT among the statements) is read
  // to its end: the protocol allows no next command before.
  void Run(const Statement& statement) {
    if (statement.params.empty()) {
      Execute(statement.text);
      return;
    }
    std::unique_ptr<sql::PreparedStatement> prepared(session->prepareStatement(statement.text));
    for (std::size_t i = 0; i < statement.params.size(); ++i) {
      const auto index = static_cast<unsigned int>(i + 1);
      std::visit(
          [&](const auto& value) {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              prepared->setNull(index, sql::DataType::SQLNULL);
            } else if constexpr (std::is_same_v<T, bool>) {
              prepared->setBoolean(index, value);
            } else if constexpr (std::is_same_v<T, int64_t>) {
              prepared->setInt64(index, value);
            } else if constexpr (std::is_same_v<T, double>) {
              prepared->setDouble(index, value);
            } else {
              static_assert(std::is_same_v<T, std::string>);
              prepared->setString(index, sql::SQLString(value));
            }
          },
          statement.params[i]);
    }
    if (prepared->execute()) Drain(prepared->getResultSet());
  }

  // Bounds every statement of the session by the server. Set only when it changes.
  void SetStatementTimeout(std::chrono::milliseconds timeout) {
    // At least 1 ms: 0 would switch the limit off.
    const int64_t timeout_ms = std::max<int64_t>(1, timeout.count());
    if (statement_timeout_ms == timeout_ms) return;
    if (version.mariadb) {
      // MariaDB: max_statement_time in seconds (fractions allowed) aborts any statement,
      // including one waiting for a lock, with 1969.
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(timeout_ms) / 1000);
      Execute(std::string("SET SESSION max_statement_time = ") + seconds);
    } else {
      // MySQL: max_execution_time bounds SELECTs only; innodb_lock_wait_timeout (whole seconds,
      // at least 1) bounds the lock waits of the writes.
      const int64_t lock_wait_s = (timeout_ms + 999) / 1000;
      Execute("SET SESSION max_execution_time = " + std::to_string(timeout_ms) +
              ", innodb_lock_wait_timeout = " + std::to_string(lock_wait_s));
    }
    statement_timeout_ms = timeout_ms;
  }

  // Whether XA RECOVER lists `xid` (prepared, whichever session holds it).
  bool IsPrepared(const MysqlXid& xid) {
    std::unique_ptr<sql::ResultSet> rows = Query("XA RECOVER");
    bool found = false;
    while (rows->next()) {
      const std::optional<MysqlXid> listed =
          database::MysqlXidFromRecoverRow(rows->getInt64(1), rows->getInt64(2), rows->getInt64(3),
                                           rows->getString(4).asStdString());
      found = found || (listed && *listed == xid);
    }
    return found;
  }

 private:
  static void Drain(sql::ResultSet* result) {
    std::unique_ptr<sql::ResultSet> rows(result);
    while (rows != nullptr && rows->next()) {
    }
  }
};

// What one attempt was doing; read when it fails.
struct MysqlResource::CallState {
  enum class Open : uint8_t { kNothing, kXa, kLocal };

  DatabaseStage stage = DatabaseStage::kBegin;
  std::string what;            // what was running, for the reason
  Open open = Open::kNothing;  // work to undo when something fails
  std::string xid_sql;         // for undoing an XA branch
  // Nothing was sent yet that had an effect, or what was sent is idempotent: after a lost
  // connection the attempt may be repeated on a fresh one.
  bool retry_safe = true;
  bool held_elsewhere = false;  // phase 2 met the MariaDB trap
};

template <typename T>
struct MysqlResource::Attempt {
  std::optional<T> value;
  Status connect_failure;              // set when no connection could be had
  std::optional<DatabaseError> error;  // set when the body failed
  CallState state;
};

MysqlResource::MysqlResource(MysqlResourceOptions options, MysqlDsn dsn)
    : options_(std::move(options)), dsn_(std::move(dsn)) {
  pool_ = std::make_unique<Pool>(options_.pool_size_max,
                                 [this](Clock::time_point deadline) { return Connect(deadline); });
}

MysqlResource::~MysqlResource() {
  RegisterThisThread();  // closing connections calls into the client library
  std::map<std::string, Parked> parked;
  {
    std::lock_guard lock(parked_mutex_);
    parked.swap(parked_);
  }
  // Closing a parked connection detaches its prepared branch on the server; the branch survives
  // and is finished by xid later (by this coordinator after its restart, or its in-doubt scan).
  for (auto& [key, entry] : parked) entry.lease.Discard();
  parked.clear();
  pool_.reset();
}

Result<std::unique_ptr<MysqlResource>> MysqlResource::Create(MysqlResourceOptions options) {
  if (options.name.empty()) return Status::InvalidArgument("a MySQL resource needs a name");
  const std::string where = "resource " + options.name + " (MySQL)";
  Result<MysqlDsn> dsn = ParseMysqlDsn(options.dsn);
  if (!dsn.ok()) return Status::InvalidArgument(where + ": " + dsn.status().message());
  if (Status status = database::ValidateNodeId(options.node_id); !status.ok()) {
    return Status::InvalidArgument(where + ": " + status.message());
  }
  if (options.pool_size_max == 0 || options.parked_max >= options.pool_size_max) {
    return Status::InvalidArgument(
        where +
        ": need 0 <= parked_max < pool_size_max (parked connections count against the "
        "pool, and other calls need room), got parked_max " +
        std::to_string(options.parked_max) + ", pool_size_max " +
        std::to_string(options.pool_size_max));
  }
  if (options.read_timeout.count() < 1) {
    return Status::InvalidArgument(where + ": read_timeout must be at least 1 s");
  }
  if (options.in_doubt_max == 0) {
    return Status::InvalidArgument(where + ": in_doubt_max must be at least 1");
  }
  return std::unique_ptr<MysqlResource>(new MysqlResource(std::move(options), std::move(*dsn)));
}

std::string MysqlResource::Where(std::string_view what) const {
  std::string where = "resource " + options_.name + " (MySQL)";
  if (!what.empty()) where += ": " + std::string(what);
  return where;
}

std::size_t MysqlResource::OpenConnections() const { return pool_->counts().open; }

std::size_t MysqlResource::ParkedConnections() const {
  std::lock_guard lock(parked_mutex_);
  return parked_.size();
}

Result<std::unique_ptr<MysqlResource::Connection>> MysqlResource::Connect(
    Clock::time_point deadline) const {
  try {
    RegisterThisThread();
    const auto left = std::chrono::ceil<std::chrono::seconds>(deadline - Clock::now());
    const int connect_timeout_s = static_cast<int>(std::clamp<int64_t>(left.count(), 1, 3600));
    const int io_timeout_s = static_cast<int>(options_.read_timeout.count());
    sql::ConnectOptionsMap connect_options;
    connect_options["hostName"] = sql::SQLString(dsn_.ConnectorHostName());
    connect_options["userName"] = sql::SQLString(dsn_.user);
    connect_options["password"] = sql::SQLString(dsn_.password);
    if (!dsn_.database.empty()) connect_options["schema"] = sql::SQLString(dsn_.database);
    connect_options["OPT_CONNECT_TIMEOUT"] = connect_timeout_s;
    connect_options["OPT_READ_TIMEOUT"] = io_timeout_s;
    connect_options["OPT_WRITE_TIMEOUT"] = io_timeout_s;
    // A silent reconnect would drop the session's XA branch and run the rest outside it.
    connect_options["OPT_RECONNECT"] = false;
    connect_options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    auto connection = std::make_unique<Connection>();
    connection->session.reset(Driver()->connect(connect_options));
    std::unique_ptr<sql::ResultSet> version = connection->Query("SELECT VERSION()");
    if (version->next()) connection->version = ParseServerVersion(version->getString(1));
    return connection;
  } catch (...) {
    DatabaseError error = ClassifyCurrentException();
    // A session that breaks while being opened was never usable: a failure to connect.
    if (error.kind == DatabaseErrorKind::kConnectionLost) {
      error.kind = DatabaseErrorKind::kConnectFailed;
    }
    return database::ToStatus(error, Where("connect to " + dsn_.Redacted()));
  }
}

// Runs `body(lease, state)`. A database error thrown by the body is classified; the open work
// (state.open) is undone, or the connection discarded when it broke or cannot be cleaned up.
template <typename T, typename Body>
MysqlResource::Attempt<T> MysqlResource::RunOn(Pool::Lease& lease, Body& body) {
  Attempt<T> attempt;
  try {
    attempt.value.emplace(body(lease, attempt.state));
    return attempt;
  } catch (...) {
    attempt.error = ClassifyCurrentException();
  }
  const DatabaseError& error = *attempt.error;
  if (!lease) return attempt;  // handed over (parked) before the failure: nothing to clean up
  if (database::MustDiscardConnection(error)) {
    lease.Discard();
    if (error.kind == DatabaseErrorKind::kConnectionLost) pool_->DiscardIdle();
    return attempt;
  }
  try {
    switch (attempt.state.open) {
      case CallState::Open::kNothing:
        break;
      case CallState::Open::kXa:
        // XA END fails when the branch is already idle (or was rolled back by a deadlock);
        // either way XA ROLLBACK decides.
        try {
          lease->Execute("XA END " + attempt.state.xid_sql);
        } catch (const sql::SQLException&) {
        }
        lease->Execute("XA ROLLBACK " + attempt.state.xid_sql);
        break;
      case CallState::Open::kLocal:
        lease->Execute("ROLLBACK");
        break;
    }
  } catch (...) {
    // Closing the connection rolls back whatever is still open and not prepared.
    lease.Discard();
  }
  return attempt;
}

// RunOn a pooled connection, with one retry on a fresh connection when a reused one turned out
// dead while retrying was safe (after a server restart every idle connection is stale).
template <typename T, typename Body>
MysqlResource::Attempt<T> MysqlResource::WithSession(Clock::time_point deadline, Body&& body) {
  for (int attempt_number = 1;; ++attempt_number) {
    Result<Pool::Lease> lease = pool_->Acquire(deadline);
    if (!lease.ok()) {
      Attempt<T> attempt;
      attempt.connect_failure = lease.status();
      return attempt;
    }
    const bool reused = lease->reused();
    Attempt<T> attempt = RunOn<T>(*lease, body);
    const bool retry = attempt.error && attempt.error->kind == DatabaseErrorKind::kConnectionLost &&
                       reused && attempt.state.retry_safe && attempt_number == 1 &&
                       Clock::now() < deadline;
    if (!retry) return attempt;
  }
}

CallResult MysqlResource::FinishCall(const Attempt<CallResult>& attempt) const {
  if (attempt.value) return *attempt.value;
  if (!attempt.error) return database::ConnectFailureToCallResult(attempt.connect_failure);
  return database::ToCallResult(*attempt.error, attempt.state.stage, Where(attempt.state.what));
}

void MysqlResource::Park(const std::string& key, Pool::Lease lease) {
  Pool::Lease evicted;
  {
    std::lock_guard lock(parked_mutex_);
    if (options_.parked_max == 0) {
      evicted = std::move(lease);
    } else {
      if (auto same = parked_.find(key); same != parked_.end()) {
        evicted = std::move(same->second.lease);  // cannot happen: one xid, one prepare
        parked_.erase(same);
      } else if (parked_.size() >= options_.parked_max) {
        auto oldest = std::min_element(parked_.begin(), parked_.end(), [](auto& a, auto& b) {
          return a.second.sequence < b.second.sequence;
        });
        evicted = std::move(oldest->second.lease);
        parked_.erase(oldest);
      }
      parked_.emplace(key, Parked{std::move(lease), ++parked_sequence_});
    }
    TXC_CHECK(parked_.size() <= options_.parked_max, "more connections parked than parked_max");
  }
  // Closed outside the lock: the server detaches the branch it holds, any session can finish it.
  if (evicted) evicted.Discard();
}

std::optional<MysqlResource::Pool::Lease> MysqlResource::TakeParked(const std::string& key) {
  std::lock_guard lock(parked_mutex_);
  auto found = parked_.find(key);
  if (found == parked_.end()) return std::nullopt;
  Pool::Lease lease = std::move(found->second.lease);
  parked_.erase(found);
  return lease;
}

Status MysqlResource::CheckReady(std::chrono::milliseconds timeout) {
  RegisterThisThread();
  const Clock::time_point deadline = Clock::now() + timeout;
  Attempt<Status> attempt =
      WithSession<Status>(deadline, [&](Pool::Lease& lease, CallState& state) {
        state.what = "SELECT VERSION()";
        lease->SetStatementTimeout(timeout);
        const ServerVersion& version = lease->version;
        // Before these versions a prepared XA branch is rolled back when its session ends, so a
        // coordinator restart would lose prepared branches.
        const bool durable =
            version.mariadb ? AtLeast(version, 10, 5, 0) : AtLeast(version, 5, 7, 7);
        if (!durable) {
          return Status::FailedPrecondition(
              Where("") + ": the server is " + (version.mariadb ? "MariaDB " : "MySQL ") +
              std::to_string(version.major) + "." + std::to_string(version.minor) + "." +
              std::to_string(version.patch) +
              ", which rolls back prepared XA branches when their session disconnects; 2PC needs "
              "MariaDB 10.5 or later, or MySQL 5.7.7 or later");
        }
        // The in-doubt scan needs XA RECOVER (MySQL 8 requires the XA_RECOVER_ADMIN privilege).
        state.what = "XA RECOVER";
        lease->Query("XA RECOVER");
        return Status::Ok();
      });
  if (attempt.value) return std::move(*attempt.value);
  if (!attempt.error) return attempt.connect_failure;
  return database::ToStatus(*attempt.error, Where(attempt.state.what));
}

CallResult MysqlResource::Prepare(std::string_view gid, uint32_t branch_index,
                                  std::span<const Statement> statements,
                                  std::chrono::milliseconds timeout) {
  return RunLocalTransaction(gid, branch_index, statements, timeout, /*prepare=*/true);
}

CallResult MysqlResource::CommitOnePhase(std::string_view gid, uint32_t branch_index,
                                         std::span<const Statement> statements,
                                         std::chrono::milliseconds timeout) {
  return RunLocalTransaction(gid, branch_index, statements, timeout, /*prepare=*/false);
}

CallResult MysqlResource::RunLocalTransaction(std::string_view gid, uint32_t branch_index,
                                              std::span<const Statement> statements,
                                              std::chrono::milliseconds timeout, bool prepare) {
  RegisterThisThread();
  const Clock::time_point deadline = Clock::now() + timeout;
  Result<MysqlXid> xid = database::MakeMysqlXid(options_.node_id, gid, branch_index);
  if (!xid.ok()) return CallResult::Permanent(Where("") + ": " + xid.status().message());
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (Status status = CheckBranchStatement(statements[i], i); !status.ok()) {
      return CallResult::Refused(Where("") + ": " + status.message());
    }
  }
  const std::string xid_sql = database::MysqlXidSql(*xid);

  auto body = [&](Pool::Lease& lease, CallState& state) -> CallResult {
    Connection& connection = *lease;
    state.xid_sql = xid_sql;
    state.what = prepare ? "XA START " + xid_sql : "START TRANSACTION";
    connection.SetStatementTimeout(timeout);
    if (!prepare) {
      connection.Execute("START TRANSACTION");
      state.open = CallState::Open::kLocal;
    } else {
      try {
        connection.Execute("XA START " + xid_sql);
      } catch (const sql::SQLException& error) {
        if (database::ClassifyMysqlException(error).kind != DatabaseErrorKind::kDuplicateXid) {
          throw;
        }
        // 1440: the server knows this xid. Prepared (XA RECOVER lists it) means an earlier
        // attempt of this branch got as far as XA PREPARE and its answer was lost: the vote is
        // yes already. Otherwise a session of an abandoned attempt still has it open: Unknown.
        if (connection.IsPrepared(*xid)) return CallResult::Ok();
        throw;
      }
      state.open = CallState::Open::kXa;
    }
    // From here on a lost connection may leave the old session's locks behind for a moment: no
    // retry within this call.
    state.retry_safe = false;
    state.stage = DatabaseStage::kStatements;
    for (std::size_t i = 0; i < statements.size(); ++i) {
      state.what = StatementName(i);
      if (Clock::now() >= deadline) {
        throw DeadlinePassed("the call's timeout passed before this statement; rolled back");
      }
      connection.Run(statements[i]);
    }
    if (!prepare) {
      state.stage = DatabaseStage::kOnePhaseCommit;
      state.what = "COMMIT";
      connection.Execute("COMMIT");
      state.open = CallState::Open::kNothing;
      return CallResult::Ok();
    }
    state.what = "XA END " + xid_sql;
    connection.Execute("XA END " + xid_sql);
    state.stage = DatabaseStage::kPrepare;
    state.what = "XA PREPARE " + xid_sql;
    connection.Execute("XA PREPARE " + xid_sql);
    state.open = CallState::Open::kNothing;
    // Phase 2 must run on this session while it is connected (the MariaDB trap).
    Park(xid_sql, std::move(lease));
    return CallResult::Ok();
  };
  return FinishCall(WithSession<CallResult>(deadline, body));
}

CallResult MysqlResource::CommitPrepared(std::string_view gid, uint32_t branch_index,
                                         std::chrono::milliseconds timeout) {
  return ResolvePrepared(gid, branch_index, /*commit=*/true, timeout);
}

CallResult MysqlResource::RollbackPrepared(std::string_view gid, uint32_t branch_index,
                                           std::chrono::milliseconds timeout) {
  return ResolvePrepared(gid, branch_index, /*commit=*/false, timeout);
}

CallResult MysqlResource::ResolvePrepared(std::string_view gid, uint32_t branch_index, bool commit,
                                          std::chrono::milliseconds timeout) {
  RegisterThisThread();
  const Clock::time_point deadline = Clock::now() + timeout;
  Result<MysqlXid> xid = database::MakeMysqlXid(options_.node_id, gid, branch_index);
  if (!xid.ok()) return CallResult::Permanent(Where("") + ": " + xid.status().message());
  const std::string xid_sql = database::MysqlXidSql(*xid);
  const std::string command = (commit ? "XA COMMIT " : "XA ROLLBACK ") + xid_sql;
  const DatabaseStage stage =
      commit ? DatabaseStage::kCommitPrepared : DatabaseStage::kRollbackPrepared;

  auto body = [&](Pool::Lease& lease, CallState& state) -> CallResult {
    state.stage = stage;
    state.what = command;
    lease->SetStatementTimeout(timeout);
    std::optional<DatabaseError> unknown_xid;
    try {
      lease->Execute(command);
      return CallResult::Ok();
    } catch (const sql::SQLException& error) {
      DatabaseError classified = database::ClassifyMysqlException(error);
      if (classified.kind != DatabaseErrorKind::kUnknownXid) throw;
      unknown_xid = std::move(classified);
    }
    // 1397 XAER_NOTA: resolved before (or never prepared) -- or the MariaDB trap. XA RECOVER
    // tells them apart.
    state.what = "XA RECOVER after " + command;
    if (!lease->IsPrepared(*xid))
      return database::ToCallResult(*unknown_xid, stage, Where(command));
    state.held_elsewhere = true;
    return CallResult::Transient(
        Where(command) + ": " + unknown_xid->message + " [" + unknown_xid->code +
        "], but XA RECOVER still lists the xid: the branch is prepared and attached to another "
        "session that is still connected, and MariaDB lets only that session finish it until it "
        "disconnects (shared/NOTES.md, the 1397 trap); not done, retry");
  };

  // The preparing session, parked by Prepare: nullopt when the call should go on with any
  // connection (the parked one broke, so its branch is now detached and any session may finish
  // it once the server has noticed).
  const auto on_parked = [&](Pool::Lease parked) -> std::optional<CallResult> {
    Attempt<CallResult> attempt = RunOn<CallResult>(parked, body);
    if (attempt.value && attempt.value->ok()) return CallResult::Ok();  // parked goes to the pool
    if (attempt.error && attempt.error->kind == DatabaseErrorKind::kConnectionLost &&
        Clock::now() < deadline) {
      return std::nullopt;
    }
    // It may still hold the prepared branch: never hand it to another call; keep it parked.
    if (parked && !parked.discarded()) Park(xid_sql, std::move(parked));
    return FinishCall(attempt);
  };

  if (std::optional<Pool::Lease> parked = TakeParked(xid_sql)) {
    if (std::optional<CallResult> result = on_parked(std::move(*parked))) return *result;
  }
  Attempt<CallResult> attempt = WithSession<CallResult>(deadline, body);
  if (attempt.state.held_elsewhere) {
    // The session holding it may be ours, parked meanwhile by a concurrent call: use it.
    if (std::optional<Pool::Lease> parked = TakeParked(xid_sql)) {
      if (std::optional<CallResult> result = on_parked(std::move(*parked))) return *result;
    }
  }
  return FinishCall(attempt);
}

Result<std::vector<InDoubtXid>> MysqlResource::ListInDoubt(std::chrono::milliseconds timeout) {
  RegisterThisThread();
  const Clock::time_point deadline = Clock::now() + timeout;
  using List = std::vector<InDoubtXid>;
  Attempt<List> attempt = WithSession<List>(deadline, [&](Pool::Lease& lease, CallState& state) {
    state.what = "XA RECOVER";
    lease->SetStatementTimeout(timeout);
    std::unique_ptr<sql::ResultSet> rows = lease->Query("XA RECOVER");
    List found;
    // XA RECOVER has no LIMIT: the rows are read, only the first in_doubt_max of ours kept.
    while (rows->next()) {
      const std::optional<MysqlXid> xid =
          database::MysqlXidFromRecoverRow(rows->getInt64(1), rows->getInt64(2), rows->getInt64(3),
                                           rows->getString(4).asStdString());
      if (!xid || found.size() >= options_.in_doubt_max) continue;
      if (std::optional<database::BranchId> branch =
              database::ParseMysqlXid(*xid, options_.node_id)) {
        found.push_back(
            InDoubtXid{std::move(branch->gid), branch->branch_index, database::MysqlXidSql(*xid)});
      }
    }
    return found;
  });
  if (attempt.value) return std::move(*attempt.value);
  if (!attempt.error) return attempt.connect_failure;
  return database::ToStatus(*attempt.error, Where(attempt.state.what));
}

}  // namespace txc::participants::mysql
