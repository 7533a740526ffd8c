// What the PostgreSQL participant adapter relies on, checked against a real PostgreSQL 15
// (scripts/dbs.sh; DSN in TXC_TEST_PG_DSN). Each test is named after the sentence it checks in
//   [PT] https://www.postgresql.org/docs/15/sql-prepare-transaction.html
//   [CP] https://www.postgresql.org/docs/15/sql-commit-prepared.html
//   [RP] https://www.postgresql.org/docs/15/sql-rollback-prepared.html
//   [MPT] https://www.postgresql.org/docs/15/runtime-config-resource.html
//         (max_prepared_transactions)
//   [VIEW] https://www.postgresql.org/docs/15/view-pg-prepared-xacts.html
// Statements go through pqxx::nontransaction: BEGIN, PREPARE TRANSACTION, COMMIT PREPARED are
// plain statements of ours, never a pqxx::work (see PrepareInsidePqxxWork... below).
// Global ids follow API.md: txc:<node_id>:<gid>:<branch>. Every test rolls back what it left
// prepared and fails if it left anything.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

// SQLSTATEs (https://www.postgresql.org/docs/15/errcodes-appendix.html).
constexpr char kUndefinedObject[] = "42704";
constexpr char kDuplicateObject[] = "42710";
constexpr char kInvalidParameterValue[] = "22023";
constexpr char kActiveSqlTransaction[] = "25001";
constexpr char kLockNotAvailable[] = "55P03";
constexpr char kDivisionByZero[] = "22012";

class PostgresTwoPhaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
    dsn_ = dsn;
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const std::string unique = test_name + "-" + std::to_string(getpid());
    gid_prefix_ = "txc:c1:" + unique + ":";
    table_ = "it_pg_";
    for (const char c : unique.substr(0, 40)) {
      table_.push_back(std::isalnum(static_cast<unsigned char>(c)) != 0
                           ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                           : '_');
    }
    admin_ = ConnectPostgres(dsn_);
    // A lock left behind shows up in TearDown's DROP TABLE: fail fast instead of hanging.
    ExecPostgres(*admin_, "SET lock_timeout = '5s'");
    ExecPostgres(*admin_, "DROP TABLE IF EXISTS " + table_);
    ExecPostgres(*admin_, "CREATE TABLE " + table_ + " (k INT PRIMARY KEY, v INT NOT NULL)");
    ExecPostgres(*admin_, "INSERT INTO " + table_ + " VALUES (1, 0)");
  }

  void TearDown() override {
    if (admin_ == nullptr) return;  // SetUp failed before connecting.
    const std::vector<std::string> left = PreparedPostgresGids(*admin_, gid_prefix_);
    for (const std::string& gid : left) {
      ExecPostgres(*admin_, "ROLLBACK PREPARED " + admin_->quote(gid));
    }
    EXPECT_TRUE(left.empty()) << "the test left " << left.size()
                              << " prepared transaction(s) behind, e.g. " << left.front();
    EXPECT_TRUE(PreparedPostgresGids(*admin_, gid_prefix_).empty());
    ExecPostgres(*admin_, "DROP TABLE IF EXISTS " + table_);
  }

  std::string Gid(int branch) const { return gid_prefix_ + std::to_string(branch); }
  std::string Quoted(const std::string& text) const { return admin_->quote(text); }

  // BEGIN; UPDATE row 1 to `value`; PREPARE TRANSACTION gid, all on `connection`.
  void PrepareUpdate(pqxx::connection& connection, const std::string& gid, int value) {
    ExecPostgres(connection, "BEGIN");
    ExecPostgres(connection,
                 "UPDATE " + table_ + " SET v = " + std::to_string(value) + " WHERE k = 1");
    ExecPostgres(connection, "PREPARE TRANSACTION " + Quoted(gid));
  }

  int ValueOn(pqxx::connection& connection) {
    return ExecPostgres(connection, "SELECT v FROM " + table_ + " WHERE k = 1")[0][0].as<int>();
  }

  std::string dsn_;
  std::string gid_prefix_;
  std::string table_;
  std::unique_ptr<pqxx::connection> admin_;
};

// [MPT] "Setting this parameter to zero (which is the default) disables the prepared-transaction
// feature." The coordinator checks it at start (API.md); dbs.sh sets 100.
TEST_F(PostgresTwoPhaseTest, MaxPreparedTransactionsIsAboveZeroAndVisibleThroughShow) {
  const pqxx::result shown = ExecPostgres(*admin_, "SHOW max_prepared_transactions");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_GT(shown[0][0].as<int>(), 0);
}

// [PT] "After this command, the transaction is no longer associated with the current session;
// instead, its state is fully stored on disk". [VIEW] lists it with its database and owner.
TEST_F(PostgresTwoPhaseTest, PrepareTransactionLeavesTheTransactionInPgPreparedXacts) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  const pqxx::result rows = ExecPostgres(
      *admin_, "SELECT database, owner FROM pg_prepared_xacts WHERE gid = " + Quoted(Gid(0)));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].as<std::string>(),
            ExecPostgres(*admin_, "SELECT current_database()")[0][0].as<std::string>());
  EXPECT_EQ(rows[0][1].as<std::string>(),
            ExecPostgres(*admin_, "SELECT current_user")[0][0].as<std::string>());
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), std::vector<std::string>{Gid(0)});

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));
}

