#include "coordinator/embedded/coordinator.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <pqxx/pqxx>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>

#include "coordinator/api/transaction_request.h"
#include "coordinator/common/check.h"
#include "coordinator/engine/engine.h"
#include "coordinator/log/file_log.h"
#include "coordinator/protocol/two_phase_commit.h"
#include "coordinator/recovery/in_doubt_scanner.h"
#include "participants/database/database_branch.h"
#include "participants/database/error_mapping.h"
#include "participants/database/xid.h"
#include "participants/mysql/mysql_resource.h"
#include "participants/postgres/postgres_resource.h"

namespace txc {

using participants::CallContext;
using participants::CallResult;
using participants::Op;
using participants::database::DatabaseResource;
using participants::database::DatabaseStage;

namespace {
constexpr auto kResourceCallTimeout = std::chrono::seconds(10);
}  // namespace

// ---------------------------------------------------------------------------------------------
// One enlisted branch: the application's connection, and what txc knows of its prepare.

struct Transaction::Branch {
  uint32_t index = 0;
  std::string resource_name;
  DatabaseResource* resource = nullptr;
  pqxx::connection* postgres = nullptr;
  sql::Connection* mysql = nullptr;
  std::string xid_sql;  // PostgreSQL: the quoted literal; MySQL: X'..',X'..',format
  // Whether PREPARE was answered: phase 2 then goes by XID; before it, the local transaction is
  // rolled back on the application's connection.
  std::atomic<bool> prepared{false};
  std::atomic<bool> maybe_prepared{false};  // the prepare's answer was lost
};

namespace {

// The participant the engine calls for an enlisted branch.
class EnlistedBranch final : public participants::Participant {
 public:
  explicit EnlistedBranch(std::shared_ptr<Transaction::Branch> branch) : b_(std::move(branch)) {}

  CallResult Call(const CallContext& context) override {
    switch (context.op) {
      case Op::kPrepare:
        return b_->postgres != nullptr ? PreparePostgres() : PrepareMysql();
      case Op::kCommit:
        return Finish(true, context);
      case Op::kAbort:
        return Finish(false, context);
      default:
        return CallResult::Permanent("an enlisted branch takes part in 2pc only");
    }
  }

 private:
  CallResult PreparePostgres() {
    try {
      pqxx::nontransaction tx(*b_->postgres);
      tx.exec("PREPARE TRANSACTION " + b_->xid_sql);
      // After a failed statement PostgreSQL turns PREPARE into a ROLLBACK without an error:
      // check that something really is prepared under the xid.
      auto rows = tx.exec("SELECT 1 FROM pg_prepared_xacts WHERE gid = " + b_->xid_sql);
      if (rows.empty()) {
        return CallResult::Refused("resource " + b_->resource_name +
                                   ": the application's transaction had failed; PostgreSQL "
                                   "rolled it back instead of preparing it");
      }
      b_->prepared = true;
      return CallResult::Ok();
    } catch (const std::exception& e) {
      b_->maybe_prepared = true;
      return participants::database::ToCallResult(
          participants::database::ClassifyPostgresException(e), DatabaseStage::kPrepare,
          "resource " + b_->resource_name);
    }
  }

  CallResult PrepareMysql() {
    MysqlThread thread;
    try {
      std::unique_ptr<sql::Statement> statement(b_->mysql->createStatement());
      statement->execute("XA END " + b_->xid_sql);
      statement->execute("XA PREPARE " + b_->xid_sql);
      b_->prepared = true;
      return CallResult::Ok();
    } catch (const std::exception& e) {
      b_->maybe_prepared = true;
      return participants::database::ToCallResult(participants::database::ClassifyMysqlException(e),
                                                  DatabaseStage::kPrepare,
                                                  "resource " + b_->resource_name);
    }
  }

  CallResult Finish(bool commit, const CallContext& context) {
    const bool prepared = b_->prepared.load() || b_->maybe_prepared.load();
    if (!prepared) {
      // Never prepared: the work is only a local transaction on the application's connection.
      RollbackLocal();
      return CallResult::Ok();
    }
    if (b_->mysql != nullptr && !b_->maybe_prepared.load()) {
      // MariaDB lets only the preparing session finish a branch while that session lives, so
      // phase 2 goes on the application's connection first.
      MysqlThread thread;
      try {
        std::unique_ptr<sql::Statement> statement(b_->mysql->createStatement());
        statement->execute(std::string(commit ? "XA COMMIT " : "XA ROLLBACK ") + b_->xid_sql);
        return CallResult::Ok();
      } catch (const std::exception&) {
        // The connection broke or the branch moved on: the resource settles it by XID, with its
        // safe hand-over from the preparing session.
      }
    }
    const auto timeout = std::chrono::milliseconds(context.timeout_ms);
    return commit ? b_->resource->CommitPrepared(context.gid, b_->index, timeout)
                  : b_->resource->RollbackPrepared(context.gid, b_->index, timeout);
  }

