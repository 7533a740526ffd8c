// PostgresResource against a real PostgreSQL 15 (scripts/dbs.sh; DSN in TXC_TEST_PG_DSN; the
// test fails, never skips, without it). Every test uses its own node id and table, rolls back
// whatever it left prepared, and fails if it left anything.
#include "participants/postgres/postgres_resource.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "participants/database/xid.h"
#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::participants::postgres {
namespace {

using database::InDoubtXid;
using database::Statement;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 5s;

class PostgresResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
    dsn_ = dsn;
    static int counter = 0;
    // Unique per test and process; xids are txc:<node>:<gid>:<b>, so every xid of this test
    // (the foreign node's too: node_ + "f") starts with "txc:" + node_.
    node_ = "p" + std::to_string(getpid()) + "t" + std::to_string(++counter);
    table_ = "txc_pr_" + node_;
    admin_ = testing::ConnectPostgres(dsn_);
    testing::ExecPostgres(*admin_, "DROP TABLE IF EXISTS " + table_);
    testing::ExecPostgres(*admin_,
                          "CREATE TABLE " + table_ + " (k INT PRIMARY KEY, v INT NOT NULL)");
    testing::ExecPostgres(*admin_, "INSERT INTO " + table_ + " VALUES (1, 0)");
    resource_ = MakeResource(node_);
  }

  void TearDown() override {
    resource_.reset();
    if (admin_ == nullptr) return;
    const std::vector<std::string> left = testing::PreparedPostgresGids(*admin_, "txc:" + node_);
    for (const std::string& gid : left) {
      testing::ExecPostgres(*admin_, "ROLLBACK PREPARED " + admin_->quote(gid));
    }
    EXPECT_TRUE(left.empty()) << "the test left " << left.size()
                              << " prepared transaction(s), e.g. " << left.front();
    EXPECT_TRUE(testing::PreparedPostgresGids(*admin_, "txc:" + node_).empty());
    testing::ExecPostgres(*admin_, "DROP TABLE IF EXISTS " + table_);
  }

  std::unique_ptr<PostgresResource> MakeResource(const std::string& node_id,
                                                 std::size_t pool_size_max = 4) {
    Result<std::unique_ptr<PostgresResource>> resource = PostgresResource::Create(
        {.name = "orders", .dsn = dsn_, .node_id = node_id, .pool_size_max = pool_size_max});
    EXPECT_TRUE(resource.ok()) << resource.status().ToString();
    return resource.ok() ? std::move(*resource) : nullptr;
  }

  Statement SetValue(int value) const {
    return Statement{"UPDATE " + table_ + " SET v = $1 WHERE k = 1", {int64_t{value}}};
  }

  int Value() {
    return testing::ExecPostgres(*admin_, "SELECT v FROM " + table_ + " WHERE k = 1")[0][0]
        .as<int>();
  }

  std::vector<std::string> Prepared() {
    return testing::PreparedPostgresGids(*admin_, "txc:" + node_);
  }

  std::string Xid(const std::string& gid, uint32_t branch) const {
    return *database::PostgresXid(node_, gid, branch);
  }

  std::string dsn_;
  std::string node_;
  std::string table_;
  std::unique_ptr<pqxx::connection> admin_;
  std::unique_ptr<PostgresResource> resource_;
};

TEST_F(PostgresResourceTest, CheckReadyAcceptsAServerWithPreparedTransactionsEnabled) {
  const Status status = resource_->CheckReady(kTimeout);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(PostgresResourceTest, CheckReadyReportsAnUnreachableServerAsUnavailable) {
  Result<std::unique_ptr<PostgresResource>> unreachable =
      PostgresResource::Create({.name = "orders",
                                .dsn = "postgresql://txc:secret-pw@127.0.0.1:1/txc_test",
                                .node_id = node_});
  ASSERT_TRUE(unreachable.ok());
  const Status status = (*unreachable)->CheckReady(3s);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("resource orders"), std::string::npos) << status.message();
  EXPECT_EQ(status.message().find("secret-pw"), std::string::npos) << status.message();
}

TEST_F(PostgresResourceTest, PrepareThenCommitAppliesTheWrite) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  EXPECT_EQ(Prepared(), std::vector<std::string>{Xid("g1", 0)});
  EXPECT_EQ(Value(), 0) << "a prepared write is not visible before COMMIT PREPARED";

  const CallResult commit = resource_->CommitPrepared("g1", 0, kTimeout);
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_TRUE(Prepared().empty());
}