// [PT] "From the point of view of the issuing session, PREPARE TRANSACTION is not unlike a
// ROLLBACK command: after executing it, there is no active current transaction, and the effects
// of the prepared transaction are no longer visible."
TEST_F(PostgresTwoPhaseTest, AfterPrepareTheSessionHasNoTransactionAndTheEffectsAreInvisible) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  EXPECT_EQ(ValueOn(*session), 0);
  EXPECT_EQ(ValueOn(*admin_), 0);
  // The session's transaction (which had an id: it wrote) is gone; the next statement runs in a
  // fresh one without an id.
  EXPECT_TRUE(
      ExecPostgres(*session, "SELECT pg_current_xact_id_if_assigned() IS NULL")[0][0].as<bool>());
  // And the session can run (and prepare) the next transaction right away.
  ExecPostgres(*session, "BEGIN");
  ExecPostgres(*session, "INSERT INTO " + table_ + " VALUES (2, 2)");
  ExecPostgres(*session, "PREPARE TRANSACTION " + Quoted(Gid(1)));
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), (std::vector<std::string>{Gid(0), Gid(1)}));

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));
  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(1)));
}

// [PT] "Those commands can be issued from any session, not only the one that executed the
// original transaction." [CP] commits: the effects become visible to everyone.
TEST_F(PostgresTwoPhaseTest, CommitPreparedFromAnotherSessionAppliesTheWrites) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  ExecPostgres(*admin_, "COMMIT PREPARED " + Quoted(Gid(0)));

  EXPECT_EQ(ValueOn(*admin_), 7);
  EXPECT_EQ(ValueOn(*session), 7);
  EXPECT_TRUE(PreparedPostgresGids(*admin_, gid_prefix_).empty());
}

// [CP] transaction_id names a prepared transaction: once resolved, COMMIT PREPARED (and
// ROLLBACK PREPARED) of the same id fails with 42704 undefined_object. The adapter reads 42704
// on a phase-2 retry as "already resolved".
TEST_F(PostgresTwoPhaseTest, CommitPreparedOfAnAlreadyResolvedIdFailsWithSqlstate42704) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);
  ExecPostgres(*admin_, "COMMIT PREPARED " + Quoted(Gid(0)));

  EXPECT_EQ(PostgresSqlstateOf(*admin_, "COMMIT PREPARED " + Quoted(Gid(0))), kUndefinedObject);
  EXPECT_EQ(PostgresSqlstateOf(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0))), kUndefinedObject);
  EXPECT_EQ(PostgresSqlstateOf(*admin_, "COMMIT PREPARED " + Quoted(Gid(99))), kUndefinedObject);
  EXPECT_EQ(ValueOn(*admin_), 7);
}

// [RP] ROLLBACK PREPARED cancels a transaction that was earlier prepared for two-phase commit:
// its effects are discarded.
TEST_F(PostgresTwoPhaseTest, RollbackPreparedDiscardsTheWrites) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));

  EXPECT_EQ(ValueOn(*admin_), 0);
  EXPECT_TRUE(PreparedPostgresGids(*admin_, gid_prefix_).empty());
  EXPECT_EQ(PostgresSqlstateOf(*admin_, "COMMIT PREPARED " + Quoted(Gid(0))), kUndefinedObject);
}

// [PT] "the transaction is no longer associated with the current session": closing the
// preparing connection leaves it prepared, and any later session can commit it.
TEST_F(PostgresTwoPhaseTest, PreparedTransactionSurvivesTheDisconnectOfItsSession) {
  {
    auto session = ConnectPostgres(dsn_);
    PrepareUpdate(*session, Gid(0), 7);
    session->disconnect();
  }
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), std::vector<std::string>{Gid(0)});

  auto later = ConnectPostgres(dsn_);
  ExecPostgres(*later, "COMMIT PREPARED " + Quoted(Gid(0)));
  EXPECT_EQ(ValueOn(*admin_), 7);
}

// [PT] Notes: "the transaction continues to hold whatever locks it held" until it is committed
// or rolled back. Why recovery must resolve every branch.
TEST_F(PostgresTwoPhaseTest, PreparedTransactionKeepsItsRowLocks) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  auto writer = ConnectPostgres(dsn_);
  ExecPostgres(*writer, "SET lock_timeout = '200ms'");
  EXPECT_EQ(PostgresSqlstateOf(*writer, "UPDATE " + table_ + " SET v = 9 WHERE k = 1"),
            kLockNotAvailable);

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));
  ExecPostgres(*writer, "UPDATE " + table_ + " SET v = 9 WHERE k = 1");
  EXPECT_EQ(ValueOn(*admin_), 9);
}

