// The README's examples, run as a user would: txcoord started with docs/examples/txcoord.yaml
// (only its address, log directory and DSNs overridden by TXC_* variables, as the README says),
// then every shell block of "Talking to txcoord" and "A two-phase commit across PostgreSQL and
// MariaDB" run by bash, exactly as written except for the port and the build directory.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cppconn/connection.h>

#include "tests/support/db_env.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void ReplaceAll(std::string* text, const std::string& from, const std::string& to) {
  for (size_t at = text->find(from); at != std::string::npos;
       at = text->find(from, at + to.size())) {
    text->replace(at, from.size(), to);
  }
}

// The ```sh blocks between heading `section` and the next "## " heading.
std::vector<std::string> ShellBlocks(const std::string& readme, const std::string& section) {
  std::vector<std::string> blocks;
  const size_t start = readme.find("## " + section + "\n");
  if (start == std::string::npos) return blocks;
  const size_t end = readme.find("\n## ", start + 3);
  const std::string part =
      readme.substr(start, end == std::string::npos ? std::string::npos : end - start);
  for (size_t at = part.find("```sh\n"); at != std::string::npos; at = part.find("```sh\n", at)) {
    const size_t body = at + 6;
    const size_t close = part.find("```", body);
    blocks.push_back(part.substr(body, close - body));
    at = close + 3;
  }
  return blocks;
}

struct Shell {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Shell RunBash(const TempDir& dir, const std::string& script, const std::string& name,
              const std::string& txc_url = "") {
  const std::string path = dir.File(name + ".sh");
  std::ofstream(path) << "set -euo pipefail\ncd " << TXC_SOURCE_DIR << "\n" << script;
  auto environment = CurrentEnvironment();
  // txctl's default address, for the lines that do not give --url (README: $TXC_URL).
  if (!txc_url.empty()) environment["TXC_URL"] = txc_url;
  ChildProcess child({.program = "/bin/bash",
                      .args = {path},
                      .environment = environment,
                      .stdout_path = dir.File(name + ".out"),
                      .stderr_path = dir.File(name + ".err")});
  Shell shell;
  shell.exit_code = child.WaitForExit(std::chrono::seconds(60)).value_or(-1);
  shell.out = ReadFileOrEmpty(dir.File(name + ".out"));
  shell.err = ReadFileOrEmpty(dir.File(name + ".err"));
  return shell;
}

TEST(ReadmeTest, ExamplesRunAsWritten) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  TempDir dir;
  const std::string readme = ReadText(std::string(TXC_SOURCE_DIR) + "/README.md");
  const auto talking = ShellBlocks(readme, "Talking to txcoord");
  const auto two_phase = ShellBlocks(readme, "A two-phase commit across PostgreSQL and MariaDB");
  ASSERT_EQ(talking.size(), 1u) << "the README section changed: update this test with it";
  ASSERT_EQ(two_phase.size(), 1u) << "the README section changed: update this test with it";

  // The tables the two-phase example moves money between.
  auto pg = ConnectPostgres(pg_dsn);
  ExecPostgres(*pg, "DROP TABLE IF EXISTS accounts");
  ExecPostgres(
      *pg,
      "CREATE TABLE accounts (id text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))");
  ExecPostgres(*pg, "INSERT INTO accounts VALUES ('alice', 100)");
  std::string error;
  auto mysql_parts = ParseMysqlDsn(mysql_dsn, &error);
  ASSERT_TRUE(mysql_parts) << error;
  auto my = ConnectMysql(*mysql_parts);
  ExecMysql(*my, "DROP TABLE IF EXISTS accounts");
  ExecMysql(
      *my,
      "CREATE TABLE accounts (id varchar(32) PRIMARY KEY, balance int NOT NULL) ENGINE=InnoDB");
  ExecMysql(*my, "INSERT INTO accounts VALUES ('bob', 0)");

  const uint16_t port = FreeLoopbackPort();
  auto environment = CurrentEnvironment();
  environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(port);
  environment["TXC_LOG_DIR"] = dir.File("log");
  environment["TXC_RESOURCES"] = "[{name: orders, kind: postgres, dsn: \"" + pg_dsn +
                                 "\"}, {name: payments, kind: mysql, dsn: \"" + mysql_dsn + "\"}]";
  ChildProcess txcoord(
      {.program = TXCOORD_PATH,
       .args = {"--config", std::string(TXC_SOURCE_DIR) + "/docs/examples/txcoord.yaml"},
       .environment = environment,
       .stdout_path = dir.File("txcoord.out"),
       .stderr_path = dir.File("txcoord.err")});
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    ready = RunBash(dir, "curl -sf " + url + "/readyz >/dev/null", "probe").exit_code == 0;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready) << ReadFileOrEmpty(dir.File("txcoord.err"));

  auto adapt = [&](std::string script) {
    ReplaceAll(&script, "http://127.0.0.1:8080", url);
    ReplaceAll(&script, "build/", std::string(TXC_BINARY_DIR) + "/");
    return script;
  };
  const Shell first = RunBash(dir, adapt(talking[0]), "talking", url);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("{\"status\":\"ok\"}"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("\"node_id\""), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("txc_log_appends_total"), std::string::npos) << first.out;

  const Shell transfer = RunBash(dir, adapt(two_phase[0]), "two_phase", url);
  ASSERT_EQ(transfer.exit_code, 0) << transfer.out << transfer.err;
  EXPECT_NE(transfer.out.find("\"outcome\":\"committed\""), std::string::npos) << transfer.out;
  EXPECT_EQ(ExecPostgres(*pg, "SELECT balance FROM accounts WHERE id = 'alice'")[0][0].as<int>(),
            70);
  EXPECT_EQ(QueryMysqlString(*my, "SELECT balance FROM accounts WHERE id = 'bob'"), "30");
  EXPECT_TRUE(PreparedPostgresGids(*pg, "txc:").empty());
  EXPECT_TRUE(RecoverMysqlXids(*my, "txc:").empty());
  txcoord.Signal(SIGTERM);
  EXPECT_EQ(txcoord.WaitForExit(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace txc::testing
