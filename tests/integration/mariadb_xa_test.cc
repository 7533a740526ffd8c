// What the MySQL participant adapter relies on, checked against a real MariaDB 10.11
// (scripts/dbs.sh; DSN in TXC_TEST_MYSQL_DSN) through Connector/C++ 1.1. Each test is named
// after the sentence it checks in
//   [XA] https://dev.mysql.com/doc/refman/8.4/en/xa-statements.html (XA transaction statements)
//   [XS] https://dev.mysql.com/doc/refman/8.4/en/xa-states.html (XA transaction states)
//   [MXA] https://mariadb.com/kb/en/xa-transactions/ (MariaDB: XA RECOVER FORMAT='SQL')
// or after a MariaDB behaviour measured in shared/NOTES.md.
// Xids follow API.md: gtrid txc:<gid>, bqual <node_id>:<branch>, formatID 7889763. Every test
// rolls back what it left prepared and fails if it left anything.
//
// A MariaDB hazard measured while writing these tests (10.11.19): XA COMMIT or XA ROLLBACK from
// another session while the preparing session is still disconnecting (e.g. a loop retrying on
// 1397 every few milliseconds) now and then (about 1 in 25-50 in a tight loop) returns success
// WITHOUT resolving the branch: its InnoDB transaction stays behind holding its locks, XA
// RECOVER no longer lists it, and it comes back as prepared after a server restart. Resolving
// only once the preparing connection has left information_schema.PROCESSLIST never showed it
// (2,000 of 2,000). So these tests, like the adapter must, wait for the session to be gone.
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

constexpr long kTxcFormatId = 7889763;
// https://mariadb.com/kb/en/mariadb-error-code-reference/
constexpr int kXaerNota = 1397;         // XAER_NOTA: Unknown XID (SQLSTATE XAE04)
constexpr int kLockWaitTimeout = 1205;  // ER_LOCK_WAIT_TIMEOUT
constexpr int kDuplicateEntry = 1062;   // ER_DUP_ENTRY
// How long a disconnected or killed session may take to leave the processlist.
constexpr std::chrono::seconds kGoneTimeout{10};

class MariadbXaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn_text, "TXC_TEST_MYSQL_DSN");
    std::string error;
    const std::optional<MysqlDsn> dsn = ParseMysqlDsn(dsn_text, &error);
    ASSERT_TRUE(dsn.has_value()) << "TXC_TEST_MYSQL_DSN: " << error;
    dsn_ = *dsn;
    // gtrid and bqual are at most 64 bytes each: keep the name short.
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const std::string unique = test_name.substr(0, 40) + "-" + std::to_string(getpid());
    gtrid_ = "txc:" + unique;
    table_ = "it_my_";
    for (const char c : unique) {
      table_.push_back(std::isalnum(static_cast<unsigned char>(c)) != 0
                           ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                           : '_');
    }
    admin_ = ConnectMysql(dsn_);
    // A lock held by an orphaned branch shows up in TearDown's DROP TABLE: fail fast.
    ExecMysql(*admin_, "SET SESSION innodb_lock_wait_timeout = 5");
    ExecMysql(*admin_, "DROP TABLE IF EXISTS " + table_);
    ExecMysql(*admin_,
              "CREATE TABLE " + table_ + " (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
    ExecMysql(*admin_, "INSERT INTO " + table_ + " VALUES (1, 0)");
  }

  void TearDown() override {
    if (admin_ == nullptr) return;  // SetUp failed before connecting.
    // The test's own sessions are closed by now; wait until the server has let go of them.
    for (const std::string& id : session_ids_) {
      EXPECT_TRUE(WaitUntilGone(id)) << "session " << id << " is still in the processlist";
    }
    const std::vector<XaXid> left = RecoverMysqlXids(*admin_, gtrid_);
    for (const XaXid& xid : left) {
      EXPECT_EQ(MysqlErrorOf(*admin_, "XA ROLLBACK " + XaXidSql(xid)), 0);
    }
    EXPECT_TRUE(left.empty()) << "the test left " << left.size()
                              << " prepared branch(es) behind, e.g. " << XaXidSql(left.front());
    EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
    EXPECT_EQ(MysqlErrorOf(*admin_, "DROP TABLE IF EXISTS " + table_), 0)
        << "a transaction still holds locks on " << table_
        << ": an XA branch resolved as done but left behind?";
  }

  XaXid Xid(int branch) const {
    return XaXid{gtrid_, "c1:" + std::to_string(branch), kTxcFormatId};
  }

  // A new session; TearDown waits until it has left the processlist.
  std::unique_ptr<sql::Connection> Connect() {
    std::unique_ptr<sql::Connection> session = ConnectMysql(dsn_);
    session_ids_.push_back(ConnectionId(*session));
    return session;
  }

  static std::string ConnectionId(sql::Connection& session) {
    return QueryMysqlString(session, "SELECT CONNECTION_ID()");
  }

  // True once connection `id` has left information_schema.PROCESSLIST (disconnected or killed,
  // and cleaned up) within kGoneTimeout. Only then may another session resolve its branch.
  bool WaitUntilGone(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + kGoneTimeout;
    const std::string query =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + id;
    while (QueryMysqlString(*admin_, query) != "0") {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // 'gtrid','bqual',formatID: the quoted form (our ids need no escaping).
  static std::string Sql(const XaXid& xid) {
    return "'" + xid.gtrid + "','" + xid.bqual + "'," + std::to_string(xid.format_id);
  }

  // XA START; UPDATE row 1 to `value`; XA END; XA PREPARE, on `session`.
  void PrepareUpdate(sql::Connection& session, const XaXid& xid, int value) {
    ExecMysql(session, "XA START " + Sql(xid));
    ExecMysql(session, "UPDATE " + table_ + " SET v = " + std::to_string(value) + " WHERE k = 1");
    ExecMysql(session, "XA END " + Sql(xid));
    ExecMysql(session, "XA PREPARE " + Sql(xid));
  }

  int ValueOn(sql::Connection& session) {
    return std::stoi(QueryMysqlString(session, "SELECT v FROM " + table_ + " WHERE k = 1"));
  }

  MysqlDsn dsn_;
  std::vector<std::string> session_ids_;
  std::string gtrid_;
  std::string table_;
  std::unique_ptr<sql::Connection> admin_;
};

// [XA] XA RECOVER returns the XA transactions in the PREPARED state, one row each "regardless of
// which client started it", as formatID, gtrid_length, bqual_length and data (gtrid and bqual
// concatenated); and a transaction manager must be able to recognize its own xid values in that
// list ([XS]: "XA RECOVER lists all XA transactions that are in the PREPARED state").
TEST_F(MariadbXaTest, XaRecoverListsAPreparedBranchOfAnySession) {
  auto preparer = Connect();
  PrepareUpdate(*preparer, Xid(0), 7);

  std::unique_ptr<sql::Statement> statement(admin_->createStatement());
  std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("XA RECOVER"));
  int found = 0;
  while (rows->next()) {
    if (rows->getString("data").asStdString() != Xid(0).gtrid + Xid(0).bqual) continue;
    ++found;
    EXPECT_EQ(rows->getInt64("formatID"), kTxcFormatId);
    EXPECT_EQ(rows->getInt("gtrid_length"), static_cast<int>(Xid(0).gtrid.size()));
    EXPECT_EQ(rows->getInt("bqual_length"), static_cast<int>(Xid(0).bqual.size()));
  }
  EXPECT_EQ(found, 1);
  EXPECT_EQ(RecoverMysqlXids(*admin_, gtrid_), std::vector<XaXid>{Xid(0)});

  ExecMysql(*preparer, "XA ROLLBACK " + Sql(Xid(0)));
}

