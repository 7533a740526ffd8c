#include "examples/shop/common/postgres_database.h"

#include <pqxx/except>
#include <pqxx/transaction>

#include <chrono>
#include <exception>
#include <utility>

#include "tcc/barrier/postgres_barrier.h"

namespace txc::shop {
namespace {

// How long a request waits for a pooled connection before it is answered 503.
constexpr auto kAcquireTimeout = std::chrono::seconds(5);

// SQLSTATEs after which the same request may well succeed: serialization failure, deadlock, lock
// not available, the server shutting down or gone.
bool IsTransient(const std::string& sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" ||
         sqlstate.starts_with("57P") || sqlstate.starts_with("08");
}

}  // namespace

PostgresDatabase::PostgresDatabase(const std::string& dsn, std::size_t connections_max)
    : pool_(std::make_unique<Pool>(
          connections_max,
          [dsn](Pool::Clock::time_point) -> Result<std::unique_ptr<pqxx::connection>> {
            try {
              return std::make_unique<pqxx::connection>(dsn);
            } catch (const std::exception& e) {
              return Status::Unavailable(std::string("cannot connect to PostgreSQL: ") + e.what());
            }
          })) {}

Result<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(const std::string& dsn,
                                                                 std::size_t connections_max,
                                                                 const Schema& schema) {
  std::unique_ptr<PostgresDatabase> database(new PostgresDatabase(dsn, connections_max));
  Result<Pool::Lease> lease = database->pool_->Acquire(Pool::Clock::now() + kAcquireTimeout);
  if (!lease.ok()) return lease.status();
  try {
    if (Status barrier_table = barrier::EnsurePostgresBarrierTable(**lease); !barrier_table.ok()) {
      return Status::Internal("creating the barrier table: " + barrier_table.message());
    }
    pqxx::work transaction(**lease);
    schema(transaction);
    transaction.commit();
  } catch (const std::exception& e) {
    lease->Discard();
    return Status::Internal(std::string("creating the tables: ") + e.what());
  }
  return database;
}

server::Response PostgresDatabase::WithConnection(
    const std::function<server::Response(pqxx::connection&, bool* broken)>& body) {
  Result<Pool::Lease> lease = pool_->Acquire(Pool::Clock::now() + kAcquireTimeout);
  if (!lease.ok()) return DatabaseUnavailableResponse(lease.status().message());
  try {
    bool broken = false;
    server::Response response = body(**lease, &broken);
    if (broken) {
      lease->Discard();
      pool_->DiscardIdle();  // opened to the same server: likely broken too
    }
    return response;
  } catch (const pqxx::broken_connection& e) {
    // Its siblings were opened to the same server: likely broken too (a restart).
    lease->Discard();
    pool_->DiscardIdle();
    return DatabaseUnavailableResponse(std::string("the connection to PostgreSQL broke: ") +
                                       e.what());
  } catch (const pqxx::in_doubt_error& e) {
    // The commit may or may not have happened; a retry finds out through the barrier.
    lease->Discard();
    return DatabaseUnavailableResponse(std::string("commit outcome unknown: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    if (IsTransient(e.sqlstate())) {
      return DatabaseUnavailableResponse("PostgreSQL (SQLSTATE " + e.sqlstate() + "): " + e.what());
    }
    return server::ErrorResponse(500, "database_error",
                                 "PostgreSQL (SQLSTATE " + e.sqlstate() + "): " + e.what());
  } catch (const std::exception& e) {
    lease->Discard();  // its state is unknown
    return server::ErrorResponse(500, "database_error", e.what());
  }
}

server::Response PostgresDatabase::RunBusiness(const barrier::BarrierKey& key,
                                               const BusinessLogic& logic) {
  return WithConnection([&](pqxx::connection& connection, bool* broken) {
    pqxx::work transaction(connection);
    Result<barrier::Verdict> verdict = barrier::EnterPostgres(transaction, key);
    if (!verdict.ok()) {
      *broken = verdict.status().code() == StatusCode::kUnavailable;
      return BarrierErrorResponse(verdict.status());
    }
    if (std::optional<server::Response> early = VerdictResponse(*verdict, key)) {
      transaction.commit();  // the barrier's row must survive whatever the verdict
      return std::move(*early);
    }
    BusinessOutcome outcome = logic(transaction);
    if (outcome.refused()) {
      transaction.abort();  // the barrier's row goes too: the op did not happen
    } else {
      transaction.commit();
    }
    return outcome.ToResponse();
  });
}

server::Response PostgresDatabase::Run(const Work& work) {
  return WithConnection([&](pqxx::connection& connection, bool* /*broken*/) {
    pqxx::work transaction(connection);
    server::Response response = work(transaction);
    if (response.status < 400) {
      transaction.commit();
    } else {
      transaction.abort();
    }
    return response;
  });
}

}  // namespace txc::shop
