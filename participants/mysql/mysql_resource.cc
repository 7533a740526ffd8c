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
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "coordinator/common/check.h"
#include "participants/database/error_mapping.h"
#include "participants/database/xid.h"
#include "participants/mysql/innodb_status.h"

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

constexpr const char* kInnodbStatusWhat =
    "SHOW ENGINE INNODB STATUS (the adapter reads the InnoDB transaction list to tell when MariaDB "
    "has released a prepared branch's session; it needs the PROCESS privilege)";

// The guard's polling: the first re-reading soon (a closed session is usually gone within about
// a millisecond), then less often (each reading takes InnoDB's lock_sys latch for a moment).
constexpr std::chrono::milliseconds kGuardFirstPause{2};
constexpr std::chrono::milliseconds kGuardLongestPause{50};

std::string JoinIds(const std::vector<uint64_t>& ids, const char* separator = ", ") {
  std::string text;
  for (const uint64_t id : ids) text += (text.empty() ? "" : separator) + std::to_string(id);
  return text;
}

// The user-level lock every session of this adapter holds on MariaDB (see the header): names the
// node, so that a later process of the same node can tell its predecessor's sessions from other
// nodes'. At most 4 + 32 + 1 + 20 characters (MariaDB allows 64).
std::string MarkerLock(const std::string& node_id, uint64_t session_id) {
  return "txc:" + node_id + ":" + std::to_string(session_id);
}

// The sessions of this process on each server (by Connector host name), shared by every
// MysqlResource object: which ones are live connections of ours, and which ones were given up
// while they may have held a prepared branch. Process-wide because two resources of this node on
// one server may resolve each other's xids (XA RECOVER is server-wide).
class ProcessSessions {
 public:
  static ProcessSessions& Instance() {
    // Never destroyed: connections may close during static destruction.
    static ProcessSessions* const instance = new ProcessSessions;
    return *instance;
  }

  void AddLive(const std::string& server, uint64_t id) {
    std::lock_guard lock(mutex_);
    live_[server].insert(id);
  }
  void RemoveLive(const std::string& server, uint64_t id) {
    std::lock_guard lock(mutex_);
    auto found = live_.find(server);
    if (found == live_.end()) return;
    if (auto one = found->second.find(id); one != found->second.end()) found->second.erase(one);
    if (found->second.empty()) live_.erase(found);
  }
  bool IsLive(const std::string& server, uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto found = live_.find(server);
    return found != live_.end() && found->second.contains(id);
  }

  void Release(const std::string& server, const std::string& xid_sql, uint64_t id) {
    std::lock_guard lock(mutex_);
    released_[{server, xid_sql}] = id;
  }
  // Forgets the record of `xid_sql` if it names session `id`.
  void Forget(const std::string& server, const std::string& xid_sql, uint64_t id) {
    std::lock_guard lock(mutex_);
    auto found = released_.find({server, xid_sql});
    if (found != released_.end() && found->second == id) released_.erase(found);
  }
  std::optional<uint64_t> Released(const std::string& server, const std::string& xid_sql) const {
    std::lock_guard lock(mutex_);
    auto found = released_.find({server, xid_sql});
    if (found == released_.end()) return std::nullopt;
    return found->second;
  }
  // Drops the records whose session holds no InnoDB transaction now: such a session has detached
  // its branch for good.
  void Prune(const std::string& server, const std::set<uint64_t>& busy) {
    std::lock_guard lock(mutex_);
    std::erase_if(released_, [&](const auto& entry) {
      return entry.first.first == server && !busy.contains(entry.second);
    });
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::multiset<uint64_t>> live_;
  std::map<std::pair<std::string, std::string>, uint64_t> released_;
};

}  // namespace

struct MysqlResource::Connection {
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Leaves the process's live sessions before the session closes: from then on the guard of any
  // resource treats it like a stranger's session.
  ~Connection() {
    if (!server.empty()) ProcessSessions::Instance().RemoveLive(server, id);
  }

  std::unique_ptr<sql::Connection> session;
  ServerVersion version;
  uint64_t id = 0;     // CONNECTION_ID(): the session's id in PROCESSLIST and InnoDB's thread id
  std::string server;  // ProcessSessions key once registered as live; empty before
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

