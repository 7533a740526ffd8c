// 2PC in process against the real servers of scripts/dbs.sh: the Engine over a FileLog, plans made
// by the PlanBuilder from API bodies, branches on a real PostgresResource and MysqlResource (and,
// where a test must hold a transaction between its phases, an HTTP branch served by a
// TestHttpServer whose prepare waits for the test). Covered: a commit across PostgreSQL and
// MariaDB, a failing statement (abort everywhere, nothing applied, nothing prepared), statements
// that outlive the timeout (a row lock held by the test, pg_sleep), a database stopped and
// started again between prepare and commit (the prepared branch survives, phase 2 is retried
// until the server is back), and the in-doubt scanner.
//
// Needs TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (and, for the restart tests, TXC_TEST_DBS_SH and
// TXC_TEST_DB_DIR); fails naming the variable when one is missing. Restarts the servers, so it
// runs alone (RUN_SERIAL). Every test uses its own node id and tables, and fails when it leaves
// a prepared branch of its node behind.
#include <cppconn/connection.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coordinator/api/plan_builder.h"
#include "coordinator/api/transaction_request.h"
#include "coordinator/common/clock.h"
#include "coordinator/engine/engine.h"
#include "coordinator/log/file_log.h"
#include "coordinator/recovery/in_doubt_scanner.h"
#include "participants/database/statement.h"
#include "participants/database/xid.h"
#include "participants/http/http_client_pool.h"
#include "participants/mysql/mysql_resource.h"
#include "participants/postgres/postgres_resource.h"
#include "tests/support/db_env.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc {
namespace {

using namespace std::chrono_literals;
using engine::TransactionDocument;
using participants::database::Statement;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Success paths get plenty of time; short timeouts only where a timeout is the point.
constexpr int64_t kFinalWaitMs = 60'000;
constexpr milliseconds kCallTimeout = 10s;

std::vector<std::string> States(const TransactionDocument& document) {
  std::vector<std::string> states;
  for (const auto& branch : document.branches) states.push_back(branch.state);
  return states;
}

const engine::BranchDocument* BranchNamed(const TransactionDocument& document,
                                          const std::string& name) {
  for (const auto& branch : document.branches) {
    if (branch.name == name) return &branch;
  }
  return nullptr;
}

// Runs a scripts/dbs.sh command on the test's servers; true when it succeeded.
bool RunDbs(const std::string& dbs_sh, const std::string& command, const std::string& dir) {
  const std::string line = "'" + dbs_sh + "' " + command + " '" + dir + "'";
  return std::system(line.c_str()) == 0;
}

// An HTTP branch whose prepare waits until the test opens the gate (bounded, so that a failing
// test cannot hang); everything else, and the prepare once open, answers 200.
class GatedParticipant {
 public:
  GatedParticipant() {
    server_.SetHandler([this](const testing::CapturedRequest& request) {
      if (request.Header("Txc-Op") == "prepare") {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, 60s, [&] { return open_; });
      }
      return testing::Answer{};
    });
  }
  ~GatedParticipant() { Open(); }  // before the server stops: its handlers must end

  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  size_t Count(const std::string& op) const {
    size_t n = 0;
    for (const auto& request : server_.requests()) n += request.Header("Txc-Op") == op ? 1 : 0;
    return n;
  }
  std::string BranchJson(const std::string& name) const {
    return "{\"name\":\"" + name + "\",\"prepare\":{\"url\":\"" + server_.Url("/prepare") +
           "\",\"timeout_ms\":60000},\"commit\":{\"url\":\"" + server_.Url("/commit") +
           "\"},\"abort\":{\"url\":\"" + server_.Url("/abort") + "\"}}";
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  testing::TestHttpServer server_;  // last: stopped first
};

// {"name": ..., "resource": ..., "sql": [...]} from statements written as JSON objects.
std::string DatabaseBranch(const std::string& name, const std::string& resource,
                           const std::vector<std::string>& statements) {
  std::string json = "{\"name\":\"" + name + "\",\"resource\":\"" + resource + "\",\"sql\":[";
  for (size_t i = 0; i < statements.size(); ++i) json += (i > 0 ? "," : "") + statements[i];
  return json + "]}";
}

std::string Transaction(const std::string& gid, const std::vector<std::string>& branches,
                        int64_t timeout_ms = 30'000) {
  std::string json = "{\"gid\":\"" + gid +
                     "\",\"protocol\":\"2pc\",\"timeout_ms\":" + std::to_string(timeout_ms) +
                     ",\"retry\":{\"initial_ms\":50,\"max_ms\":500},\"branches\":[";
  for (size_t i = 0; i < branches.size(); ++i) json += (i > 0 ? "," : "") + branches[i];
  return json + "]}";
}

class TwoPhaseEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
    TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
    pg_dsn_ = pg_dsn;
    mysql_dsn_ = mysql_dsn;
    static int counter = 0;
    node_ = "ie" + std::to_string(getpid()) + "t" + std::to_string(++counter);
    foreign_node_ = node_ + "x";
    table_ = "it_2pc_" + node_;

