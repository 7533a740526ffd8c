// The C++ API (coordinator/embedded/coordinator.h) through its documented example program
// (examples/cpp_api/transfer.cc, shown in docs/cpp-api.md), against the real servers: a commit,
// an abort, and a process killed right after its commit decision became durable, whose next run
// finishes the commit.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include <cppconn/connection.h>

#include "tests/support/db_env.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

struct ExampleRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

ExampleRun RunExample(const TempDir& dir, const std::string& pg, const std::string& mysql,
                      const std::string& amount,
                      const std::map<std::string, std::string>& extra_env = {}) {
  auto environment = CurrentEnvironment();
  for (const auto& [name, value] : extra_env) environment[name] = value;
  static int runs = 0;
  const std::string tag = std::to_string(++runs);
  ChildProcess child({.program = TXC_TRANSFER_EXAMPLE,
                      .args = {pg, mysql, dir.File("log"), amount},
                      .environment = environment,
                      .stdout_path = dir.File("out" + tag),
                      .stderr_path = dir.File("err" + tag)});
  ExampleRun run;
  auto code = child.WaitForExit(std::chrono::seconds(60));
  run.exit_code = code.value_or(-1);
  run.out = ReadFileOrEmpty(dir.File("out" + tag));
  run.err = ReadFileOrEmpty(dir.File("err" + tag));
  return run;
}

// "alice (PostgreSQL): 70, bob (MariaDB): 30" → {70, 30}
std::pair<long, long> Balances(const std::string& out) {
  std::smatch match;
  const std::regex pattern(R"(alice \(PostgreSQL\): (-?\d+), bob \(MariaDB\): (-?\d+))");
  if (!std::regex_search(out, match, pattern)) return {-1, -1};
  return {std::stol(match[1]), std::stol(match[2])};
}

class CppApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequireEnv("TXC_TEST_PG_DSN");
    mysql_ = RequireEnv("TXC_TEST_MYSQL_DSN");
    ASSERT_FALSE(pg_.empty() || mysql_.empty());
    // Fresh accounts: the example creates them with alice = 100, bob = 0.
    auto pg = ConnectPostgres(pg_);
    ExecPostgres(*pg, "DROP TABLE IF EXISTS example_accounts");
    std::string error;
    auto dsn = ParseMysqlDsn(mysql_, &error);
    ASSERT_TRUE(dsn) << error;
    auto my = ConnectMysql(*dsn);
    ExecMysql(*my, "DROP TABLE IF EXISTS example_wallets");
  }
  void TearDown() override {
    auto pg = ConnectPostgres(pg_);
    EXPECT_TRUE(PreparedPostgresGids(*pg, "txc:example:").empty()) << "prepared left behind";
    std::string error;
    auto my = ConnectMysql(*ParseMysqlDsn(mysql_, &error));
    EXPECT_TRUE(RecoverMysqlXids(*my, "txc:").empty()) << "XA branches left behind";
  }
  std::string pg_;
  std::string mysql_;
  TempDir dir_;
};

TEST_F(CppApiTest, ExampleCommitsAcrossBothDatabases) {
  const ExampleRun run = RunExample(dir_, pg_, mysql_, "30");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find(": committed"), std::string::npos) << run.out;
  EXPECT_EQ(Balances(run.out), (std::pair<long, long>{70, 30}));
}

TEST_F(CppApiTest, ExampleAbortsBothWhenTheDebitIsRefused) {
  ASSERT_EQ(RunExample(dir_, pg_, mysql_, "30").exit_code, 0);
  const ExampleRun run = RunExample(dir_, pg_, mysql_, "1000");
  ASSERT_EQ(run.exit_code, 3) << run.out << run.err;
  EXPECT_NE(run.out.find(": aborted"), std::string::npos) << run.out;
  EXPECT_EQ(Balances(run.out), (std::pair<long, long>{70, 30}));  // the credit did not land
}

TEST_F(CppApiTest, AProcessKilledAfterItsDecisionIsFinishedByTheNextOne) {
  const ExampleRun killed =
      RunExample(dir_, pg_, mysql_, "25", {{"TXC_CRASH_AT", "after_decision_durable"}});
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.out << killed.err;
  EXPECT_NE(killed.err.find("crash point after_decision_durable reached"), std::string::npos)
      << killed.err;
  // The next run opens the same log: the decided transfer is committed during Open, then the
  // new transfer of 5 runs.
  const ExampleRun next = RunExample(dir_, pg_, mysql_, "5");
  ASSERT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_EQ(Balances(next.out), (std::pair<long, long>{70, 30}));
}

}  // namespace
}  // namespace txc::testing