  // The Status column of SHOW ENGINE INNODB STATUS (one row: Type, Name, Status).
  std::string InnodbStatus() {
    std::unique_ptr<sql::ResultSet> rows = Query("SHOW ENGINE INNODB STATUS");
    return rows->next() ? rows->getString(3).asStdString() : std::string();
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
  // The session may hold the prepared branch xid_sql (XA PREPARE was sent on it, or it is the
  // parked preparing session): if it has to be discarded, the hand-over guard must know.
  bool may_hold_prepared = false;
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
  // and is finished by xid later (by this coordinator after its restart, or its in-doubt scan, or
  // another resource object of this process, whose hand-over guard then waits for the session).
  for (auto& [key, entry] : parked) {
    if (!entry.lease) continue;
    ProcessSessions::Instance().Release(entry.lease->server, key, entry.lease->id);
    entry.lease.Discard();
  }
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

std::optional<uint64_t> MysqlResource::ParkedSessionId(std::string_view gid,
                                                       uint32_t branch_index) const {
  Result<MysqlXid> xid = database::MakeMysqlXid(options_.node_id, gid, branch_index);
  if (!xid.ok()) return std::nullopt;
  std::lock_guard lock(parked_mutex_);
  auto found = parked_.find(database::MysqlXidSql(*xid));
  if (found == parked_.end() || !found->second.lease) return std::nullopt;
  return found->second.lease->id;
}

Result<std::unique_ptr<MysqlResource::Connection>> MysqlResource::Connect(
    Clock::time_point deadline) {
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
    std::unique_ptr<sql::ResultSet> row = connection->Query("SELECT VERSION(), CONNECTION_ID()");
    if (row->next()) {
      connection->version = ParseServerVersion(row->getString(1));
      connection->id = row->getUInt64(2);
    }
    if (connection->version.mariadb) {
      // The node's marker (see the header): a fresh name, so it is always free.
      std::unique_ptr<sql::ResultSet> marker = connection->Query(
          "SELECT GET_LOCK('" + MarkerLock(options_.node_id, connection->id) + "', 0)");
      if (!marker->next() || marker->getInt(1) != 1) {
        return Status::Internal(Where("connect to " + dsn_.Redacted()) +
                                ": GET_LOCK of the session's marker lock did not answer 1");
      }
    }
    connection->server = dsn_.ConnectorHostName();
    ProcessSessions::Instance().AddLive(connection->server, connection->id);
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
// (state.open) is undone, or the connection discarded when it broke or cannot be cleaned up. A
// discarded session that may hold a prepared branch is remembered for the hand-over guard.
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
  const auto discard = [&] {
    lease.Discard();
    if (attempt.state.may_hold_prepared) {
      ProcessSessions::Instance().Release(lease->server, attempt.state.xid_sql, lease->id);
    }
  };
  if (database::MustDiscardConnection(error)) {
    discard();
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
    discard();
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
  std::string evicted_key = key;
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
        evicted_key = oldest->first;
        parked_.erase(oldest);
      }
      parked_.emplace(key, Parked{std::move(lease), ++parked_sequence_});
    }
    TXC_CHECK(parked_.size() <= options_.parked_max, "more connections parked than parked_max");
  }
  // Closed outside the lock: the server detaches the branch it holds, and any session can finish
  // it once the server is done ending this one (the hand-over guard waits for that).
  if (evicted) {
    ProcessSessions::Instance().Release(evicted->server, evicted_key, evicted->id);
    evicted.Discard();
  }
}

std::optional<MysqlResource::Pool::Lease> MysqlResource::TakeParked(const std::string& key) {
  std::lock_guard lock(parked_mutex_);
  auto found = parked_.find(key);
  if (found == parked_.end()) return std::nullopt;
  Pool::Lease lease = std::move(found->second.lease);
  parked_.erase(found);
  // Recorded while still under the lock: a concurrent call for this xid that finds nothing parked
  // must wait for this session if it breaks (the caller forgets it again on success).
  ProcessSessions::Instance().Release(lease->server, key, lease->id);
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
        if (version.mariadb) {
          // The hand-over guard reads the InnoDB transaction list (PROCESS privilege).
          state.what = kInnodbStatusWhat;
          if (!ParseInnodbTransactions(lease->InnodbStatus())) {
            return Status::FailedPrecondition(
                Where("") +
                ": cannot read the transaction list of SHOW ENGINE INNODB STATUS on this server; "
                "the adapter needs it to tell when MariaDB has released a prepared branch's "
                "session");
          }
        }
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
    // From here on the session may hold the prepared branch even if the answer is lost.
    state.may_hold_prepared = true;
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

std::optional<std::string> MysqlResource::AwaitHandOver(Connection& connection,
                                                        const std::string* xid_sql,
                                                        Clock::time_point deadline,
                                                        CallState& state) {
  // MySQL 8 detaches a branch at XA PREPARE, and MySQL was not measured here: only MariaDB pays
  // for the readings.
  if (!connection.version.mariadb) return std::nullopt;
  std::chrono::milliseconds pause = kGuardFirstPause;
  for (;;) {
    std::optional<std::string> reason = CheckHandOver(connection, xid_sql, state);
    if (!reason || Clock::now() + pause >= deadline) return reason;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, kGuardLongestPause);
  }
}