    ConnectAdmins();
    testing::ExecPostgres(*pg_admin_, "DROP TABLE IF EXISTS " + table_);
    testing::ExecPostgres(
        *pg_admin_, "CREATE TABLE " + table_ + " (id TEXT PRIMARY KEY, v INT NOT NULL, note TEXT)");
    testing::ExecPostgres(*pg_admin_, "INSERT INTO " + table_ + " VALUES ('locked', 0, NULL)");
    testing::ExecMysql(*mysql_admin_, "DROP TABLE IF EXISTS " + table_);
    testing::ExecMysql(*mysql_admin_, "CREATE TABLE " + table_ +
                                          " (id VARCHAR(64) PRIMARY KEY, v INT NOT NULL, "
                                          "note VARCHAR(64) NULL) ENGINE=InnoDB");
    testing::ExecMysql(*mysql_admin_, "INSERT INTO " + table_ + " VALUES ('locked', 0, NULL)");

    pg_ = MakePostgres(node_);
    mysql_ = MakeMysql(node_);
    ASSERT_TRUE(pg_ && mysql_);
    const Status pg_ready = pg_->CheckReady(kCallTimeout);
    ASSERT_TRUE(pg_ready.ok()) << pg_ready.ToString();
    const Status mysql_ready = mysql_->CheckReady(kCallTimeout);
    ASSERT_TRUE(mysql_ready.ok()) << mysql_ready.ToString();

    api::RequestContext context;
    context.resource_kind = [](const std::string& name) -> std::optional<std::string> {
      if (name == "orders") return "postgres";
      if (name == "payments") return "mysql";
      return std::nullopt;
    };
    context.generate_gid = [] { return std::string("generated"); };
    api::PlanResources resources;
    resources.databases = {{"orders", pg_.get()}, {"payments", mysql_.get()}};
    resources.http_pool = &http_pool_;
    plans_ = std::make_unique<api::PlanBuilder>(context, resources);

