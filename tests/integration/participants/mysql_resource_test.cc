// MysqlResource against a real MariaDB 10.11 (scripts/dbs.sh; DSN in TXC_TEST_MYSQL_DSN; the
// test fails, never skips, without it). Every test uses its own gids (so its own gtrid prefix),
// node id and table, rolls back whatever it left prepared, and fails if it left anything.
#include "participants/mysql/mysql_resource.h"

#include <cppconn/connection.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "participants/database/xid.h"
#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::participants::mysql {
namespace {

using database::InDoubtXid;
using database::Statement;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 5s;
// How long MariaDB may take to hand a disconnected session's prepared branch over.
constexpr std::chrono::seconds kReleaseTimeout = 10s;

class MysqlResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn, "TXC_TEST_MYSQL_DSN");
    dsn_ = dsn;
    std::string error;
    const std::optional<testing::MysqlDsn> parsed = testing::ParseMysqlDsn(dsn_, &error);
    ASSERT_TRUE(parsed.has_value()) << error;
    test_dsn_ = *parsed;
    static int counter = 0;
    // XA RECOVER is server-wide: the gid prefix (gtrid txc:<prefix>...) and the node id keep
    // this test's branches apart from any other test's.
    base_ = "m" + std::to_string(getpid()) + "t" + std::to_string(++counter);
    node_ = base_;
    table_ = "txc_mr_" + base_;
    admin_ = testing::ConnectMysql(test_dsn_);
    testing::ExecMysql(*admin_, "DROP TABLE IF EXISTS " + table_);
    testing::ExecMysql(
        *admin_, "CREATE TABLE " + table_ + " (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
    testing::ExecMysql(*admin_, "INSERT INTO " + table_ + " VALUES (1, 0)");
    resource_ = MakeResource(node_);
  }

  void TearDown() override {
    resource_.reset();  // closes its parked connections: their branches detach
    if (admin_ == nullptr) return;
    // A branch left behind with its locks must make DROP TABLE fail, not hang.
    testing::ExecMysql(*admin_, "SET SESSION lock_wait_timeout = 5");
    const std::vector<testing::XaXid> left = testing::RecoverMysqlXids(*admin_, "txc:" + base_);
    for (const testing::XaXid& xid : left) {
      // Through a resource of the branch's node, whose hand-over guard waits until MariaDB has
      // finished ending the closed session (a plain XA ROLLBACK retried on 1397 may answer Ok
      // without rolling back: participants/mysql/mysql_resource.h).
      const database::MysqlXid mysql_xid{xid.gtrid, xid.bqual, xid.format_id};
      for (const std::string& node : {node_, node_ + "f"}) {
        const std::optional<database::BranchId> branch = database::ParseMysqlXid(mysql_xid, node);
        if (!branch) continue;
        std::unique_ptr<MysqlResource> cleaner = MakeResource(node);
        const CallResult rollback = UntilOk(
            [&] { return cleaner->RollbackPrepared(branch->gid, branch->branch_index, kTimeout); });
        EXPECT_TRUE(rollback.ok()) << rollback.reason;
      }
    }
    EXPECT_TRUE(left.empty()) << "the test left " << left.size() << " prepared branch(es), e.g. "
                              << testing::XaXidSql(left.front());
    EXPECT_TRUE(testing::RecoverMysqlXids(*admin_, "txc:" + base_).empty());
    EXPECT_EQ(testing::MysqlErrorOf(*admin_, "DROP TABLE IF EXISTS " + table_), 0)
        << "a transaction still holds locks on " << table_;
  }

  std::unique_ptr<MysqlResource> MakeResource(const std::string& node_id,
                                              std::size_t pool_size_max = 4,
                                              std::size_t parked_max = 2) {
    Result<std::unique_ptr<MysqlResource>> resource =
        MysqlResource::Create({.name = "payments",
                               .dsn = dsn_,
                               .node_id = node_id,
                               .pool_size_max = pool_size_max,
                               .parked_max = parked_max});
    EXPECT_TRUE(resource.ok()) << resource.status().ToString();
    return resource.ok() ? std::move(*resource) : nullptr;
  }

  // A gid of this test: its gtrid starts with "txc:" + base_.
  std::string Gid(const std::string& suffix) const { return base_ + "-" + suffix; }

  Statement SetValue(int value) const {
    return Statement{"UPDATE " + table_ + " SET v = ? WHERE k = 1", {int64_t{value}}};
  }

  int Value() {
    return std::stoi(
        testing::QueryMysqlString(*admin_, "SELECT v FROM " + table_ + " WHERE k = 1"));
  }

  std::vector<testing::XaXid> Prepared() {
    return testing::RecoverMysqlXids(*admin_, "txc:" + base_);
  }

  testing::XaXid Xid(const std::string& gid, uint32_t branch, const std::string& node = "") const {
    const database::MysqlXid xid =
        *database::MakeMysqlXid(node.empty() ? node_ : node, gid, branch);
    return testing::XaXid{xid.gtrid, xid.bqual, static_cast<long>(xid.format_id)};
  }

  std::string XidText(const std::string& gid, uint32_t branch) const {
    return database::MysqlXidSql(*database::MakeMysqlXid(node_, gid, branch));
  }

  // Runs `call` until it is Ok, for at most kReleaseTimeout (after its session closed, a branch
  // is Transient until MariaDB has finished ending that session: the hand-over guard, or the
  // 1397 trap). Returns the last result.
  static CallResult UntilOk(const std::function<CallResult()>& call) {
    const auto deadline = std::chrono::steady_clock::now() + kReleaseTimeout;
    for (;;) {
      CallResult result = call();
      if (result.ok() || std::chrono::steady_clock::now() >= deadline) return result;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string dsn_;
  testing::MysqlDsn test_dsn_;
  std::string base_;
  std::string node_;
  std::string table_;
  std::unique_ptr<sql::Connection> admin_;
  std::unique_ptr<MysqlResource> resource_;
};

TEST_F(MysqlResourceTest, CheckReadyAcceptsMariadbWithDurableXa) {
  const Status status = resource_->CheckReady(kTimeout);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(MysqlResourceTest, CheckReadyReportsAnUnreachableServerWithoutThePassword) {
  Result<std::unique_ptr<MysqlResource>> unreachable = MysqlResource::Create(
      {.name = "payments", .dsn = "mysql://txc:secret-pw@127.0.0.1:1/txc_test", .node_id = node_});
  ASSERT_TRUE(unreachable.ok());
  const Status status = (*unreachable)->CheckReady(3s);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("resource payments"), std::string::npos) << status.message();
  EXPECT_EQ(status.message().find("secret-pw"), std::string::npos) << status.message();
}

TEST_F(MysqlResourceTest, CreateRejectsBadOptions) {
  EXPECT_FALSE(
      MysqlResource::Create({.name = "p", .dsn = "mysql://u@h", .node_id = "bad.node"}).ok());
  EXPECT_FALSE(
      MysqlResource::Create({.name = "p", .dsn = "postgresql://u@h", .node_id = "n"}).ok());
  EXPECT_FALSE(
      MysqlResource::Create(
          {.name = "p", .dsn = "mysql://u@h", .node_id = "n", .pool_size_max = 2, .parked_max = 2})
          .ok())
      << "parked connections count against the pool: parked_max must be below pool_size_max";
}

// The fast path: phase 2 runs on the preparing session, parked after XA PREPARE.
TEST_F(MysqlResourceTest, PrepareThenCommitAppliesTheWrite) {
  const CallResult prepare = resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout);
  ASSERT_TRUE(prepare.ok()) << prepare.reason;
  EXPECT_EQ(Prepared(), std::vector<testing::XaXid>{Xid(Gid("a"), 0)});
  EXPECT_EQ(resource_->ParkedConnections(), 1u);
  EXPECT_EQ(Value(), 0);

  const CallResult commit = resource_->CommitPrepared(Gid("a"), 0, kTimeout);
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(resource_->ParkedConnections(), 0u);
}