// One reading of the guard (see the header). Throws what the queries throw.
std::optional<std::string> MysqlResource::CheckHandOver(Connection& connection,
                                                        const std::string* xid_sql,
                                                        CallState& state) {
  ProcessSessions& sessions = ProcessSessions::Instance();
  std::optional<uint64_t> released;
  if (xid_sql != nullptr) released = sessions.Released(connection.server, *xid_sql);
  if (!released && earlier_sessions_settled_.load()) return std::nullopt;  // no reading needed

  state.what = kInnodbStatusWhat;
  const std::optional<InnodbTransactions> status =
      ParseInnodbTransactions(connection.InnodbStatus());
  if (!status) {
    return "SHOW ENGINE INNODB STATUS printed no complete transaction list (cut at 1 MiB, or in "
           "an unknown format), so the adapter cannot tell whether MariaDB has released the "
           "sessions that may hold prepared branches; not done, retry";
  }
  // Sessions holding an open or prepared InnoDB transaction. A prepared branch stays attached to
  // the session that prepared it until the server has completely ended that session.
  std::set<uint64_t> busy;
  for (const AttachedTransaction& transaction : status->attached) {
    if (transaction.started) busy.insert(transaction.session_id);
  }
  sessions.Prune(connection.server, busy);

  std::vector<uint64_t> earlier;
  if (!earlier_sessions_settled_.load()) {
    earlier = EarlierSessionsBeingEnded(connection, {busy.begin(), busy.end()}, state);
    if (earlier.empty()) earlier_sessions_settled_.store(true);
  }
  const bool released_busy = released && busy.contains(*released);
  if (!released_busy && earlier.empty()) return std::nullopt;

  std::string reason;
  if (released_busy) {
    reason = "waiting for MariaDB to release the preparing session " + std::to_string(*released) +
             ": this process gave that session up (evicted at parked_max, broken, or discarded "
             "after an error) while it held the prepared branch, and the server has not finished "
             "ending it";
  } else {
    reason = "waiting for MariaDB to finish session(s) " + JoinIds(earlier) +
             ", which hold InnoDB transactions and are being ended or were opened by an earlier "
             "process of node " +
             options_.node_id +
             " (it may have prepared branches on them; KILL them if that process is gone)";
  }
  return reason +
         "; resolving a branch from another session while the session that prepared it is being "
         "ended can answer success without doing anything (MariaDB keeps the branch prepared with "
         "its locks, and XA RECOVER stops listing it); not done, retry";
}