  void RollbackLocal() {
    try {
      if (b_->postgres != nullptr) {
        pqxx::nontransaction tx(*b_->postgres);
        tx.exec("ROLLBACK");
      } else {
        MysqlThread thread;
        std::unique_ptr<sql::Statement> statement(b_->mysql->createStatement());
        try {
          statement->execute("XA END " + b_->xid_sql);
        } catch (const std::exception&) {
          // Already ended: go on to the rollback.
        }
        statement->execute("XA ROLLBACK " + b_->xid_sql);
      }
    } catch (const std::exception&) {
      // A broken connection rolls its local transaction back by itself.
    }
  }

  // Connector/C++ wants every thread that uses it to say so.
  struct MysqlThread {
    MysqlThread() { sql::mysql::get_mysql_driver_instance()->threadInit(); }
    ~MysqlThread() { sql::mysql::get_mysql_driver_instance()->threadEnd(); }
  };

  std::shared_ptr<Transaction::Branch> b_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The coordinator

class Coordinator::Impl {
 public:
  CoordinatorOptions options;
  std::unique_ptr<log::FileLog> log;
  std::map<std::string, std::unique_ptr<DatabaseResource>> resources;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<recovery::InDoubtScanner> scanner;

  ~Impl() {
    if (scanner) scanner->Stop();
    if (engine) engine->Stop();
    if (log) log->Close();
    engine.reset();
  }

  static std::string BeginBody(const std::string& gid,
                               const std::vector<std::shared_ptr<Transaction::Branch>>& branches,
                               int64_t created_unix_ms) {
    Poco::JSON::Object spec;
    spec.set("gid", gid);
    spec.set("protocol", "2pc");
    Poco::JSON::Array list;
    for (const auto& branch : branches) {
      Poco::JSON::Object b;
      b.set("name", "b" + std::to_string(branch->index));
      b.set("resource", branch->resource_name);
      b.set("enlisted", true);
      list.add(b);
    }
    spec.set("branches", list);
    std::ostringstream out;
    spec.stringify(out);
    return "{\"created_unix_ms\":" + std::to_string(created_unix_ms) + ",\"spec\":" + out.str() +
           "}";
  }