    log::FileLogOptions log_options;
    log_options.dir = dir_.File("log");
    log::RecoveredLog recovered;
    auto opened = log::FileLog::Open(log_options, &recovered);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    log_ = std::move(opened).value();
    engine::EngineOptions options;
    options.call_threads = 8;
    engine_ = std::make_unique<engine::Engine>(options, *log_, SystemClock(), nullptr);
  }

  void TearDown() override {
    if (engine_) engine_->Stop();
    if (log_) log_->Close();
    engine_.reset();
    log_.reset();
    pg_.reset();
    mysql_.reset();
    if (pg_admin_ == nullptr || mysql_admin_ == nullptr) return;
    try {
      ConnectAdmins();  // a test may have restarted a server under the old connections
      for (const std::string& node : {node_, foreign_node_}) {
        const std::vector<std::string> pg_left = PreparedPostgres(node);
        const std::vector<testing::XaXid> mysql_left = PreparedMysql(node);
        EXPECT_THAT(pg_left, IsEmpty()) << "PostgreSQL branches of node " << node << " left";
        EXPECT_TRUE(mysql_left.empty()) << mysql_left.size() << " MariaDB branches of node " << node
                                        << " left, e.g. " << mysql_left.front().gtrid;
        for (const std::string& gid : pg_left) {
          testing::ExecPostgres(*pg_admin_, "ROLLBACK PREPARED " + pg_admin_->quote(gid));
        }
        for (const testing::XaXid& xid : mysql_left) {
          testing::ExecMysql(*mysql_admin_, "XA ROLLBACK " + testing::XaXidSql(xid));
        }
      }
      testing::ExecPostgres(*pg_admin_, "DROP TABLE IF EXISTS " + table_);
      testing::ExecMysql(*mysql_admin_, "DROP TABLE IF EXISTS " + table_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "clean-up failed: " << e.what();
    }
  }

  void ConnectAdmins() {
    pg_admin_ = testing::ConnectPostgres(pg_dsn_);
    testing::ExecPostgres(*pg_admin_, "SET lock_timeout = '10s'");
    std::string error;
    const auto parsed = testing::ParseMysqlDsn(mysql_dsn_, &error);
    if (!parsed) throw std::runtime_error("TXC_TEST_MYSQL_DSN: " + error);
    mysql_admin_ = testing::ConnectMysql(*parsed);
    // A branch left prepared holds its locks: fail after 10 s instead of waiting for ever.
    testing::ExecMysql(*mysql_admin_, "SET SESSION innodb_lock_wait_timeout = 10");
    testing::ExecMysql(*mysql_admin_, "SET SESSION lock_wait_timeout = 10");
  }

  std::unique_ptr<participants::postgres::PostgresResource> MakePostgres(const std::string& node) {
    auto created = participants::postgres::PostgresResource::Create(
        {.name = "orders", .dsn = pg_dsn_, .node_id = node});
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? std::move(created).value() : nullptr;
  }
  std::unique_ptr<participants::mysql::MysqlResource> MakeMysql(const std::string& node) {
    auto created = participants::mysql::MysqlResource::Create(
        {.name = "payments", .dsn = mysql_dsn_, .node_id = node});
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? std::move(created).value() : nullptr;
  }

  // Prepared branches whose xid carries `node`.
  std::vector<std::string> PreparedPostgres(const std::string& node) {
    return testing::PreparedPostgresGids(*pg_admin_, "txc:" + node + ":");
  }
  std::vector<testing::XaXid> PreparedMysql(const std::string& node) {
    std::vector<testing::XaXid> mine;
    for (const auto& xid : testing::RecoverMysqlXids(*mysql_admin_, "txc:")) {
      if (xid.bqual.rfind(node + ":", 0) == 0) mine.push_back(xid);
    }
    return mine;
  }
  std::string PostgresXid(const std::string& node, const std::string& gid, uint32_t branch) {
    return *participants::database::PostgresXid(node, gid, branch);
  }

  std::optional<int> PostgresValue(const std::string& id) {
    const pqxx::result rows = testing::ExecPostgres(
        *pg_admin_, "SELECT v FROM " + table_ + " WHERE id = " + pg_admin_->quote(id));
    if (rows.empty()) return std::nullopt;
    return rows[0][0].as<int>();
  }
  std::optional<std::string> PostgresNote(const std::string& id) {
    const pqxx::result rows = testing::ExecPostgres(
        *pg_admin_, "SELECT note FROM " + table_ + " WHERE id = " + pg_admin_->quote(id));
    if (rows.empty() || rows[0][0].is_null()) return std::nullopt;
    return rows[0][0].as<std::string>();
  }
  std::optional<int> MysqlValue(const std::string& id) {
    // The ids of these tests are [a-z0-9-] only.
    const std::string value = testing::QueryMysqlString(
        *mysql_admin_, "SELECT v FROM " + table_ + " WHERE id = '" + id + "'");
    if (value.empty()) return std::nullopt;
    return std::stoi(value);
  }

  // The statements of the usual branches: one row `id` with value `v`.
  std::string PgInsert(const std::string& id, int v) const {
    return "{\"text\":\"INSERT INTO " + table_ + " (id, v) VALUES ($1, $2)\",\"params\":[\"" + id +
           "\"," + std::to_string(v) + "]}";
  }
  std::string MysqlInsert(const std::string& id, int v) const {
    return "{\"text\":\"INSERT INTO " + table_ + " (id, v) VALUES (?, ?)\",\"params\":[\"" + id +
           "\"," + std::to_string(v) + "]}";
  }

  // Parses, plans and submits `body`; the document once BEGIN is durable.
  Result<TransactionDocument> Submit(const std::string& body) {
    auto request = plans_->Parse(body);
    if (!request.ok()) return request.status();
    auto plan = plans_->Build(*request, engine_->MonotonicMs(), engine_->NowUnixMs(), "");
    if (!plan.ok()) return plan.status();
    auto submitted = engine_->Submit(std::move(plan).value());
    if (!submitted.ok()) return submitted.status();
    return submitted->document;
  }

  // Submits `body` and waits for the end (or kFinalWaitMs).
  TransactionDocument Run(const std::string& body, int64_t wait_ms = kFinalWaitMs) {
    auto submitted = Submit(body);
    EXPECT_TRUE(submitted.ok()) << submitted.status().ToString();
    if (!submitted.ok()) return {};
    return Final(submitted->gid, wait_ms);
  }

  TransactionDocument Final(const std::string& gid, int64_t wait_ms = kFinalWaitMs) {
    auto document = engine_->Wait(gid, wait_ms);
    EXPECT_TRUE(document.ok()) << document.status().ToString();
    if (!document.ok()) return {};
    EXPECT_TRUE(document->final())
        << gid << " is not final after " << wait_ms << " ms: state " << document->state;
    return *document;
  }

  // Polls the engine's document of gid until `done` holds.
  bool WaitForDocument(const std::string& gid,
                       const std::function<bool(const TransactionDocument&)>& done,
                       milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto document = engine_->Get(gid);
      if (document.ok() && done(*document)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  void RestartBetweenPrepareAndCommit(const std::string& server);

  testing::TempDir dir_;
  std::string pg_dsn_;
  std::string mysql_dsn_;
  std::string node_;
  std::string foreign_node_;
  std::string table_;
  std::unique_ptr<pqxx::connection> pg_admin_;
  std::unique_ptr<sql::Connection> mysql_admin_;
  std::unique_ptr<participants::postgres::PostgresResource> pg_;
  std::unique_ptr<participants::mysql::MysqlResource> mysql_;
  participants::http::HttpClientPool http_pool_;
  std::unique_ptr<api::PlanBuilder> plans_;
  std::unique_ptr<log::FileLog> log_;
  std::unique_ptr<engine::Engine> engine_;
};

TEST_F(TwoPhaseEngineTest, CommitsAcrossPostgresAndMariadb) {
  const std::string pg_statements[] = {
      "{\"text\":\"INSERT INTO " + table_ +
          " (id, v, note) VALUES ($1, $2, $3)\",\"params\":[\"both\",1,null]}",
      "{\"text\":\"UPDATE " + table_ +
          " SET v = v + $1, note = $2 WHERE id = $3\",\"params\":[41,\"paid\",\"both\"]}"};
  const TransactionDocument done = Run(Transaction(
      "both-1",
      {DatabaseBranch("orders", "orders", {pg_statements[0], pg_statements[1]}),
       DatabaseBranch("payments", "payments",
                      {MysqlInsert("both", 7), "{\"text\":\"UPDATE " + table_ +
                                                   " SET note = ? WHERE id = ?\",\"params\":["
                                                   "\"ok\",\"both\"]}"})}));
  EXPECT_EQ(done.state, "committed");
  EXPECT_EQ(done.outcome, "committed");
  EXPECT_THAT(States(done), ElementsAre("committed", "committed"));
  for (const auto& branch : done.branches) EXPECT_EQ(branch.last_error, "") << branch.name;
  EXPECT_EQ(PostgresValue("both"), 42);
  EXPECT_EQ(PostgresNote("both"), "paid");
  EXPECT_EQ(MysqlValue("both"), 7);
  EXPECT_EQ(
      testing::QueryMysqlString(*mysql_admin_, "SELECT note FROM " + table_ + " WHERE id = 'both'"),
      "ok");
  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());
}

TEST_F(TwoPhaseEngineTest, AFailingStatementAbortsEveryBranchAndLeavesNothing) {
  // MariaDB refuses (an unknown table): the PostgreSQL branch, prepared or not, is rolled back.
  const TransactionDocument mysql_fails = Run(Transaction(
      "fail-1", {DatabaseBranch("orders", "orders", {PgInsert("f1", 1)}),
                 DatabaseBranch("payments", "payments",
                                {MysqlInsert("f1", 2),
                                 "{\"text\":\"UPDATE no_such_table_" + node_ + " SET v = 1\"}"})}));
  EXPECT_EQ(mysql_fails.outcome, "aborted");
  EXPECT_THAT(States(mysql_fails), ElementsAre("aborted", "aborted"));
  ASSERT_NE(BranchNamed(mysql_fails, "payments"), nullptr);
  EXPECT_THAT(BranchNamed(mysql_fails, "payments")->last_error, HasSubstr("doesn't exist"));
  EXPECT_THAT(BranchNamed(mysql_fails, "payments")->last_error, HasSubstr("sql[1]"));
  EXPECT_EQ(PostgresValue("f1"), std::nullopt);
  EXPECT_EQ(MysqlValue("f1"), std::nullopt);

  // PostgreSQL refuses (division by zero, a bound parameter): the MariaDB branch is rolled back.
  const TransactionDocument pg_fails = Run(Transaction(
      "fail-2", {DatabaseBranch("orders", "orders",
                                {PgInsert("f2", 1), "{\"text\":\"SELECT 1 / $1\",\"params\":[0]}"}),
                 DatabaseBranch("payments", "payments", {MysqlInsert("f2", 2)})}));
  EXPECT_EQ(pg_fails.outcome, "aborted");
  EXPECT_THAT(States(pg_fails), ElementsAre("aborted", "aborted"));
  ASSERT_NE(BranchNamed(pg_fails, "orders"), nullptr);
  EXPECT_THAT(BranchNamed(pg_fails, "orders")->last_error, HasSubstr("division by zero"));
  EXPECT_EQ(PostgresValue("f2"), std::nullopt);
  EXPECT_EQ(MysqlValue("f2"), std::nullopt);

  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());
  // The failure left no connection in a broken state: the next transaction commits.
  const TransactionDocument next =
      Run(Transaction("fail-3", {DatabaseBranch("orders", "orders", {PgInsert("f3", 3)}),
                                 DatabaseBranch("payments", "payments", {MysqlInsert("f3", 3)})}));
  EXPECT_EQ(next.outcome, "committed");
  EXPECT_EQ(PostgresValue("f3"), 3);
  EXPECT_EQ(MysqlValue("f3"), 3);
}

