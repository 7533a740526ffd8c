// A shop service's MySQL / MariaDB database (Connector/C++ 1.1): the same two ways of running a
// request in one transaction as postgres_database.h, on pooled connections with autocommit off.
//
//   RunBusiness(key, logic)  the barrier first (mysql_barrier.h), `logic` only on kRun
//   Run(work)                admin and read endpoints: committed when `work` answers below 400
//
// A lost connection, a deadlock or a lock wait timeout is 503 (retried by the coordinator), any
// other database error 500. Thread-safe; each serving thread registers itself with the driver.
#pragma once

#include <cppconn/connection.h>

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

class MysqlDatabase {
 public:
  using Schema = std::function<void(sql::Connection&)>;
  using BusinessLogic = std::function<BusinessOutcome(sql::Connection&)>;
  using Work = std::function<server::Response(sql::Connection&)>;

  // `dsn` is mysql://user:password@host:port/database. Connects (a wrong DSN stops the service at
  // start), creates the barrier table and runs `schema` (CREATE TABLE IF NOT EXISTS ...).
  static Result<std::unique_ptr<MysqlDatabase>> Open(const std::string& dsn,
                                                     std::size_t connections_max,
                                                     const Schema& schema);

  server::Response RunBusiness(const barrier::BarrierKey& key, const BusinessLogic& logic);
  server::Response Run(const Work& work);

 private:
  using Pool = participants::database::ConnectionPool<sql::Connection>;

  explicit MysqlDatabase(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}
  // Runs `body` on a pooled connection, turning database exceptions into answers. `body` sets
  // *broken when the connection broke: it is closed, and so are the idle ones.
  server::Response WithConnection(
      const std::function<server::Response(sql::Connection&, bool* broken)>& body);

  std::unique_ptr<Pool> pool_;
};

}  // namespace txc::shop
