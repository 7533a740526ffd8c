#include "examples/shop/common/mysql_database.h"

#include <cppconn/exception.h>
#include <mysql_driver.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include "participants/mysql/mysql_dsn.h"
#include "tcc/barrier/mysql_barrier.h"

namespace txc::shop {
namespace {

constexpr auto kAcquireTimeout = std::chrono::seconds(5);
constexpr int kConnectTimeoutS = 5;
constexpr int kReadWriteTimeoutS = 30;

// The driver singleton: its first get_mysql_driver_instance() is not thread-safe.
sql::mysql::MySQL_Driver* Driver() {
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* driver = nullptr;
  std::call_once(once, [] { driver = sql::mysql::get_mysql_driver_instance(); });
  return driver;
}

// Registers the calling thread with the driver on first use, and unregisters it at thread exit.
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

// Client and server errors that mean the session is gone: server gone away (2006), lost during a
// query (2013), cannot connect (2002, 2003), lost (2055), killed (1927), server shutting down
// (1053).
bool IsConnectionLost(int code) {
  return code == 2006 || code == 2013 || code == 2002 || code == 2003 || code == 2055 ||
         code == 1927 || code == 1053;
}

// Errors after which the same request may well succeed: deadlock (1213), lock wait timeout (1205).
bool IsTransient(int code) { return IsConnectionLost(code) || code == 1213 || code == 1205; }

std::string Describe(const sql::SQLException& e) {
  return "MySQL error " + std::to_string(e.getErrorCode()) + " (SQLSTATE " + e.getSQLState() +
         "): " + e.what();
}

}  // namespace

Result<std::unique_ptr<MysqlDatabase>> MysqlDatabase::Open(const std::string& dsn,
                                                           std::size_t connections_max,
                                                           const Schema& schema) {
  Result<participants::mysql::MysqlDsn> parsed = participants::mysql::ParseMysqlDsn(dsn);
  if (!parsed.ok()) return parsed.status();
  auto factory =
      [parsed = *parsed](Pool::Clock::time_point) -> Result<std::unique_ptr<sql::Connection>> {
    try {
      RegisterThisThread();
      sql::ConnectOptionsMap options;
      options["hostName"] = sql::SQLString(parsed.ConnectorHostName());
      options["userName"] = sql::SQLString(parsed.user);
      options["password"] = sql::SQLString(parsed.password);
      if (!parsed.database.empty()) options["schema"] = sql::SQLString(parsed.database);
      options["OPT_CONNECT_TIMEOUT"] = kConnectTimeoutS;
      options["OPT_READ_TIMEOUT"] = kReadWriteTimeoutS;
      options["OPT_WRITE_TIMEOUT"] = kReadWriteTimeoutS;
      // A silent reconnect in the middle of a transaction would run its rest outside it.
      options["OPT_RECONNECT"] = false;
      options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
      std::unique_ptr<sql::Connection> connection(Driver()->connect(options));
      connection->setAutoCommit(false);
      return connection;
    } catch (const sql::SQLException& e) {
      return Status::Unavailable("cannot connect to " + parsed.Redacted() + ": " + Describe(e));
    }
  };
  std::unique_ptr<MysqlDatabase> database(
      new MysqlDatabase(std::make_unique<Pool>(connections_max, std::move(factory))));

  Result<Pool::Lease> lease = database->pool_->Acquire(Pool::Clock::now() + kAcquireTimeout);
  if (!lease.ok()) return lease.status();
  try {
    if (Status barrier_table = barrier::EnsureMysqlBarrierTable(**lease); !barrier_table.ok()) {
      return Status::Internal("creating the barrier table: " + barrier_table.message());
    }
    schema(**lease);
    (*lease)->commit();
  } catch (const sql::SQLException& e) {
    lease->Discard();
    return Status::Internal("creating the tables: " + Describe(e));
  }
  return database;
}

server::Response MysqlDatabase::WithConnection(
    const std::function<server::Response(sql::Connection&, bool* broken)>& body) {
  RegisterThisThread();
  Result<Pool::Lease> lease = pool_->Acquire(Pool::Clock::now() + kAcquireTimeout);
  if (!lease.ok()) return DatabaseUnavailableResponse(lease.status().message());
  sql::Connection& connection = **lease;
  try {
    bool broken = false;
    server::Response response = body(connection, &broken);
    if (broken) {
      lease->Discard();
      pool_->DiscardIdle();  // opened to the same server: likely broken too
    }
    return response;
  } catch (const sql::SQLException& e) {
    if (IsConnectionLost(e.getErrorCode())) {
      lease->Discard();
      pool_->DiscardIdle();  // opened to the same server: likely broken too
    } else {
      try {
        connection.rollback();
      } catch (const sql::SQLException&) {
        lease->Discard();
      }
    }
    if (IsTransient(e.getErrorCode())) return DatabaseUnavailableResponse(Describe(e));
    return server::ErrorResponse(500, "database_error", Describe(e));
  } catch (const std::exception& e) {
    lease->Discard();  // its state is unknown
    return server::ErrorResponse(500, "database_error", e.what());
  }
}

server::Response MysqlDatabase::RunBusiness(const barrier::BarrierKey& key,
                                            const BusinessLogic& logic) {
  return WithConnection([&](sql::Connection& connection, bool* broken) {
    Result<barrier::Verdict> verdict = barrier::EnterMysql(connection, key);
    if (!verdict.ok()) {
      if (verdict.status().code() != StatusCode::kUnavailable) connection.rollback();
      *broken = verdict.status().code() == StatusCode::kUnavailable;
      return BarrierErrorResponse(verdict.status());
    }
    if (std::optional<server::Response> early = VerdictResponse(*verdict, key)) {
      connection.commit();  // the barrier's row must survive whatever the verdict
      return std::move(*early);
    }
    BusinessOutcome outcome = logic(connection);
    if (outcome.refused()) {
      connection.rollback();  // the barrier's row goes too: the op did not happen
    } else {
      connection.commit();
    }
    return outcome.ToResponse();
  });
}

server::Response MysqlDatabase::Run(const Work& work) {
  return WithConnection([&](sql::Connection& connection, bool* /*broken*/) {
    server::Response response = work(connection);
    if (response.status < 400) {
      connection.commit();
    } else {
      connection.rollback();
    }
    return response;
  });
}

}  // namespace txc::shop