TEST_F(TwoPhaseEngineTest, AStatementBlockedOnARowLockHeldByTheTestAbortsAtTheTimeout) {
  // PostgreSQL: the test holds the row the branch wants to update.
  {
    auto locker = testing::ConnectPostgres(pg_dsn_);
    testing::ExecPostgres(*locker, "BEGIN");
    testing::ExecPostgres(*locker, "SELECT v FROM " + table_ + " WHERE id = 'locked' FOR UPDATE");
    const auto start = std::chrono::steady_clock::now();
    const TransactionDocument done =
        Run(Transaction("lock-pg",
                        {DatabaseBranch("orders", "orders",
                                        {"{\"text\":\"UPDATE " + table_ +
                                         " SET v = 1 WHERE id = $1\",\"params\":[\"locked\"]}"}),
                         DatabaseBranch("payments", "payments", {MysqlInsert("lock-pg", 1)})},
                        1'000));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(done.outcome, "aborted");
    EXPECT_THAT(States(done), ElementsAre("aborted", "aborted"));
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 15s);
    testing::ExecPostgres(*locker, "ROLLBACK");
    EXPECT_EQ(PostgresValue("locked"), 0);
    EXPECT_EQ(MysqlValue("lock-pg"), std::nullopt);
  }
  // MariaDB: the same with the lock on its side.
  {
    std::string error;
    auto locker = testing::ConnectMysql(*testing::ParseMysqlDsn(mysql_dsn_, &error));
    testing::ExecMysql(*locker, "START TRANSACTION");
    EXPECT_EQ(testing::QueryMysqlString(
                  *locker, "SELECT v FROM " + table_ + " WHERE id = 'locked' FOR UPDATE"),
              "0");
    const auto start = std::chrono::steady_clock::now();
    const TransactionDocument done =
        Run(Transaction("lock-my",
                        {DatabaseBranch("orders", "orders", {PgInsert("lock-my", 1)}),
                         DatabaseBranch("payments", "payments",
                                        {"{\"text\":\"UPDATE " + table_ +
                                         " SET v = 1 WHERE id = ?\",\"params\":[\"locked\"]}"})},
                        1'500));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(done.outcome, "aborted");
    EXPECT_THAT(States(done), ElementsAre("aborted", "aborted"));
    EXPECT_GE(took, 1'400ms);
    EXPECT_LT(took, 15s);
    testing::ExecMysql(*locker, "ROLLBACK");
    EXPECT_EQ(MysqlValue("locked"), 0);
    EXPECT_EQ(PostgresValue("lock-my"), std::nullopt);
  }
  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());
}

TEST_F(TwoPhaseEngineTest, AStatementRunningPastTheTimeoutAbortsTheTransaction) {
  const auto start = std::chrono::steady_clock::now();
  const TransactionDocument done = Run(
      Transaction("sleepy",
                  {DatabaseBranch("orders", "orders",
                                  {PgInsert("sleepy", 1), "{\"text\":\"SELECT pg_sleep(20)\"}"}),
                   DatabaseBranch("payments", "payments", {MysqlInsert("sleepy", 2)})},
                  800));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(done.outcome, "aborted");
  EXPECT_THAT(States(done), ElementsAre("aborted", "aborted"));
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 15s) << "the statement is cancelled, not waited for";
  EXPECT_EQ(PostgresValue("sleepy"), std::nullopt);
  EXPECT_EQ(MysqlValue("sleepy"), std::nullopt);
  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());
}

// Both restart tests: branch 0 on the database that restarts ("pg" or "mysql"), branch 1 on the
// other one, branch 2 an HTTP participant that votes only when the test says so. Once both
// databases have prepared, the test stops the first one, lets the HTTP branch vote yes (the
// decision is commit, and the commit to the stopped database fails and is retried), starts the
// database again, and expects the commit to land: the prepared branch survived the restart and
// phase 2 kept trying until the server was back.
void TwoPhaseEngineTest::RestartBetweenPrepareAndCommit(const std::string& server) {
  TXC_REQUIRE_ENV(dbs_sh, "TXC_TEST_DBS_SH");
  TXC_REQUIRE_ENV(db_dir, "TXC_TEST_DB_DIR");
  const bool pg_restarts = server == "pg";
  const std::string gid = server + "-restart";
  const std::string pg_branch = DatabaseBranch("orders", "orders", {PgInsert("restart", 5)});
  const std::string my_branch = DatabaseBranch("payments", "payments", {MysqlInsert("restart", 6)});
  GatedParticipant http;
  auto submitted =
      Submit(Transaction(gid, {pg_restarts ? pg_branch : my_branch,
                               pg_restarts ? my_branch : pg_branch, http.BranchJson("http")}));
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();

  ASSERT_TRUE(WaitForDocument(gid, [](const TransactionDocument& d) {
    return d.branches.size() == 3 && d.branches[0].state == "prepared" &&
           d.branches[1].state == "prepared";
  })) << "the database branches never prepared";
  const uint32_t pg_index = pg_restarts ? 0 : 1;
  EXPECT_THAT(PreparedPostgres(node_), ElementsAre(PostgresXid(node_, gid, pg_index)));
  const std::vector<testing::XaXid> xa = PreparedMysql(node_);
  ASSERT_EQ(xa.size(), 1u);
  EXPECT_EQ(xa[0].gtrid, "txc:" + gid);
  EXPECT_EQ(xa[0].bqual, node_ + ":" + std::to_string(1 - pg_index));
  EXPECT_EQ(xa[0].format_id, participants::database::kMysqlFormatId);

  {
    ASSERT_TRUE(RunDbs(dbs_sh, "stop-" + server, db_dir)) << "dbs.sh stop-" << server;
    // Started again however this block ends: later tests need the server.
    struct StartAgain {
      std::function<void()> start;
      ~StartAgain() { start(); }
    } start_again{[&] {
      EXPECT_TRUE(RunDbs(dbs_sh, "start-" + server, db_dir)) << "dbs.sh start-" << server;
    }};
    http.Open();
    // The decision is commit; the other database commits, the stopped one fails and is retried.
    const bool failed_while_down = WaitForDocument(gid, [](const TransactionDocument& d) {
      return d.state == "committing" && d.branches[0].state == "prepared" &&
             d.branches[0].attempts >= 2 && !d.branches[0].last_error.empty() &&
             d.branches[1].state == "committed";
    });
    const auto seen = engine_->Get(gid);
    ASSERT_TRUE(failed_while_down)
        << "no failed commit while " << server << " was down; state "
        << (seen.ok() ? seen->state + ", branch 0: " + seen->branches[0].state + " after " +
                            std::to_string(seen->branches[0].attempts) +
                            " attempts: " + seen->branches[0].last_error
                      : seen.status().ToString());
  }

  const TransactionDocument done = Final(gid);
  EXPECT_EQ(done.outcome, "committed");
  EXPECT_THAT(States(done), ElementsAre("committed", "committed", "committed"));
  EXPECT_EQ(http.Count("prepare"), 1u);
  EXPECT_EQ(http.Count("commit"), 1u);
  EXPECT_EQ(http.Count("abort"), 0u);
  ConnectAdmins();
  EXPECT_EQ(PostgresValue("restart"), 5);
  EXPECT_EQ(MysqlValue("restart"), 6);
  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());

  // The resource goes on working after the restart.
  const TransactionDocument after = Run(Transaction(
      server + "-after", {DatabaseBranch("orders", "orders", {PgInsert("after", 1)}),
                          DatabaseBranch("payments", "payments", {MysqlInsert("after", 1)})}));
  EXPECT_EQ(after.outcome, "committed");
  EXPECT_EQ(PostgresValue("after"), 1);
  EXPECT_EQ(MysqlValue("after"), 1);
}

