// Moves money from an account in PostgreSQL to an account in MariaDB/MySQL atomically, with the
// application's own connections and statements, through txc's C++ API.
//
// usage: txc_transfer_example PG_DSN MYSQL_DSN LOG_DIR AMOUNT
//   prints the outcome and both balances; exit 0 when the transaction committed, 3 when it was
//   aborted (for instance, the amount is larger than the balance), 1 on errors.
#include <cppconn/driver.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <pqxx/pqxx>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "coordinator/embedded/coordinator.h"

namespace {

// mysql://user:password@host:port/database → the parts Connector/C++ wants (no percent-escapes
// in this example's DSNs).
struct MysqlParts {
  std::string host, user, password, database;
  int port = 3306;
};
MysqlParts SplitMysqlDsn(const std::string& dsn) {
  MysqlParts p;
  std::string rest = dsn.substr(dsn.find("://") + 3);
  const auto at = rest.rfind('@');
  const std::string credentials = rest.substr(0, at);
  rest = rest.substr(at + 1);
  p.user = credentials.substr(0, credentials.find(':'));
  p.password = credentials.substr(credentials.find(':') + 1);
  const auto slash = rest.find('/');
  p.database = rest.substr(slash + 1);
  const std::string host_port = rest.substr(0, slash);
  p.host = host_port.substr(0, host_port.find(':'));
  p.port = std::atoi(host_port.substr(host_port.find(':') + 1).c_str());
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s PG_DSN MYSQL_DSN LOG_DIR AMOUNT\n", argv[0]);
    return 1;
  }
  const std::string pg_dsn = argv[1];
  const std::string mysql_dsn = argv[2];
  const int amount = std::atoi(argv[4]);

  // 1. The coordinator, with its log and the two databases it may enlist.
  auto coordinator = txc::Coordinator::Open(
      {.node_id = "example",
       .log_dir = argv[3],
       .resources = {{"ledger", "postgres", pg_dsn}, {"wallets", "mysql", mysql_dsn}}});
  if (!coordinator.ok()) {
    std::fprintf(stderr, "open: %s\n", coordinator.status().ToString().c_str());
    return 1;
  }

  // 2. The application's own connections, and its schema.
  pqxx::connection pg(pg_dsn);
  {
    pqxx::nontransaction setup(pg);
    setup.exec(
        "CREATE TABLE IF NOT EXISTS example_accounts (id text PRIMARY KEY, "
        "balance bigint NOT NULL CHECK (balance >= 0))");
    setup.exec("INSERT INTO example_accounts VALUES ('alice', 100) ON CONFLICT DO NOTHING");
  }
  const MysqlParts m = SplitMysqlDsn(mysql_dsn);
  sql::ConnectOptionsMap options;
  options["hostName"] = m.host;
  options["port"] = m.port;
  options["userName"] = m.user;
  options["password"] = m.password;
  options["schema"] = m.database;
  std::unique_ptr<sql::Connection> mysql(sql::mysql::get_mysql_driver_instance()->connect(options));
  {
    std::unique_ptr<sql::Statement> setup(mysql->createStatement());
    setup->execute(
        "CREATE TABLE IF NOT EXISTS example_wallets (id varchar(32) PRIMARY KEY, "
        "balance bigint NOT NULL) ENGINE=InnoDB");
    setup->execute("INSERT IGNORE INTO example_wallets VALUES ('bob', 0)");
  }

  // 3. One transaction over both connections.
  static int counter = 0;
  const std::string gid = "transfer-" + std::to_string(std::time(nullptr)) + "-" +
                          std::to_string(++counter) + "-" + std::to_string(amount);
  auto txn = (*coordinator)->Begin(gid);
  if (!txn.ok()) {
    std::fprintf(stderr, "begin: %s\n", txn.status().ToString().c_str());
    return 1;
  }
  for (const auto& status : {(*txn)->Enlist(pg, "ledger"), (*txn)->Enlist(*mysql, "wallets")}) {
    if (!status.ok()) {
      std::fprintf(stderr, "enlist: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  bool work_failed = false;
  try {
    pqxx::nontransaction debit(pg);
    debit.exec_params("UPDATE example_accounts SET balance = balance - $1 WHERE id = 'alice'",
                      amount);
  } catch (const std::exception& e) {
    // The CHECK refused the debit: the transaction can only abort now (Commit will see it).
    std::printf("debit refused: %s\n", e.what());
    work_failed = true;
  }
  {
    std::unique_ptr<sql::Statement> credit(mysql->createStatement());
    credit->execute("UPDATE example_wallets SET balance = balance + " + std::to_string(amount) +
                    " WHERE id = 'bob'");
  }
  auto outcome = (*txn)->Commit();
  if (!outcome.ok()) {
    std::fprintf(stderr, "commit: %s\n", outcome.status().ToString().c_str());
    return 1;
  }
  std::printf("transaction %s: %s%s\n", gid.c_str(), outcome->outcome.value_or("pending").c_str(),
              work_failed ? " (as expected after the refused debit)" : "");

  // 4. What both databases hold now.
  pqxx::nontransaction read(pg);
  const auto alice =
      read.exec1("SELECT balance FROM example_accounts WHERE id = 'alice'")[0].as<long>();
  std::unique_ptr<sql::Statement> query(mysql->createStatement());
  std::unique_ptr<sql::ResultSet> row(
      query->executeQuery("SELECT balance FROM example_wallets WHERE id = 'bob'"));
  row->next();
  std::printf("alice (PostgreSQL): %ld, bob (MariaDB): %ld\n", alice,
              static_cast<long>(row->getInt64(1)));
  return outcome->outcome == "committed" ? 0 : 3;
}