// [PT] transaction_id "must be written as a string literal, and must be less than 200 bytes
// long." A 200-byte id fails with 22023; [PT] "If the PREPARE TRANSACTION command fails for any
// reason, it becomes a ROLLBACK": the write is gone.
TEST_F(PostgresTwoPhaseTest, TransactionIdMustBeLessThan200Bytes) {
  auto session = ConnectPostgres(dsn_);
  const std::string longest = gid_prefix_ + std::string(199 - gid_prefix_.size(), 'x');
  ASSERT_EQ(longest.size(), 199u);
  PrepareUpdate(*session, longest, 7);
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), std::vector<std::string>{longest});
  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(longest));

  const std::string too_long = longest + "x";
  ExecPostgres(*session, "BEGIN");
  ExecPostgres(*session, "UPDATE " + table_ + " SET v = 8 WHERE k = 1");
  EXPECT_EQ(PostgresSqlstateOf(*session, "PREPARE TRANSACTION " + Quoted(too_long)),
            kInvalidParameterValue);

  EXPECT_TRUE(PreparedPostgresGids(*admin_, gid_prefix_).empty());
  EXPECT_EQ(ValueOn(*session), 0);  // Rolled back, and no transaction block left open.
}

// [PT] transaction_id "must not be the same as the identifier used for any currently prepared
// transaction": the second PREPARE fails with 42710 and its transaction is rolled back.
TEST_F(PostgresTwoPhaseTest, TransactionIdMustNotBeInUseByAnotherPreparedTransaction) {
  auto first = ConnectPostgres(dsn_);
  PrepareUpdate(*first, Gid(0), 7);

  auto second = ConnectPostgres(dsn_);
  ExecPostgres(*second, "BEGIN");
  ExecPostgres(*second, "INSERT INTO " + table_ + " VALUES (2, 2)");
  EXPECT_EQ(PostgresSqlstateOf(*second, "PREPARE TRANSACTION " + Quoted(Gid(0))), kDuplicateObject);
  EXPECT_EQ(ExecPostgres(*second, "SELECT count(*) FROM " + table_)[0][0].as<int>(), 1);

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));
}

// [PT] "If the PREPARE TRANSACTION command fails for any reason, it becomes a ROLLBACK". After a
// failed statement the transaction is aborted, and PREPARE TRANSACTION then answers like
// ROLLBACK *without an error*: nothing is prepared. The adapter must vote no on the statement's
// error and never read a silent PREPARE as a yes vote.
TEST_F(PostgresTwoPhaseTest, PrepareAfterAFailedStatementSilentlyBecomesARollback) {
  auto session = ConnectPostgres(dsn_);
  ExecPostgres(*session, "BEGIN");
  ExecPostgres(*session, "UPDATE " + table_ + " SET v = 7 WHERE k = 1");
  EXPECT_EQ(PostgresSqlstateOf(*session, "SELECT 1 / 0"), kDivisionByZero);

  EXPECT_EQ(PostgresSqlstateOf(*session, "PREPARE TRANSACTION " + Quoted(Gid(0))), "");

  EXPECT_TRUE(PreparedPostgresGids(*admin_, gid_prefix_).empty());
  EXPECT_EQ(ValueOn(*session), 0);
}

// [CP] "This command cannot be executed inside a transaction block." (25001): phase 2 runs as a
// plain statement, not inside a pqxx::work.
TEST_F(PostgresTwoPhaseTest, CommitPreparedCannotRunInsideATransactionBlock) {
  auto session = ConnectPostgres(dsn_);
  PrepareUpdate(*session, Gid(0), 7);

  {
    pqxx::work block(*admin_);
    try {
      block.exec("COMMIT PREPARED " + block.quote(Gid(0)));
      ADD_FAILURE() << "COMMIT PREPARED ran inside a transaction block";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), kActiveSqlTransaction);
    }
  }
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), std::vector<std::string>{Gid(0)});

  ExecPostgres(*admin_, "COMMIT PREPARED " + Quoted(Gid(0)));
  EXPECT_EQ(ValueOn(*admin_), 7);
}

// The libpqxx 6.4 trap (shared/NOTES.md): PREPARE TRANSACTION inside a pqxx::work, then
// commit(), does not throw (the server only warns that no transaction is in progress) and the
// transaction stays prepared. Hence adapters never use pqxx::work for two-phase commit.
TEST_F(PostgresTwoPhaseTest, PrepareInsidePqxxWorkThenCommitDoesNotThrowAndStaysPrepared) {
  auto session = ConnectPostgres(dsn_);
  {
    pqxx::work block(*session);
    block.exec("UPDATE " + table_ + " SET v = 7 WHERE k = 1");
    block.exec("PREPARE TRANSACTION " + block.quote(Gid(0)));
    EXPECT_NO_THROW(block.commit());
  }
  EXPECT_EQ(PreparedPostgresGids(*admin_, gid_prefix_), std::vector<std::string>{Gid(0)});
  EXPECT_EQ(ValueOn(*admin_), 0);  // commit() committed nothing.

  ExecPostgres(*admin_, "ROLLBACK PREPARED " + Quoted(Gid(0)));
}

}  // namespace
}  // namespace txc::testing