TEST_F(TwoPhaseEngineTest, APostgresRestartBetweenPrepareAndCommitStillCommits) {
  RestartBetweenPrepareAndCommit("pg");
}

TEST_F(TwoPhaseEngineTest, AMariadbRestartBetweenPrepareAndCommitStillCommits) {
  RestartBetweenPrepareAndCommit("mysql");
}

TEST_F(TwoPhaseEngineTest, TheInDoubtScannerRollsBackOrphansOfThisNodeAndLeavesOthersAlone) {
  const std::vector<Statement> orphan_pg = {
      {"INSERT INTO " + table_ + " (id, v) VALUES ($1, $2)", {std::string("orphan"), int64_t{1}}}};
  const std::vector<Statement> orphan_my = {
      {"INSERT INTO " + table_ + " (id, v) VALUES (?, ?)", {std::string("orphan"), int64_t{2}}}};
  const std::vector<Statement> foreign_pg = {
      {"INSERT INTO " + table_ + " (id, v) VALUES ($1, $2)", {std::string("foreign"), int64_t{3}}}};
  const std::vector<Statement> foreign_my = {
      {"INSERT INTO " + table_ + " (id, v) VALUES (?, ?)", {std::string("foreign"), int64_t{4}}}};
  // An orphan of this node: prepared by "a coordinator that crashed" (resources that are gone
  // now) for a gid this engine has never heard of.
  {
    auto crashed_pg = MakePostgres(node_);
    auto crashed_my = MakeMysql(node_);
    ASSERT_TRUE(crashed_pg && crashed_my);
    const auto pg = crashed_pg->Prepare("orphan-1", 0, orphan_pg, kCallTimeout);
    ASSERT_TRUE(pg.ok()) << pg.reason;
    const auto my = crashed_my->Prepare("orphan-1", 1, orphan_my, kCallTimeout);
    ASSERT_TRUE(my.ok()) << my.reason;
  }
  // Branches of another coordinator: not ours to settle.
  {
    auto other_pg = MakePostgres(foreign_node_);
    auto other_my = MakeMysql(foreign_node_);
    ASSERT_TRUE(other_pg && other_my);
    const auto pg = other_pg->Prepare("foreign-1", 0, foreign_pg, kCallTimeout);
    ASSERT_TRUE(pg.ok()) << pg.reason;
    const auto my = other_my->Prepare("foreign-1", 1, foreign_my, kCallTimeout);
    ASSERT_TRUE(my.ok()) << my.reason;
  }
  // A live transaction of this engine, both database branches prepared, waiting for its HTTP vote.
  GatedParticipant http;
  ASSERT_TRUE(
      Submit(Transaction("active-1",
                         {DatabaseBranch("orders", "orders", {PgInsert("active", 5)}),
                          DatabaseBranch("payments", "payments", {MysqlInsert("active", 6)}),
                          http.BranchJson("http")}))
          .ok());
  ASSERT_TRUE(WaitForDocument("active-1", [](const TransactionDocument& d) {
    return d.branches.size() == 3 && d.branches[0].state == "prepared" &&
           d.branches[1].state == "prepared";
  }));
  ASSERT_EQ(PreparedPostgres(node_).size(), 2u);
  ASSERT_EQ(PreparedMysql(node_).size(), 2u);

  std::multiset<std::string> resolved;
  std::mutex resolved_mu;
  recovery::InDoubtScanner scanner(
      {pg_.get(), mysql_.get()},
      {.is_active = [this](const std::string& gid) { return engine_->IsActive(gid); },
       .is_commit_decided =
           [this](const std::string& gid) { return engine_->IsCommitDecided(gid); }},
      [&](const std::string& resource, const std::string& action) {
        std::lock_guard lock(resolved_mu);
        resolved.insert(resource + " " + action);
      });
  const recovery::InDoubtScanner::Pass pass = scanner.ScanOnce();
  EXPECT_THAT(pass.errors, IsEmpty());
  EXPECT_EQ(pass.rolled_back, 2);
  EXPECT_EQ(pass.committed, 0);
  EXPECT_EQ(pass.left_to_engine, 2);
  EXPECT_THAT(resolved, UnorderedElementsAre("orders rollback", "payments rollback"));

  // The orphan is gone from both databases, its writes never applied; the active transaction's
  // branches and the other node's are still prepared.
  EXPECT_THAT(PreparedPostgres(node_), ElementsAre(PostgresXid(node_, "active-1", 0)));
  ASSERT_EQ(PreparedMysql(node_).size(), 1u);
  EXPECT_EQ(PreparedMysql(node_)[0].gtrid, "txc:active-1");
  EXPECT_THAT(PreparedPostgres(foreign_node_),
              ElementsAre(PostgresXid(foreign_node_, "foreign-1", 0)));
  ASSERT_EQ(PreparedMysql(foreign_node_).size(), 1u);
  EXPECT_EQ(PreparedMysql(foreign_node_)[0].gtrid, "txc:foreign-1");
  EXPECT_EQ(PostgresValue("orphan"), std::nullopt);
  EXPECT_EQ(MysqlValue("orphan"), std::nullopt);

  // Leaving the live one alone was right: it commits.
  http.Open();
  const TransactionDocument done = Final("active-1");
  EXPECT_EQ(done.outcome, "committed");
  EXPECT_EQ(PostgresValue("active"), 5);
  EXPECT_EQ(MysqlValue("active"), 6);

  // A branch prepared late for a gid whose commit is durable is committed, not rolled back.
  {
    auto late_pg = MakePostgres(node_);
    auto late_my = MakeMysql(node_);
    ASSERT_TRUE(late_pg && late_my);
    const std::vector<Statement> pg_late = {
        {"INSERT INTO " + table_ + " (id, v) VALUES ($1, $2)", {std::string("late"), int64_t{8}}}};
    const std::vector<Statement> my_late = {
        {"INSERT INTO " + table_ + " (id, v) VALUES (?, ?)", {std::string("late"), int64_t{9}}}};
    ASSERT_TRUE(late_pg->Prepare("active-1", 7, pg_late, kCallTimeout).ok());
    ASSERT_TRUE(late_my->Prepare("active-1", 8, my_late, kCallTimeout).ok());
  }
  const recovery::InDoubtScanner::Pass second = scanner.ScanOnce();
  EXPECT_THAT(second.errors, IsEmpty());
  EXPECT_EQ(second.committed, 2);
  EXPECT_EQ(second.rolled_back, 0);
  EXPECT_EQ(second.left_to_engine, 0) << "the other node's branches are never even listed";
  EXPECT_EQ(PostgresValue("late"), 8);
  EXPECT_EQ(MysqlValue("late"), 9);
  EXPECT_THAT(PreparedPostgres(node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(node_).empty());

  // The other node's branches are that node's business; the test cleans them up as that node.
  auto other_pg = MakePostgres(foreign_node_);
  auto other_my = MakeMysql(foreign_node_);
  ASSERT_TRUE(other_pg && other_my);
  EXPECT_TRUE(other_pg->RollbackPrepared("foreign-1", 0, kCallTimeout).ok());
  EXPECT_TRUE(other_my->RollbackPrepared("foreign-1", 1, kCallTimeout).ok());
  EXPECT_THAT(PreparedPostgres(foreign_node_), IsEmpty());
  EXPECT_TRUE(PreparedMysql(foreign_node_).empty());
  EXPECT_EQ(PostgresValue("foreign"), std::nullopt);
}

}  // namespace
}  // namespace txc
