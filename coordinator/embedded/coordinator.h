// The C++ API for applications that link txc: an embedded coordinator with its own decision log,
// for atomic commits across the application's own PostgreSQL and MySQL/MariaDB connections.
//
//   auto coordinator = txc::Coordinator::Open({.node_id = "app1", .log_dir = "./var/txc",
//       .resources = {{"orders", "postgres", pg_dsn}, {"payments", "mysql", mysql_dsn}}});
//   auto txn = (*coordinator)->Begin("order-1234");
//   (*txn)->Enlist(pg_connection, "orders");      // BEGIN on the application's connection
//   (*txn)->Enlist(mysql_connection, "payments"); // XA START on the application's connection
//   ... the application runs its own statements on both connections ...
//   auto outcome = (*txn)->Commit();  // prepare both, log the decision, commit both
//
// txc does the prepare, the durable decision, phase 2 and recovery: a process that dies anywhere
// in Commit finishes (or presumes abort for) that transaction when the coordinator is opened on
// the same log_dir again, and sweeps the databases for branches prepared under its node_id.
//
// Connections: between Enlist and Commit/Abort the application owns its connections; during
// Commit txc uses them (on its own threads), so the application must not touch them until Commit
// returns. With libpqxx, run the work through pqxx::nontransaction objects that are closed before
// Commit (a pqxx::work would try to commit by itself).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/common/status.h"
#include "coordinator/engine/transaction_document.h"

#include <cppconn/connection.h>

#include <pqxx/connection>

namespace txc {

struct ResourceOptions {
  std::string name;  // how Enlist names it
  std::string kind;  // "postgres" | "mysql"
  std::string
      dsn;  // postgresql://... | mysql://user:pw@host:port/db; used for phase 2 and recovery
};

struct CoordinatorOptions {
  std::string node_id = "c1";  // part of every XID: one per coordinator sharing the databases
  std::string log_dir = "./var/txc";
  std::vector<ResourceOptions> resources;
  int64_t retry_initial_ms = 100;
  int64_t retry_max_ms = 30'000;
  int64_t in_doubt_scan_interval_ms = 30'000;
};

class Transaction;

class Coordinator {
 public:
  // Opens the log (recovering it), checks the databases, finishes what a previous process left
  // unfinished and rolls back orphaned prepared branches of this node_id.
  static Result<std::unique_ptr<Coordinator>> Open(CoordinatorOptions options);
  ~Coordinator();

  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // A new transaction; gid: 1–56 of [A-Za-z0-9._-], unique (a finished gid stays taken for the
  // log's retention). `timeout_ms` bounds the prepare phase.
  Result<std::unique_ptr<Transaction>> Begin(const std::string& gid, int64_t timeout_ms = 30'000);

  // A transaction's document (state, outcome, branches), while active and after it finished.
  Result<engine::TransactionDocument> Get(const std::string& gid) const;

  class Impl;

 private:
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Transaction {
 public:
  ~Transaction();  // an unfinished transaction is aborted: its local transactions rolled back

  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Starts this branch's local transaction on the application's connection (PostgreSQL: BEGIN;
  // MySQL: XA START with the branch's XID). `resource` names a configured resource on the same
  // database as the connection.
  Status Enlist(pqxx::connection& connection, const std::string& resource);
  Status Enlist(sql::Connection& connection, const std::string& resource);

  // Prepares every branch, makes the decision durable, then commits (or, when a branch cannot
  // prepare, rolls back) every branch; returns the final document (outcome "committed" or
  // "aborted", with each branch's last_error). Waits at most `wait_ms` for phase 2 to finish;
  // after that the document is returned as it stands and txc keeps going in the background.
  Result<engine::TransactionDocument> Commit(int64_t wait_ms = 60'000);

  // Rolls back every branch's local transaction; nothing was prepared or logged.
  Status Abort();

  const std::string& gid() const { return gid_; }

  struct Branch;  // one enlisted connection (internal)

 private:
  friend class Coordinator;
  Transaction(Coordinator::Impl& coordinator, std::string gid, int64_t timeout_ms);
  Result<std::shared_ptr<Branch>> NewBranch(const std::string& resource);

  Coordinator::Impl& coordinator_;
  std::string gid_;
  int64_t timeout_ms_;
  std::vector<std::shared_ptr<Branch>> branches_;
  bool finished_ = false;
};

}  // namespace txc
