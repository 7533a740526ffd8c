// A shop service's PostgreSQL database: a bounded pool of libpqxx connections and the two ways a
// request uses one, each a single transaction:
//
//   RunBusiness(key, logic)  the barrier first, then `logic` only when the verdict is kRun; the
//                            answer follows business_outcome.h
//   Run(work)                admin and read endpoints: no barrier; committed when `work` answers
//                            below 400, rolled back otherwise
//
// Database failures never escape as exceptions: a lost connection, a serialization failure or a
// deadlock is 503 (the coordinator retries, the barrier makes the retry safe), anything else 500.
// Thread-safe.
#pragma once

#include <pqxx/connection>
#include <pqxx/transaction_base>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "coordinator/common/status.h"
#include "coordinator/server/http_message.h"
#include "examples/shop/common/business_outcome.h"
#include "participants/database/connection_pool.h"
#include "tcc/barrier/barrier.h"

namespace txc::shop {

class PostgresDatabase {
 public:
  using Schema = std::function<void(pqxx::transaction_base&)>;
  using BusinessLogic = std::function<BusinessOutcome(pqxx::transaction_base&)>;
  using Work = std::function<server::Response(pqxx::transaction_base&)>;

  // Connects (so that a wrong DSN stops the service at start), creates the barrier table, and runs
  // `schema` (CREATE TABLE IF NOT EXISTS ...) in one transaction. Unavailable when the database
  // cannot be reached, Internal when the schema cannot be created.
  static Result<std::unique_ptr<PostgresDatabase>> Open(const std::string& dsn,
                                                        std::size_t connections_max,
                                                        const Schema& schema);

  server::Response RunBusiness(const barrier::BarrierKey& key, const BusinessLogic& logic);
  server::Response Run(const Work& work);

 private:
  using Pool = participants::database::ConnectionPool<pqxx::connection>;

  PostgresDatabase(const std::string& dsn, std::size_t connections_max);
  // Runs `body` on a pooled connection, turning database exceptions into answers. `body` sets
  // *broken when the connection broke: it is closed, and so are the idle ones.
  server::Response WithConnection(
      const std::function<server::Response(pqxx::connection&, bool* broken)>& body);

  std::unique_ptr<Pool> pool_;
};

}  // namespace txc::shop