// Of the `busy` sessions (holding InnoDB transactions), those that may hold a branch of this node
// that is not this process's: not a live session of this process, and either still carrying this
// node's marker or being ended ('Killed', or already gone from PROCESSLIST). The marker is read
// before PROCESSLIST: MariaDB releases it while ending the session, after the session shows
// 'Killed', so a session of this node whose marker was already free shows 'Killed' or is gone by
// the second query.
std::vector<uint64_t> MysqlResource::EarlierSessionsBeingEnded(Connection& connection,
                                                               const std::vector<uint64_t>& busy,
                                                               CallState& state) {
  ProcessSessions& sessions = ProcessSessions::Instance();
  std::vector<uint64_t> candidates;
  for (const uint64_t id : busy) {
    if (!sessions.IsLive(connection.server, id)) candidates.push_back(id);
  }
  std::vector<uint64_t> counted;
  // In slices: one query per slice names each candidate twice.
  constexpr std::size_t kSlice = 200;
  for (std::size_t begin = 0; begin < candidates.size(); begin += kSlice) {
    const std::vector<uint64_t> slice(candidates.begin() + static_cast<std::ptrdiff_t>(begin),
                                      candidates.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                               candidates.size(), begin + kSlice)));
    std::string markers;
    for (const uint64_t id : slice) {
      markers += std::string(markers.empty() ? "" : ", ") + "IS_USED_LOCK('" +
                 MarkerLock(options_.node_id, id) + "')";
    }
    state.what = "SELECT IS_USED_LOCK(...) (the node's marker on " + std::to_string(slice.size()) +
                 " session(s))";
    std::set<uint64_t> marked;
    {
      std::unique_ptr<sql::ResultSet> row = connection.Query("SELECT " + markers);
      if (row->next()) {
        for (std::size_t i = 0; i < slice.size(); ++i) {
          const auto column = static_cast<uint32_t>(i + 1);
          if (!row->isNull(column) && row->getUInt64(column) == slice[i]) marked.insert(slice[i]);
        }
      }
    }
    state.what = "information_schema.PROCESSLIST (" + std::to_string(slice.size()) + " session(s))";
    std::map<uint64_t, std::string> commands;
    {
      std::unique_ptr<sql::ResultSet> rows =
          connection.Query("SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE ID IN (" +
                           JoinIds(slice, ",") + ")");
      while (rows->next()) commands[rows->getUInt64(1)] = rows->getString(2).asStdString();
    }
    for (const uint64_t id : slice) {
      const auto command = commands.find(id);
      if (marked.contains(id) || command == commands.end() || command->second == "Killed") {
        counted.push_back(id);
      }
    }
  }
  return counted;
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

  // XA COMMIT / XA ROLLBACK on `lease`, telling the MariaDB trap apart from "already resolved".
  const auto resolve = [&](Pool::Lease& lease, CallState& state) -> CallResult {
    state.stage = stage;
    state.what = command;
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
  // On the preparing session (the fast path): no hand-over, no guard.
  const auto on_preparing = [&](Pool::Lease& lease, CallState& state) -> CallResult {
    state.xid_sql = xid_sql;
    state.may_hold_prepared = true;
    lease->SetStatementTimeout(timeout);
    return resolve(lease, state);
  };
  // On any other session: only once the hand-over guard is clear.
  const auto on_other = [&](Pool::Lease& lease, CallState& state) -> CallResult {
    lease->SetStatementTimeout(timeout);
    // Nothing is sent for the branch before the guard is clear: a lost connection here is
    // retried like before any statement.
    if (std::optional<std::string> reason = AwaitHandOver(*lease, &xid_sql, deadline, state)) {
      return CallResult::Transient(Where(command) + ": " + *reason);
    }
    return resolve(lease, state);
  };

  // The preparing session, parked by Prepare: nullopt when the call should go on with any
  // connection (the parked one broke, so its branch is detached or being detached, and any
  // session may finish it once the guard is clear). TakeParked already recorded the session as
  // given up, so that a concurrent call for this xid waits for it if it breaks; the record is
  // dropped again when the session stays ours.
  const auto on_parked = [&](Pool::Lease parked) -> std::optional<CallResult> {
    const std::string server = parked->server;
    const uint64_t session = parked->id;
    Attempt<CallResult> attempt = RunOn<CallResult>(parked, on_preparing);
    if (attempt.value && attempt.value->ok()) {
      ProcessSessions::Instance().Forget(server, xid_sql, session);
      return CallResult::Ok();  // parked goes to the pool
    }
    if (attempt.error && attempt.error->kind == DatabaseErrorKind::kConnectionLost &&
        Clock::now() < deadline) {
      return std::nullopt;
    }
    // It may still hold the prepared branch: never hand it to another call; keep it parked.
    if (parked && !parked.discarded()) {
      ProcessSessions::Instance().Forget(server, xid_sql, session);
      Park(xid_sql, std::move(parked));
    }
    return FinishCall(attempt);
  };

  if (std::optional<Pool::Lease> parked = TakeParked(xid_sql)) {
    if (std::optional<CallResult> result = on_parked(std::move(*parked))) return *result;
  }
  Attempt<CallResult> attempt = WithSession<CallResult>(deadline, on_other);
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
  // No hand-over guard: listing changes nothing, and every branch listed is resolved through the
  // guarded phase 2.
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