TEST_F(PostgresResourceTest, AFailingStatementIsRefusedAndLeavesNothing) {
  const CallResult result = resource_->Prepare(
      "g1", 0, {{SetValue(7), Statement{"INSERT INTO " + table_ + " VALUES (1, 1)", {}}}},
      kTimeout);
  EXPECT_EQ(result.outcome, CallOutcome::kRefused) << result.reason;
  EXPECT_NE(result.reason.find("sql[1]"), std::string::npos) << result.reason;
  EXPECT_NE(result.reason.find("duplicate key"), std::string::npos) << result.reason;
  EXPECT_NE(result.reason.find("23505"), std::string::npos) << result.reason;
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(Value(), 0);

  // The pooled connection was rolled back, not left in an aborted transaction.
  ASSERT_TRUE(resource_->Prepare("g2", 0, {{SetValue(8)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared("g2", 0, kTimeout).ok());
  EXPECT_EQ(Value(), 8);
}

TEST_F(PostgresResourceTest, ASyntaxErrorIsRefused) {
  const CallResult result =
      resource_->Prepare("g1", 0, {{Statement{"UPDATE nope SET", {}}}}, kTimeout);
  EXPECT_EQ(result.outcome, CallOutcome::kRefused) << result.reason;
  EXPECT_TRUE(Prepared().empty());
}

TEST_F(PostgresResourceTest, TransactionControlInAStatementIsRefusedBeforeAnythingRuns) {
  const CallResult result =
      resource_->Prepare("g1", 0, {{SetValue(7), Statement{"COMMIT", {}}}}, kTimeout);
  EXPECT_EQ(result.outcome, CallOutcome::kRefused) << result.reason;
  EXPECT_EQ(Value(), 0);
  EXPECT_TRUE(Prepared().empty());
}

TEST_F(PostgresResourceTest, RollbackPreparedDiscardsTheWrite) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  const CallResult rollback = resource_->RollbackPrepared("g1", 0, kTimeout);
  EXPECT_TRUE(rollback.ok()) << rollback.reason;
  EXPECT_EQ(Value(), 0);
  EXPECT_TRUE(Prepared().empty());
}

// DESIGN.md: phase-2 operations are retried until they succeed, so each must be idempotent;
// SQLSTATE 42704 (no such prepared transaction) is "already resolved".
TEST_F(PostgresResourceTest, PhaseTwoTwiceIsDoneAndAbortBeforePrepareIsHarmless) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared("g1", 0, kTimeout).ok());
  const CallResult again = resource_->CommitPrepared("g1", 0, kTimeout);
  EXPECT_TRUE(again.ok()) << again.reason;
  EXPECT_EQ(Value(), 7);

  ASSERT_TRUE(resource_->Prepare("g2", 0, {{SetValue(9)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared("g2", 0, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared("g2", 0, kTimeout).ok());
  EXPECT_EQ(Value(), 7);

  const CallResult never_prepared = resource_->RollbackPrepared("g3", 4, kTimeout);
  EXPECT_TRUE(never_prepared.ok()) << never_prepared.reason;
}

// A retry of Prepare after an Unknown answer (the branch was in fact prepared) must say yes
// without running the statements again: they would wait on the prepared twin's row lock.
TEST_F(PostgresResourceTest, PrepareAgainAfterALostAnswerIsOkAtOnce) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  const auto start = std::chrono::steady_clock::now();
  const CallResult again = resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout);
  EXPECT_TRUE(again.ok()) << again.reason;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(Prepared(), std::vector<std::string>{Xid("g1", 0)});
  EXPECT_TRUE(resource_->CommitPrepared("g1", 0, kTimeout).ok());
  EXPECT_EQ(Value(), 7);
}

// A coordinator restart: the resource that prepared is gone, a new one finishes the branch.
TEST_F(PostgresResourceTest, ANewResourceCommitsWhatAnEarlierOnePrepared) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  resource_.reset();
  std::unique_ptr<PostgresResource> restarted = MakeResource(node_);
  const std::vector<InDoubtXid> in_doubt = *restarted->ListInDoubt(kTimeout);
  EXPECT_EQ(in_doubt, (std::vector<InDoubtXid>{{"g1", 0, Xid("g1", 0)}}));
  const CallResult commit = restarted->CommitPrepared("g1", 0, kTimeout);
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(Value(), 7);
}

// DESIGN.md, in-doubt scan: a coordinator resolves only the prepared transactions that carry
// its own node_id. Another node's (even one whose id starts with ours) and another program's are
// not listed.
TEST_F(PostgresResourceTest, ListInDoubtListsOnlyThisNodesXids) {
  const std::string foreign_node = node_ + "f";
  std::unique_ptr<PostgresResource> foreign = MakeResource(foreign_node);
  const std::string other_program_gid = "other-program-" + node_;
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  ASSERT_TRUE(resource_->Prepare("g1", 3, {}, kTimeout).ok());
  ASSERT_TRUE(foreign->Prepare("g1", 1, {}, kTimeout).ok());
  testing::ExecPostgres(*admin_, "BEGIN");
  testing::ExecPostgres(*admin_, "PREPARE TRANSACTION " + admin_->quote(other_program_gid));

  Result<std::vector<InDoubtXid>> ours = resource_->ListInDoubt(kTimeout);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  EXPECT_EQ(*ours, (std::vector<InDoubtXid>{{"g1", 0, Xid("g1", 0)}, {"g1", 3, Xid("g1", 3)}}));
  Result<std::vector<InDoubtXid>> theirs = foreign->ListInDoubt(kTimeout);
  ASSERT_TRUE(theirs.ok());
  EXPECT_EQ(*theirs,
            (std::vector<InDoubtXid>{{"g1", 1, *database::PostgresXid(foreign_node, "g1", 1)}}));

  EXPECT_TRUE(resource_->RollbackPrepared("g1", 0, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared("g1", 3, kTimeout).ok());
  EXPECT_TRUE(foreign->RollbackPrepared("g1", 1, kTimeout).ok());
  testing::ExecPostgres(*admin_, "ROLLBACK PREPARED " + admin_->quote(other_program_gid));
  EXPECT_TRUE(resource_->ListInDoubt(kTimeout)->empty());
}

TEST_F(PostgresResourceTest, CommitOnePhaseAppliesWithoutPreparing) {
  const CallResult result = resource_->CommitOnePhase(
      "g1", 0, {{SetValue(7), Statement{"INSERT INTO " + table_ + " VALUES (2, 2)", {}}}},
      kTimeout);
  EXPECT_TRUE(result.ok()) << result.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_TRUE(Prepared().empty());

  const CallResult refused = resource_->CommitOnePhase(
      "g2", 0, {{SetValue(8), Statement{"INSERT INTO " + table_ + " VALUES (2, 2)", {}}}},
      kTimeout);
  EXPECT_EQ(refused.outcome, CallOutcome::kRefused) << refused.reason;
  EXPECT_EQ(Value(), 7) << "nothing of a refused one-phase branch is applied";
}

// API.md: params are JSON scalars (string, number, boolean, null).
TEST_F(PostgresResourceTest, ParametersOfEveryJsonType) {
  testing::ExecPostgres(*admin_, "CREATE TABLE " + table_ +
                                     "_types (b BOOLEAN, i BIGINT, d DOUBLE PRECISION, s TEXT, "
                                     "n TEXT)");
  const Statement insert{
      "INSERT INTO " + table_ + "_types VALUES ($1, $2, $3, $4, $5)",
      {true, int64_t{9'007'199'254'740'993}, 0.1, std::string("it's \u2603"), std::monostate()}};
  EXPECT_TRUE(resource_->Prepare("g1", 0, {{insert}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared("g1", 0, kTimeout).ok());
  const pqxx::result rows =
      testing::ExecPostgres(*admin_, "SELECT b, i, d, s, n IS NULL FROM " + table_ + "_types");
  testing::ExecPostgres(*admin_, "DROP TABLE " + table_ + "_types");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0][0].as<bool>());
  EXPECT_EQ(rows[0][1].as<int64_t>(), 9'007'199'254'740'993);
  EXPECT_EQ(rows[0][2].as<double>(), 0.1);
  EXPECT_EQ(rows[0][3].as<std::string>(), "it's \u2603");
  EXPECT_TRUE(rows[0][4].as<bool>());

  const CallResult nul = resource_->Prepare(
      "g2", 0, {{Statement{"SELECT $1::text", {std::string("a\0b", 3)}}}}, kTimeout);
  EXPECT_EQ(nul.outcome, CallOutcome::kRefused) << nul.reason;
}

// statement_timeout = the call's timeout: a statement waiting on a lock is cancelled by the
// server (SQLSTATE 57014), the branch is rolled back, nothing is prepared, and the call says
// Transient in about its timeout.
TEST_F(PostgresResourceTest, AStatementBlockedPastTheTimeoutIsTransient) {
  auto locker = testing::ConnectPostgres(dsn_);
  testing::ExecPostgres(*locker, "BEGIN");
  testing::ExecPostgres(*locker, "UPDATE " + table_ + " SET v = 5 WHERE k = 1");
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = resource_->Prepare("g1", 0, {{SetValue(7)}}, 500ms);
  const auto took = std::chrono::steady_clock::now() - start;
  testing::ExecPostgres(*locker, "ROLLBACK");
  EXPECT_EQ(result.outcome, CallOutcome::kTransient) << result.reason;
  EXPECT_NE(result.reason.find("57014"), std::string::npos) << result.reason;
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(Value(), 0);
}

// A prepared branch keeps its row locks (shared/NOTES.md), so committing it by xid is what
// releases a writer waiting on it.
TEST_F(PostgresResourceTest, CommitPreparedReleasesTheRowLock) {
  ASSERT_TRUE(resource_->Prepare("g1", 0, {{SetValue(7)}}, kTimeout).ok());
  const CallResult blocked = resource_->CommitOnePhase("g2", 0, {{SetValue(9)}}, 300ms);
  EXPECT_EQ(blocked.outcome, CallOutcome::kTransient) << blocked.reason;
  EXPECT_TRUE(resource_->CommitPrepared("g1", 0, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitOnePhase("g2", 0, {{SetValue(9)}}, kTimeout).ok());
  EXPECT_EQ(Value(), 9);
}

// A server-side disconnect of an idle pooled connection (what a server restart does to all of
// them) costs no failed call: the dead connection is dropped and the call runs on a fresh one.
TEST_F(PostgresResourceTest, AStaleIdleConnectionIsReplacedWithinTheCall) {
  ASSERT_TRUE(resource_->CommitOnePhase("g1", 0, {{SetValue(1)}}, kTimeout).ok());
  const pqxx::result killed = testing::ExecPostgres(
      *admin_, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = " +
                   admin_->quote("txc-" + node_));
  ASSERT_GE(killed.size(), 1u);
  std::this_thread::sleep_for(100ms);
  const CallResult prepare = resource_->Prepare("g2", 0, {{SetValue(2)}}, kTimeout);
  EXPECT_TRUE(prepare.ok()) << prepare.reason;
  EXPECT_TRUE(resource_->CommitPrepared("g2", 0, kTimeout).ok());
  EXPECT_EQ(Value(), 2);
}

// More callers than pooled connections: each waits for a free connection (bounded by its
// timeout), and all complete; the pool never opens more than pool_size_max.
TEST_F(PostgresResourceTest, MoreThreadsThanConnectionsAllComplete) {
  constexpr std::size_t kPoolSize = 2;
  constexpr int kThreads = 8;
  constexpr int kRounds = 5;
  std::unique_ptr<PostgresResource> small = MakeResource(node_, kPoolSize);
  std::atomic<int> failures{0};
  std::atomic<std::size_t> most_open{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string gid = "c" + std::to_string(t) + "-" + std::to_string(round);
        const Statement insert{"INSERT INTO " + table_ + " VALUES ($1, $2)",
                               {int64_t{100 + t * kRounds + round}, int64_t{t}}};
        const CallResult prepare = small->Prepare(gid, 0, {{insert}}, 20s);
        const CallResult commit = small->CommitPrepared(gid, 0, 20s);
        if (!prepare.ok() || !commit.ok()) {
          ++failures;
          ADD_FAILURE() << prepare.reason << " / " << commit.reason;
        }
        std::size_t open = small->OpenConnections();
        std::size_t seen = most_open.load();
        while (open > seen && !most_open.compare_exchange_weak(seen, open)) {
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_LE(most_open, kPoolSize);
  EXPECT_EQ(
      testing::ExecPostgres(*admin_, "SELECT count(*) FROM " + table_ + " WHERE k >= 100")[0][0]
          .as<int>(),
      kThreads * kRounds);
}

}  // namespace
}  // namespace txc::participants::postgres