// A failed statement in an XA branch undoes only itself and XA PREPARE would prepare the rest:
// the adapter must vote no and roll the branch back itself.
TEST_F(MysqlResourceTest, AFailingStatementIsRefusedAndLeavesNothing) {
  const CallResult result = resource_->Prepare(
      Gid("a"), 0, {{SetValue(7), Statement{"INSERT INTO " + table_ + " VALUES (1, 1)", {}}}},
      kTimeout);
  EXPECT_EQ(result.outcome, CallOutcome::kRefused) << result.reason;
  EXPECT_NE(result.reason.find("sql[1]"), std::string::npos) << result.reason;
  EXPECT_NE(result.reason.find("Duplicate entry"), std::string::npos) << result.reason;
  EXPECT_NE(result.reason.find("1062"), std::string::npos) << result.reason;
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(Value(), 0);
  EXPECT_EQ(resource_->ParkedConnections(), 0u);

  // The pooled connection left no XA transaction open behind it.
  ASSERT_TRUE(resource_->Prepare(Gid("b"), 0, {{SetValue(8)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared(Gid("b"), 0, kTimeout).ok());
  EXPECT_EQ(Value(), 8);
}

// MySQL refuses statements that would end an XA transaction (DDL's implicit commit) with
// XAER_RMFAIL: a vote no, not a retry.
TEST_F(MysqlResourceTest, AStatementNotAllowedInXaIsRefused) {
  const CallResult ddl = resource_->Prepare(
      Gid("a"), 0, {{SetValue(7), Statement{"CREATE TABLE " + table_ + "_x (a INT)", {}}}},
      kTimeout);
  EXPECT_EQ(ddl.outcome, CallOutcome::kRefused) << ddl.reason;
  EXPECT_NE(ddl.reason.find("1399"), std::string::npos) << ddl.reason;  // XAER_RMFAIL
  const CallResult commit =
      resource_->Prepare(Gid("b"), 0, {{SetValue(7), Statement{"COMMIT", {}}}}, kTimeout);
  EXPECT_EQ(commit.outcome, CallOutcome::kRefused) << commit.reason;
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(Value(), 0);
}

TEST_F(MysqlResourceTest, RollbackPreparedDiscardsTheWrite) {
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  const CallResult rollback = resource_->RollbackPrepared(Gid("a"), 0, kTimeout);
  EXPECT_TRUE(rollback.ok()) << rollback.reason;
  EXPECT_EQ(Value(), 0);
  EXPECT_TRUE(Prepared().empty());
}

// 1397 for an xid that XA RECOVER does not list is "already resolved" (or never prepared).
TEST_F(MysqlResourceTest, PhaseTwoTwiceIsDoneAndAbortBeforePrepareIsHarmless) {
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared(Gid("a"), 0, kTimeout).ok());
  const CallResult again = resource_->CommitPrepared(Gid("a"), 0, kTimeout);
  EXPECT_TRUE(again.ok()) << again.reason;
  EXPECT_EQ(Value(), 7);

  ASSERT_TRUE(resource_->Prepare(Gid("b"), 0, {{SetValue(9)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared(Gid("b"), 0, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared(Gid("b"), 0, kTimeout).ok());
  EXPECT_EQ(Value(), 7);

  const CallResult never_prepared = resource_->RollbackPrepared(Gid("c"), 4, kTimeout);
  EXPECT_TRUE(never_prepared.ok()) << never_prepared.reason;
}

// A retry of Prepare after an Unknown answer: XA START answers 1440 (xid exists) and XA RECOVER
// lists it: the vote is yes already.
TEST_F(MysqlResourceTest, PrepareAgainAfterALostAnswerIsOk) {
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  const CallResult again = resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout);
  EXPECT_TRUE(again.ok()) << again.reason;
  EXPECT_EQ(Prepared(), std::vector<testing::XaXid>{Xid(Gid("a"), 0)});
  EXPECT_TRUE(resource_->CommitPrepared(Gid("a"), 0, kTimeout).ok());
  EXPECT_EQ(Value(), 7);
}

// A coordinator restart: the resource whose session prepared is gone (its connections closed),
// a new resource commits by xid from another session once MariaDB has detached the branch.
TEST_F(MysqlResourceTest, ANewResourceCommitsAfterThePreparingConnectionIsGone) {
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  resource_.reset();
  std::unique_ptr<MysqlResource> restarted = MakeResource(node_);
  Result<std::vector<InDoubtXid>> in_doubt = restarted->ListInDoubt(kTimeout);
  ASSERT_TRUE(in_doubt.ok()) << in_doubt.status().ToString();
  EXPECT_EQ(*in_doubt, (std::vector<InDoubtXid>{{Gid("a"), 0, XidText(Gid("a"), 0)}}));
  const CallResult commit =
      UntilOk([&] { return restarted->CommitPrepared(Gid("a"), 0, kTimeout); });
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_TRUE(Prepared().empty());
}

// shared/NOTES.md, the MariaDB trap: while the preparing session is connected, XA COMMIT from
// another session answers 1397 like an already resolved xid. A second resource object (its own
// connections, as another process would have) must not take that for "done".
TEST_F(MysqlResourceTest, The1397TrapIsNotTakenForDone) {
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  std::unique_ptr<MysqlResource> other = MakeResource(node_);

  const CallResult commit = other->CommitPrepared(Gid("a"), 0, kTimeout);
  EXPECT_EQ(commit.outcome, CallOutcome::kTransient) << commit.reason;
  EXPECT_NE(commit.reason.find("1397"), std::string::npos) << commit.reason;
  EXPECT_NE(commit.reason.find("XA RECOVER still lists"), std::string::npos) << commit.reason;
  const CallResult rollback = other->RollbackPrepared(Gid("a"), 0, kTimeout);
  EXPECT_EQ(rollback.outcome, CallOutcome::kTransient) << rollback.reason;
  EXPECT_EQ(Prepared(), std::vector<testing::XaXid>{Xid(Gid("a"), 0)});
  EXPECT_EQ(Value(), 0);

  // The resource holding the preparing session commits on it.
  const CallResult on_parked = resource_->CommitPrepared(Gid("a"), 0, kTimeout);
  EXPECT_TRUE(on_parked.ok()) << on_parked.reason;
  EXPECT_EQ(Value(), 7);
  // Now 1397 really means resolved.
  const CallResult after = other->CommitPrepared(Gid("a"), 0, kTimeout);
  EXPECT_TRUE(after.ok()) << after.reason;
}

// In-doubt scan: only this node's xids; not another node's (even one whose id starts with ours),
// not another program's (another formatID).
TEST_F(MysqlResourceTest, ListInDoubtListsOnlyThisNodesXids) {
  const std::string foreign_node = node_ + "f";
  std::unique_ptr<MysqlResource> foreign = MakeResource(foreign_node);
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  ASSERT_TRUE(resource_->Prepare(Gid("a"), 3, {}, kTimeout).ok());
  ASSERT_TRUE(foreign->Prepare(Gid("a"), 1, {}, kTimeout).ok());
  auto other_program = testing::ConnectMysql(test_dsn_);
  const testing::XaXid other_xid{"txc:" + base_ + "-other", node_ + ":5", 1};
  testing::ExecMysql(*other_program, "XA START " + testing::XaXidSql(other_xid));
  testing::ExecMysql(*other_program, "XA END " + testing::XaXidSql(other_xid));
  testing::ExecMysql(*other_program, "XA PREPARE " + testing::XaXidSql(other_xid));

  Result<std::vector<InDoubtXid>> ours = resource_->ListInDoubt(kTimeout);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  std::sort(ours->begin(), ours->end(), [](const InDoubtXid& a, const InDoubtXid& b) {
    return a.branch_index < b.branch_index;
  });
  EXPECT_EQ(*ours, (std::vector<InDoubtXid>{{Gid("a"), 0, XidText(Gid("a"), 0)},
                                            {Gid("a"), 3, XidText(Gid("a"), 3)}}));
  Result<std::vector<InDoubtXid>> theirs = foreign->ListInDoubt(kTimeout);
  ASSERT_TRUE(theirs.ok());
  ASSERT_EQ(theirs->size(), 1u);
  EXPECT_EQ(theirs->front().branch_index, 1u);

  EXPECT_TRUE(resource_->RollbackPrepared(Gid("a"), 0, kTimeout).ok());
  EXPECT_TRUE(resource_->RollbackPrepared(Gid("a"), 3, kTimeout).ok());
  EXPECT_TRUE(foreign->RollbackPrepared(Gid("a"), 1, kTimeout).ok());
  testing::ExecMysql(*other_program, "XA ROLLBACK " + testing::XaXidSql(other_xid));
  EXPECT_TRUE(resource_->ListInDoubt(kTimeout)->empty());
}

TEST_F(MysqlResourceTest, CommitOnePhaseAppliesWithoutPreparing) {
  const CallResult result = resource_->CommitOnePhase(
      Gid("a"), 0, {{SetValue(7), Statement{"INSERT INTO " + table_ + " VALUES (2, 2)", {}}}},
      kTimeout);
  EXPECT_TRUE(result.ok()) << result.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(resource_->ParkedConnections(), 0u);

  const CallResult refused = resource_->CommitOnePhase(
      Gid("b"), 0, {{SetValue(8), Statement{"INSERT INTO " + table_ + " VALUES (2, 2)", {}}}},
      kTimeout);
  EXPECT_EQ(refused.outcome, CallOutcome::kRefused) << refused.reason;
  EXPECT_EQ(Value(), 7) << "nothing of a refused one-phase branch is applied";
}

// API.md: params are JSON scalars (string, number, boolean, null), bound with their own types.
TEST_F(MysqlResourceTest, ParametersOfEveryJsonType) {
  const std::string types = table_ + "_types";
  testing::ExecMysql(*admin_, "CREATE TABLE " + types +
                                  " (b BOOLEAN, i BIGINT, d DOUBLE, s VARCHAR(64) CHARACTER SET "
                                  "utf8mb4, n INT NULL) ENGINE=InnoDB");
  const Statement insert{
      "INSERT INTO " + types + " VALUES (?, ?, ?, ?, ?)",
      {true, int64_t{9'007'199'254'740'993}, 0.1, std::string("it's \u2603"), std::monostate()}};
  const CallResult prepare = resource_->Prepare(Gid("a"), 0, {{insert}}, kTimeout);
  ASSERT_TRUE(prepare.ok()) << prepare.reason;
  EXPECT_TRUE(resource_->CommitPrepared(Gid("a"), 0, kTimeout).ok());
  const std::string row = testing::QueryMysqlString(
      *admin_, "SELECT CONCAT_WS('|', b, i, d = 0.1, HEX(s), n IS NULL) FROM " + types);
  testing::ExecMysql(*admin_, "DROP TABLE " + types);
  EXPECT_EQ(row, "1|9007199254740993|1|" + std::string("6974277320E29883") + "|1");
}

// More callers than pooled connections, with parking: all complete, and the pool (parked
// connections included) never exceeds pool_size_max.
TEST_F(MysqlResourceTest, MoreThreadsThanConnectionsAllComplete) {
  constexpr std::size_t kPoolSize = 3;
  constexpr int kThreads = 8;
  constexpr int kRounds = 5;
  std::unique_ptr<MysqlResource> small = MakeResource(node_, kPoolSize, /*parked_max=*/2);
  std::atomic<int> failures{0};
  std::atomic<std::size_t> most_open{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string gid = Gid("c" + std::to_string(t) + "-" + std::to_string(round));
        const Statement insert{"INSERT INTO " + table_ + " VALUES (?, ?)",
                               {int64_t{100 + t * kRounds + round}, int64_t{t}}};
        const CallResult prepare = small->Prepare(gid, 0, {{insert}}, 20s);
        // Another thread may have evicted this branch's parked session meanwhile: then the
        // branch is finished from another session once MariaDB has detached it.
        const CallResult commit = UntilOk([&] { return small->CommitPrepared(gid, 0, 20s); });
        if (!prepare.ok() || !commit.ok()) {
          ++failures;
          ADD_FAILURE() << prepare.reason << " / " << commit.reason;
        }
        const std::size_t open = small->OpenConnections();
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
      testing::QueryMysqlString(*admin_, "SELECT COUNT(*) FROM " + table_ + " WHERE k >= 100"),
      std::to_string(kThreads * kRounds));
}

// At parked_max, parking one more closes the connection parked longest ago: its branch detaches
// and is finished from another session (after the hand-over, during which it is Transient).
TEST_F(MysqlResourceTest, AtTheParkedBoundTheOldestParkedConnectionIsClosed) {
  std::unique_ptr<MysqlResource> one = MakeResource(node_, /*pool_size_max=*/3, /*parked_max=*/1);
  testing::ExecMysql(*admin_, "INSERT INTO " + table_ + " VALUES (2, 0)");
  ASSERT_TRUE(one->Prepare(Gid("a"), 0, {{SetValue(7)}}, kTimeout).ok());
  const Statement second{"UPDATE " + table_ + " SET v = 8 WHERE k = 2", {}};
  ASSERT_TRUE(one->Prepare(Gid("b"), 0, {{second}}, kTimeout).ok());
  EXPECT_EQ(one->ParkedConnections(), 1u);
  EXPECT_LE(one->OpenConnections(), 2u);
  EXPECT_EQ(Prepared().size(), 2u) << "the evicted branch stays prepared";

  const CallResult commit_a = UntilOk([&] { return one->CommitPrepared(Gid("a"), 0, kTimeout); });
  EXPECT_TRUE(commit_a.ok()) << commit_a.reason;
  const CallResult commit_b = one->CommitPrepared(Gid("b"), 0, kTimeout);
  EXPECT_TRUE(commit_b.ok()) << commit_b.reason;
  EXPECT_EQ(Value(), 7);
  EXPECT_EQ(testing::QueryMysqlString(*admin_, "SELECT v FROM " + table_ + " WHERE k = 2"), "8");
}

// The server bounds each statement by the call's timeout (max_statement_time): a statement
// waiting on a lock fails in about the timeout, the branch is rolled back, Transient.
TEST_F(MysqlResourceTest, AStatementBlockedPastTheTimeoutIsTransient) {
  auto locker = testing::ConnectMysql(test_dsn_);
  testing::ExecMysql(*locker, "START TRANSACTION");
  testing::ExecMysql(*locker, "UPDATE " + table_ + " SET v = 5 WHERE k = 1");
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = resource_->Prepare(Gid("a"), 0, {{SetValue(7)}}, 500ms);
  const auto took = std::chrono::steady_clock::now() - start;
  testing::ExecMysql(*locker, "ROLLBACK");
  EXPECT_EQ(result.outcome, CallOutcome::kTransient) << result.reason;
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(Prepared().empty());
  EXPECT_EQ(Value(), 0);
  EXPECT_TRUE(resource_->Prepare(Gid("b"), 0, {{SetValue(8)}}, kTimeout).ok());
  EXPECT_TRUE(resource_->CommitPrepared(Gid("b"), 0, kTimeout).ok());
  EXPECT_EQ(Value(), 8);
}

}  // namespace
}  // namespace txc::participants::mysql
