// Prepared branches survive a crash of the database server: what makes a coordinator's phase 2
// after a participant restart possible. Each test prepares a branch, kills the server with
// SIGKILL and starts it again on the same port (scripts/dbs.sh restart-pg|restart-mysql --kill,
// found through TXC_TEST_DBS_SH and TXC_TEST_DB_DIR), then resolves the branch from a new session.
//   [PT] https://www.postgresql.org/docs/15/sql-prepare-transaction.html
//   [XS] https://dev.mysql.com/doc/refman/8.4/en/xa-states.html
//   [MXA] https://mariadb.com/kb/en/xa-transactions/
#include <cppconn/connection.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

constexpr long kTxcFormatId = 7889763;

// Runs `dbs.sh COMMAND DIR --kill`; true when it succeeded.
bool CrashAndRestart(const std::string& dbs_sh, const std::string& command,
                     const std::string& dir) {
  const std::string line = "'" + dbs_sh + "' " + command + " '" + dir + "' --kill";
  return std::system(line.c_str()) == 0;
}

// Runs `cleanup` when the test ends, however it ends (a failed ASSERT returns early).
class AtExit {
 public:
  explicit AtExit(std::function<void()> cleanup) : cleanup_(std::move(cleanup)) {}
  ~AtExit() {
    try {
      cleanup_();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup failed: " << e.what();
    }
  }
  AtExit(const AtExit&) = delete;
  AtExit& operator=(const AtExit&) = delete;

 private:
  std::function<void()> cleanup_;
};

std::string Unique() {
  return std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())
             .substr(0, 30) +
         "-" + std::to_string(getpid());
}

// [PT] "its state is fully stored on disk, and there is a very high probability that it can be
// committed successfully, even if a database crash occurs before the commit is requested."
TEST(ServerCrashTest, PostgresPreparedTransactionSurvivesAServerCrash) {
  TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(dbs_sh, "TXC_TEST_DBS_SH");
  TXC_REQUIRE_ENV(dir, "TXC_TEST_DB_DIR");
  const std::string unique = Unique();
  const std::string table = "it_crash_pg_" + std::to_string(getpid());
  const std::string gid = "txc:c1:" + unique + ":0";
  const AtExit cleanup([&] {
    auto session = ConnectPostgres(dsn);
    for (const std::string& left : PreparedPostgresGids(*session, gid)) {
      ADD_FAILURE() << "left prepared: " << left;
      ExecPostgres(*session, "ROLLBACK PREPARED " + session->quote(left));
    }
    ExecPostgres(*session, "DROP TABLE IF EXISTS " + table);
  });

  {
    auto session = ConnectPostgres(dsn);
    ExecPostgres(*session, "DROP TABLE IF EXISTS " + table);
    ExecPostgres(*session, "CREATE TABLE " + table + " (k INT PRIMARY KEY, v INT NOT NULL)");
    ExecPostgres(*session, "INSERT INTO " + table + " VALUES (1, 0)");
    ExecPostgres(*session, "BEGIN");
    ExecPostgres(*session, "UPDATE " + table + " SET v = 7 WHERE k = 1");
    ExecPostgres(*session, "PREPARE TRANSACTION " + session->quote(gid));
  }
  ASSERT_TRUE(CrashAndRestart(dbs_sh, "restart-pg", dir));

  auto session = ConnectPostgres(dsn);
  EXPECT_EQ(PreparedPostgresGids(*session, gid), std::vector<std::string>{gid});
  EXPECT_EQ(ExecPostgres(*session, "SELECT v FROM " + table)[0][0].as<int>(), 0);
  ExecPostgres(*session, "COMMIT PREPARED " + session->quote(gid));
  EXPECT_EQ(ExecPostgres(*session, "SELECT v FROM " + table)[0][0].as<int>(), 7);
}

// [XS] XA PREPARE puts the branch in the PREPARED state, which XA RECOVER lists; MariaDB keeps
// prepared branches across a crash and restart ([MXA]; shared/NOTES.md: "Prepared XA survives
// disconnect, restart and kill -9"), and any session may then commit them.
TEST(ServerCrashTest, MariadbPreparedBranchSurvivesAServerCrash) {
  TXC_REQUIRE_ENV(dsn_text, "TXC_TEST_MYSQL_DSN");
  TXC_REQUIRE_ENV(dbs_sh, "TXC_TEST_DBS_SH");
  TXC_REQUIRE_ENV(dir, "TXC_TEST_DB_DIR");
  std::string error;
  const std::optional<MysqlDsn> dsn = ParseMysqlDsn(dsn_text, &error);
  ASSERT_TRUE(dsn.has_value()) << "TXC_TEST_MYSQL_DSN: " << error;
  const std::string table = "it_crash_my_" + std::to_string(getpid());
  const XaXid xid{"txc:" + Unique(), "c1:0", kTxcFormatId};
  const std::string xid_sql = XaXidSql(xid);
  const AtExit cleanup([&] {
    auto session = ConnectMysql(*dsn);
    for (const XaXid& left : RecoverMysqlXids(*session, xid.gtrid)) {
      ADD_FAILURE() << "left prepared: " << XaXidSql(left);
      ExecMysql(*session, "XA ROLLBACK " + XaXidSql(left));
    }
    ExecMysql(*session, "DROP TABLE IF EXISTS " + table);
  });

  {
    auto session = ConnectMysql(*dsn);
    ExecMysql(*session, "DROP TABLE IF EXISTS " + table);
    ExecMysql(*session,
              "CREATE TABLE " + table + " (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
    ExecMysql(*session, "INSERT INTO " + table + " VALUES (1, 0)");
    ExecMysql(*session, "XA START " + xid_sql);
    ExecMysql(*session, "UPDATE " + table + " SET v = 7 WHERE k = 1");
    ExecMysql(*session, "XA END " + xid_sql);
    ExecMysql(*session, "XA PREPARE " + xid_sql);
    // The session is still connected when the server dies.
    ASSERT_TRUE(CrashAndRestart(dbs_sh, "restart-mysql", dir));
  }

  auto session = ConnectMysql(*dsn);
  EXPECT_EQ(RecoverMysqlXids(*session, xid.gtrid), std::vector<XaXid>{xid});
  EXPECT_EQ(MysqlErrorOf(*session, "XA COMMIT " + xid_sql), 0);
  EXPECT_EQ(QueryMysqlString(*session, "SELECT v FROM " + table), "7");
}

}  // namespace
}  // namespace txc::testing