  // After a restart an enlisted branch is known by its resource and XID only: the decision (or
  // the presumed abort) reaches it by COMMIT/ROLLBACK PREPARED from any connection.
  Result<engine::TransactionPlan> Rebuild(const std::string& gid,
                                          const std::vector<log::LogRecord>& records) {
    engine::TransactionPlan plan;
    try {
      Poco::JSON::Parser parser;
      auto begin = parser.parse(records.front().body).extract<Poco::JSON::Object::Ptr>();
      plan.created_unix_ms = begin->getValue<int64_t>("created_unix_ms");
      auto spec = begin->getObject("spec");
      auto branches = spec->getArray("branches");
      for (unsigned i = 0; i < branches->size(); ++i) {
        auto b = branches->getObject(i);
        const std::string resource = b->getValue<std::string>("resource");
        auto it = resources.find(resource);
        if (it == resources.end()) {
          return Status::FailedPrecondition("transaction " + gid + " has a branch on resource '" +
                                            resource + "', which is not configured");
        }
        plan.branch_names.push_back(b->getValue<std::string>("name"));
        plan.branch_timeout_ms.push_back(10'000);
        plan.participants.push_back(std::make_shared<participants::database::DatabaseBranch>(
            *it->second, std::vector<participants::database::Statement>{}));
      }
      std::ostringstream canonical;
      spec->stringify(canonical);
      plan.fingerprint = api::Fingerprint(canonical.str());
    } catch (const Poco::Exception& e) {
      return Status::Corruption("the BEGIN record of " + gid +
                                " is not readable: " + e.displayText());
    }
    auto machine =
        protocol::TwoPhaseCommit::Recover(static_cast<uint32_t>(plan.branch_names.size()), records);
    if (!machine.ok()) return machine.status();
    plan.gid = gid;
    plan.protocol = "2pc";
    plan.retry = engine::RetryPolicy{options.retry_initial_ms, options.retry_max_ms};
    plan.begin_body = records.front().body;
    plan.machine = std::make_unique<protocol::TwoPhaseCommit>(std::move(machine).value());
    return plan;
  }
};

Result<std::unique_ptr<Coordinator>> Coordinator::Open(CoordinatorOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.retry_initial_ms <= 0 || options.retry_max_ms < options.retry_initial_ms) {
    return Status::InvalidArgument("retry_max_ms: must be at least retry_initial_ms (> 0)");
  }
  for (size_t i = 0; i < options.resources.size(); ++i) {
    const ResourceOptions& r = options.resources[i];
    const std::string field = "resources[" + std::to_string(i) + "]";
    if (impl->resources.contains(r.name)) {
      return Status::InvalidArgument(field + ".name: '" + r.name + "' is used twice");
    }
    std::unique_ptr<DatabaseResource> resource;
    if (r.kind == "postgres") {
      auto created = participants::postgres::PostgresResource::Create(
          {.name = r.name, .dsn = r.dsn, .node_id = options.node_id});
      if (!created.ok())
        return Status(created.status().code(), field + ": " + created.status().message());
      resource = std::move(created).value();
    } else if (r.kind == "mysql") {
      auto created = participants::mysql::MysqlResource::Create(
          {.name = r.name, .dsn = r.dsn, .node_id = options.node_id});
      if (!created.ok())
        return Status(created.status().code(), field + ": " + created.status().message());
      resource = std::move(created).value();
    } else {
      return Status::InvalidArgument(field + ".kind: must be postgres or mysql, got '" + r.kind +
                                     "'");
    }
    TXC_RETURN_IF_ERROR(resource->CheckReady(kResourceCallTimeout));
    impl->resources[r.name] = std::move(resource);
  }
  log::FileLogOptions log_options;
  log_options.dir = options.log_dir;
  log::RecoveredLog recovered;
  auto log = log::FileLog::Open(log_options, &recovered);
  if (!log.ok()) return log.status();
  impl->log = std::move(log).value();
  impl->engine =
      std::make_unique<engine::Engine>(engine::EngineOptions{}, *impl->log, SystemClock(), nullptr);
  Impl* raw = impl.get();
  TXC_RETURN_IF_ERROR(impl->engine->Recover(
      recovered, [raw](const std::string& gid, const std::vector<log::LogRecord>& records) {
        return raw->Rebuild(gid, records);
      }));
  std::vector<DatabaseResource*> databases;
  for (auto& [name, resource] : impl->resources) databases.push_back(resource.get());
  impl->scanner = std::make_unique<recovery::InDoubtScanner>(
      databases,
      recovery::InDoubtScanner::Owner{
          .is_active = [raw](const std::string& gid) { return raw->engine->IsActive(gid); },
          .is_commit_decided =
              [raw](const std::string& gid) { return raw->engine->IsCommitDecided(gid); }},
      nullptr, recovery::InDoubtScannerOptions{.interval_ms = options.in_doubt_scan_interval_ms});
  const auto pass = impl->scanner->ScanOnce();
  if (!pass.errors.empty()) {
    return Status::Unavailable("in-doubt scan at start-up: " + pass.errors.front());
  }
  impl->scanner->Start();
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;

Result<std::unique_ptr<Transaction>> Coordinator::Begin(const std::string& gid,
                                                        int64_t timeout_ms) {
  if (!api::IsValidGid(gid))
    return Status::InvalidArgument("gid: must be 1 to 56 of A-Z a-z 0-9 . _ -");
  if (timeout_ms <= 0) return Status::InvalidArgument("timeout_ms: must be positive");
  if (impl_->engine->Get(gid).ok()) {
    return Status::AlreadyExists("gid " + gid + " is already used by another transaction");
  }
  return std::unique_ptr<Transaction>(new Transaction(*impl_, gid, timeout_ms));
}

Result<engine::TransactionDocument> Coordinator::Get(const std::string& gid) const {
  return impl_->engine->Get(gid);
}

// ---------------------------------------------------------------------------------------------
// The transaction

Transaction::Transaction(Coordinator::Impl& coordinator, std::string gid, int64_t timeout_ms)
    : coordinator_(coordinator), gid_(std::move(gid)), timeout_ms_(timeout_ms) {}

Transaction::~Transaction() {
  if (!finished_) (void)Abort();
}

Result<std::shared_ptr<Transaction::Branch>> Transaction::NewBranch(const std::string& resource) {
  if (finished_) return Status::FailedPrecondition("transaction " + gid_ + " is finished");
  auto it = coordinator_.resources.find(resource);
  if (it == coordinator_.resources.end()) {
    return Status::InvalidArgument("resource: '" + resource + "' is not configured");
  }
  auto branch = std::make_shared<Branch>();
  branch->index = static_cast<uint32_t>(branches_.size());
  branch->resource_name = resource;
  branch->resource = it->second.get();
  return branch;
}

Status Transaction::Enlist(pqxx::connection& connection, const std::string& resource) {
  auto branch = NewBranch(resource);
  if (!branch.ok()) return branch.status();
  auto xid =
      participants::database::PostgresXid(coordinator_.options.node_id, gid_, (*branch)->index);
  if (!xid.ok()) return xid.status();
  (*branch)->xid_sql = participants::database::PostgresStringLiteral(*xid);
  (*branch)->postgres = &connection;
  try {
    pqxx::nontransaction tx(connection);
    tx.exec("BEGIN");
  } catch (const std::exception& e) {
    return participants::database::ToStatus(participants::database::ClassifyPostgresException(e),
                                            "resource " + resource + ": BEGIN");
  }
  branches_.push_back(std::move(branch).value());
  return Status::Ok();
}

Status Transaction::Enlist(sql::Connection& connection, const std::string& resource) {
  auto branch = NewBranch(resource);
  if (!branch.ok()) return branch.status();
  auto xid =
      participants::database::MakeMysqlXid(coordinator_.options.node_id, gid_, (*branch)->index);
  if (!xid.ok()) return xid.status();
  (*branch)->xid_sql = participants::database::MysqlXidSql(*xid);
  (*branch)->mysql = &connection;
  try {
    std::unique_ptr<sql::Statement> statement(connection.createStatement());
    statement->execute("XA START " + (*branch)->xid_sql);
  } catch (const std::exception& e) {
    return participants::database::ToStatus(participants::database::ClassifyMysqlException(e),
                                            "resource " + resource + ": XA START");
  }
  branches_.push_back(std::move(branch).value());
  return Status::Ok();
}

Result<engine::TransactionDocument> Transaction::Commit(int64_t wait_ms) {
  if (finished_) return Status::FailedPrecondition("transaction " + gid_ + " is finished");
  if (branches_.empty())
    return Status::FailedPrecondition("transaction " + gid_ + " has no branch");
  finished_ = true;
  engine::Engine& engine = *coordinator_.engine;
  engine::TransactionPlan plan;
  plan.gid = gid_;
  plan.protocol = "2pc";
  plan.retry =
      engine::RetryPolicy{coordinator_.options.retry_initial_ms, coordinator_.options.retry_max_ms};
  plan.created_unix_ms = engine.NowUnixMs();
  plan.begin_body = Coordinator::Impl::BeginBody(gid_, branches_, plan.created_unix_ms);
  plan.fingerprint = api::Fingerprint(plan.begin_body);
  for (const auto& branch : branches_) {
    plan.branch_names.push_back("b" + std::to_string(branch->index));
    plan.branch_timeout_ms.push_back(timeout_ms_);
    plan.participants.push_back(std::make_shared<EnlistedBranch>(branch));
  }
  plan.machine = std::make_unique<protocol::TwoPhaseCommit>(static_cast<uint32_t>(branches_.size()),
                                                            engine.MonotonicMs() + timeout_ms_);
  auto submitted = engine.Submit(std::move(plan));
  if (!submitted.ok()) {
    // Nothing was logged, so nothing was prepared: the local transactions can simply go.
    finished_ = false;
    (void)Abort();
    return submitted.status();
  }
  return engine.Wait(gid_, wait_ms);
}

Status Transaction::Abort() {
  if (finished_) return Status::FailedPrecondition("transaction " + gid_ + " is finished");
  finished_ = true;
  for (const auto& branch : branches_) {
    EnlistedBranch participant(branch);
    CallContext context;
    context.gid = gid_;
    context.branch_index = branch->index;
    context.op = Op::kAbort;
    (void)participant.Call(context);
  }
  return Status::Ok();
}

}  // namespace txc