// [MXA] MariaDB's XA RECOVER FORMAT='SQL' prints data as an xid that XA COMMIT/ROLLBACK accept.
// Ids with characters such as ':' (all of ours) come out as hex literals X'..',X'..',formatID.
TEST_F(MariadbXaTest, XaRecoverFormatSqlPrintsAnXidThatXaRollbackAccepts) {
  auto preparer = Connect();
  PrepareUpdate(*preparer, Xid(0), 7);

  std::unique_ptr<sql::Statement> statement(admin_->createStatement());
  std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("XA RECOVER FORMAT='SQL'"));
  std::vector<std::string> ours;
  while (rows->next()) {
    const std::string data = rows->getString("data").asStdString();
    if (data.find(XaXidSql(XaXid{gtrid_, "", 0}).substr(0, 2 + 2 * gtrid_.size())) == 0) {
      ours.push_back(data);
    }
  }
  ASSERT_EQ(ours, std::vector<std::string>{XaXidSql(Xid(0))});

  ExecMysql(*preparer, "XA ROLLBACK " + ours.front());
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// shared/NOTES.md, MariaDB: "while the session that prepared is still connected, XA COMMIT from
// another session fails with 1397 (XAER_NOTA)" although XA RECOVER lists the branch; once that
// session has disconnected (and left the processlist), XA COMMIT from any session commits it.
// [XS] A prepared branch survives the end of its session.
TEST_F(MariadbXaTest, XaCommitFromAnotherSessionFails1397UntilThePreparingSessionDisconnects) {
  auto preparer = Connect();
  const std::string preparer_id = ConnectionId(*preparer);
  PrepareUpdate(*preparer, Xid(0), 7);

  EXPECT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(0))), kXaerNota);
  EXPECT_EQ(RecoverMysqlXids(*admin_, gtrid_), std::vector<XaXid>{Xid(0)})
      << "1397 here does not mean 'already resolved': XA RECOVER still lists the branch";
  EXPECT_EQ(ValueOn(*admin_), 0);

  preparer.reset();  // Disconnects.
  ASSERT_TRUE(WaitUntilGone(preparer_id));
  EXPECT_EQ(RecoverMysqlXids(*admin_, gtrid_), std::vector<XaXid>{Xid(0)});
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(0))), 0);

  EXPECT_EQ(ValueOn(*admin_), 7);
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// The recipe the adapter relies on, repeated (see the hazard at the top of this file): prepare,
// disconnect, wait until the session has left the processlist, then XA COMMIT from another
// session. Every commit must take effect and release its locks.
TEST_F(MariadbXaTest, AfterThePreparingSessionLeftTheProcesslistXaCommitAlwaysTakesEffect) {
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    const XaXid xid = Xid(round);
    {
      std::unique_ptr<sql::Connection> preparer = ConnectMysql(dsn_);
      const std::string preparer_id = ConnectionId(*preparer);
      ExecMysql(*preparer, "XA START " + Sql(xid));
      ExecMysql(*preparer, "UPDATE " + table_ + " SET v = v + 1 WHERE k = 1");
      ExecMysql(*preparer, "XA END " + Sql(xid));
      ExecMysql(*preparer, "XA PREPARE " + Sql(xid));
      preparer.reset();
      ASSERT_TRUE(WaitUntilGone(preparer_id)) << "round " << round;
    }
    ASSERT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(xid)), 0) << "round " << round;
    // The increment is visible, and no orphan holds the row: this update must not wait.
    ASSERT_EQ(ValueOn(*admin_), round + 1) << "round " << round;
    ASSERT_EQ(MysqlErrorOf(*admin_, "UPDATE " + table_ + " SET v = v WHERE k = 1"), 0)
        << "round " << round;
  }
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// [XS] "For a PREPARED XA transaction, you can issue an XA COMMIT statement to commit and
// terminate the transaction": on the session that prepared it, that works in MariaDB too.
TEST_F(MariadbXaTest, XaCommitOnThePreparingSessionCommits) {
  auto preparer = Connect();
  PrepareUpdate(*preparer, Xid(0), 7);

  ExecMysql(*preparer, "XA COMMIT " + Sql(Xid(0)));

  EXPECT_EQ(ValueOn(*admin_), 7);
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// [XA] "If you use any of those statements but specify an xid value that does not correspond to
// some existing XA transaction, an error occurs": 1397 XAER_NOTA, for an xid never seen and for
// one already committed (a phase-2 retry). The adapter tells these apart from a branch still held
// by its session through XA RECOVER.
TEST_F(MariadbXaTest, XaCommitOrRollbackOfAnUnknownXidFailsWith1397) {
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(9))), kXaerNota);
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA ROLLBACK " + Sql(Xid(9))), kXaerNota);

  auto preparer = Connect();
  PrepareUpdate(*preparer, Xid(0), 7);
  ExecMysql(*preparer, "XA COMMIT " + Sql(Xid(0)));

  EXPECT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(0))), kXaerNota);
  EXPECT_EQ(MysqlErrorOf(*preparer, "XA COMMIT " + Sql(Xid(0))), kXaerNota);
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA ROLLBACK " + Sql(Xid(0))), kXaerNota);
  EXPECT_EQ(ValueOn(*admin_), 7);
}

// [XS] For a PREPARED XA transaction, "XA ROLLBACK to roll back and terminate the transaction":
// its changes are gone and XA RECOVER no longer lists it.
TEST_F(MariadbXaTest, XaRollbackDiscardsAPreparedBranch) {
  auto preparer = Connect();
  const std::string preparer_id = ConnectionId(*preparer);
  PrepareUpdate(*preparer, Xid(0), 7);
  preparer.reset();
  ASSERT_TRUE(WaitUntilGone(preparer_id));

  EXPECT_EQ(MysqlErrorOf(*admin_, "XA ROLLBACK " + Sql(Xid(0))), 0);

  EXPECT_EQ(ValueOn(*admin_), 0);
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA ROLLBACK " + Sql(Xid(0))), kXaerNota);
}

// shared/NOTES.md: a branch held by a live session is released when that session is KILLed, so
// recovery can resolve a branch whose session hangs.
TEST_F(MariadbXaTest, KillingThePreparingSessionReleasesItsBranch) {
  auto preparer = Connect();
  const std::string preparer_id = ConnectionId(*preparer);
  PrepareUpdate(*preparer, Xid(0), 7);
  ASSERT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(0))), kXaerNota);

  ExecMysql(*admin_, "KILL " + preparer_id);
  ASSERT_TRUE(WaitUntilGone(preparer_id));
  EXPECT_EQ(MysqlErrorOf(*admin_, "XA COMMIT " + Sql(Xid(0))), 0);

  EXPECT_EQ(ValueOn(*admin_), 7);
}

// A prepared branch keeps its row locks until it is committed or rolled back (shared/NOTES.md:
// "orphans hold their locks"; why recovery must resolve every branch).
TEST_F(MariadbXaTest, APreparedBranchKeepsItsRowLocks) {
  auto preparer = Connect();
  PrepareUpdate(*preparer, Xid(0), 7);

  auto writer = Connect();
  ExecMysql(*writer, "SET SESSION innodb_lock_wait_timeout = 1");
  EXPECT_EQ(MysqlErrorOf(*writer, "UPDATE " + table_ + " SET v = 9 WHERE k = 1"), kLockWaitTimeout);

  ExecMysql(*preparer, "XA ROLLBACK " + Sql(Xid(0)));
  ExecMysql(*writer, "UPDATE " + table_ + " SET v = 9 WHERE k = 1");
  EXPECT_EQ(ValueOn(*admin_), 9);
}

// [XA] "gtrid and bqual must be string literals, each up to 64 bytes (not characters) long."
TEST_F(MariadbXaTest, GtridAndBqualAreEachAtMost64Bytes) {
  const XaXid longest{gtrid_ + std::string(64 - gtrid_.size(), 'g'), std::string(64, 'b'),
                      kTxcFormatId};
  auto preparer = Connect();
  PrepareUpdate(*preparer, longest, 7);
  EXPECT_EQ(RecoverMysqlXids(*admin_, gtrid_), std::vector<XaXid>{longest});
  ExecMysql(*preparer, "XA ROLLBACK " + Sql(longest));

  const XaXid long_gtrid{longest.gtrid + "g", "b", kTxcFormatId};
  EXPECT_NE(MysqlErrorOf(*preparer, "XA START " + Sql(long_gtrid)), 0);
  const XaXid long_bqual{gtrid_, longest.bqual + "b", kTxcFormatId};
  EXPECT_NE(MysqlErrorOf(*preparer, "XA START " + Sql(long_bqual)), 0);
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// [XS] "For an IDLE XA transaction, you can issue either an XA PREPARE statement or an XA COMMIT
// ... ONE PHASE statement"; "XA COMMIT ... ONE PHASE prepares and commits the transaction. The
// xid value is not listed by XA RECOVER because the transaction terminates." (The one-branch
// shortcut: nothing to recover.)
TEST_F(MariadbXaTest, XaCommitOnePhaseCommitsAnIdleBranchWithoutPrepare) {
  auto session = Connect();
  ExecMysql(*session, "XA START " + Sql(Xid(0)));
  ExecMysql(*session, "UPDATE " + table_ + " SET v = 7 WHERE k = 1");
  ExecMysql(*session, "XA END " + Sql(Xid(0)));

  ExecMysql(*session, "XA COMMIT " + Sql(Xid(0)) + " ONE PHASE");

  EXPECT_EQ(ValueOn(*admin_), 7);
  EXPECT_TRUE(RecoverMysqlXids(*admin_, gtrid_).empty());
}

// Unlike PostgreSQL, a failed statement inside an XA branch undoes only that statement: the
// branch stays usable and XA PREPARE still prepares the earlier writes. So the adapter must vote
// no (and roll the branch back) on any statement error itself; the database will not.
TEST_F(MariadbXaTest, AFailedStatementDoesNotStopXaPrepareOfTheEarlierWrites) {
  auto session = Connect();
  ExecMysql(*session, "XA START " + Sql(Xid(0)));
  ExecMysql(*session, "UPDATE " + table_ + " SET v = 7 WHERE k = 1");
  EXPECT_EQ(MysqlErrorOf(*session, "INSERT INTO " + table_ + " VALUES (1, 1)"), kDuplicateEntry);
  ExecMysql(*session, "XA END " + Sql(Xid(0)));
  EXPECT_EQ(MysqlErrorOf(*session, "XA PREPARE " + Sql(Xid(0))), 0);
  EXPECT_EQ(RecoverMysqlXids(*admin_, gtrid_), std::vector<XaXid>{Xid(0)});

  ExecMysql(*session, "XA COMMIT " + Sql(Xid(0)));
  EXPECT_EQ(ValueOn(*admin_), 7);
}

}  // namespace
}  // namespace txc::testing
