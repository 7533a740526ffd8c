#include "tools/txc-bench/two_phase_db_bench.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "participants/database/xid.h"
#include "participants/mysql/mysql_dsn.h"
#include "tools/txc-bench/bench_db.h"
#include "tools/txc-bench/bench_http.h"
#include "tools/txc-bench/comparison.h"
#include "tools/txc-bench/latency.h"

namespace txc::bench {
namespace {

namespace db = participants::database;

constexpr const char* kScenario = "2pc-db";
constexpr const char* kTable = "txc_bench_accounts";
constexpr int64_t kInitialBalance = 1'000'000;
constexpr int64_t kAmount = 1;
// The node id in the baseline's xids: txcoord's in-doubt scan resolves only its own node's.
constexpr const char* kBaselineNode = "bench-client";
constexpr const char* kPgDebit =
    "UPDATE txc_bench_accounts SET balance = balance - $1 WHERE id = $2";
constexpr const char* kMysqlCredit =
    "UPDATE txc_bench_accounts SET balance = balance + ? WHERE id = ?";

struct Settings {
  std::string url;
  std::string pg_dsn;
  std::string mysql_dsn;
  std::string pg_resource = "pg";
  std::string mysql_resource = "my";
  int64_t accounts = 1000;
  int64_t timeout_ms = 30'000;
  ComparisonOptions comparison;
};

bool Parse(const std::vector<std::string>& args, Settings* settings, bool* help) {
  settings->comparison.scenario = kScenario;
  settings->comparison.unit = "transfers/s";
  settings->comparison.target_ratio = 0.9;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& option = args[i];
    if (option == "--help" || option == "-h") {
      *help = true;
      return true;
    }
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "txc-bench %s: unknown option or missing value: %s\n", kScenario,
                   option.c_str());
      return false;
    }
    const std::string& value = args[++i];
    double number = 0;
    if (option == "--url") {
      settings->url = value;
    } else if (option == "--pg") {
      settings->pg_dsn = value;
    } else if (option == "--mysql") {
      settings->mysql_dsn = value;
    } else if (option == "--pg-resource") {
      settings->pg_resource = value;
    } else if (option == "--mysql-resource") {
      settings->mysql_resource = value;
    } else if (option == "--accounts") {
      if (!ParseNumber(kScenario, option, value, 2, 10'000'000, &number)) return false;
      settings->accounts = static_cast<int64_t>(number);
    } else if (const auto shared = ParseComparisonOption(
                   kScenario, option, value, &settings->comparison, &settings->timeout_ms);
               shared != OptionParse::kNotMine) {
      if (shared == OptionParse::kError) return false;
    } else {
      std::fprintf(stderr, "txc-bench %s: unknown option %s\n", kScenario, option.c_str());
      return false;
    }
  }
  const char* missing = settings->url.empty()         ? "--url URL (txcoord's address)"
                        : settings->pg_dsn.empty()    ? "--pg DSN (PostgreSQL, TXC_TEST_PG_DSN)"
                        : settings->mysql_dsn.empty() ? "--mysql DSN (MariaDB, TXC_TEST_MYSQL_DSN)"
                                                      : nullptr;
  if (missing != nullptr) {
    std::fprintf(stderr, "txc-bench %s: %s is required; see txc-bench %s --help\n", kScenario,
                 missing, kScenario);
    return false;
  }
  return true;
}

// ---- the accounts ---------------------------------------------------------------------------

// Rolls back prepared branches a crashed earlier baseline left behind (node `bench-client`); they
// would hold their row locks and keep the table from being dropped. Returns how many.
int RollBackBaselineLeftovers(pqxx::connection& pg, sql::Connection& my) {
  int rolled_back = 0;
  const std::string prefix = std::string(db::kXidPrefix) + ":" + kBaselineNode + ":";
  std::vector<std::string> pg_xids;
  {
    pqxx::nontransaction tx(pg);
    for (const pqxx::row& row :
         tx.exec_params("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
                        "AND starts_with(gid, $1)",
                        prefix)) {
      pg_xids.push_back(row[0].as<std::string>());
    }
    for (const std::string& xid : pg_xids) {
      tx.exec("ROLLBACK PREPARED " + db::PostgresStringLiteral(xid));
      ++rolled_back;
    }
  }
  std::vector<db::MysqlXid> my_xids;
  {
    std::unique_ptr<sql::Statement> statement(my.createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("XA RECOVER"));
    while (rows->next()) {
      auto xid = db::MysqlXidFromRecoverRow(rows->getInt64(1), rows->getInt64(2), rows->getInt64(3),
                                            rows->getString(4).asStdString());
      if (xid && xid->format_id == db::kMysqlFormatId &&
          xid->bqual.starts_with(std::string(kBaselineNode) + ":")) {
        my_xids.push_back(*xid);
      }
    }
  }
  for (const db::MysqlXid& xid : my_xids) {
    MysqlExecute(my, "XA ROLLBACK " + db::MysqlXidSql(xid));
    ++rolled_back;
  }
  return rolled_back;
}

// (Re)creates the accounts table on both databases: ids 1..accounts, kInitialBalance each.
void CreateAccounts(pqxx::connection& pg, sql::Connection& my, int64_t accounts) {
  {
    pqxx::nontransaction tx(pg);
    tx.exec("SET lock_timeout = '10s'");
    tx.exec(std::string("DROP TABLE IF EXISTS ") + kTable);
    tx.exec(std::string("CREATE TABLE ") + kTable +
            " (id integer PRIMARY KEY, balance bigint NOT NULL)");
    tx.exec_params(
        std::string("INSERT INTO ") + kTable + " SELECT g, $1 FROM generate_series(1, $2) AS g",
        kInitialBalance, accounts);
    tx.exec(std::string("VACUUM ANALYZE ") + kTable);
    tx.exec("RESET lock_timeout");
  }
  MysqlExecute(my, "SET SESSION lock_wait_timeout = 10");
  MysqlExecute(my, std::string("DROP TABLE IF EXISTS ") + kTable);
  MysqlExecute(my, std::string("CREATE TABLE ") + kTable +
                       " (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB");
  constexpr int64_t kRowsPerInsert = 1000;
  for (int64_t first = 1; first <= accounts; first += kRowsPerInsert) {
    std::string insert = std::string("INSERT INTO ") + kTable + " (id, balance) VALUES ";
    for (int64_t id = first; id < first + kRowsPerInsert && id <= accounts; ++id) {
      if (id != first) insert += ",";
      insert += "(" + std::to_string(id) + "," + std::to_string(kInitialBalance) + ")";
    }
    MysqlExecute(my, insert);
  }
  MysqlExecute(my, std::string("ANALYZE TABLE ") + kTable);
}

struct Balances {
  int64_t pg = 0;
  int64_t my = 0;
};

Balances ReadBalances(pqxx::connection& pg, sql::Connection& my) {
  Balances balances;
  {
    pqxx::nontransaction tx(pg);
    balances.pg =
        tx.exec(std::string("SELECT coalesce(sum(balance), 0) FROM ") + kTable)[0][0].as<int64_t>();
  }
  std::unique_ptr<sql::Statement> statement(my.createStatement());
  std::unique_ptr<sql::ResultSet> rows(
      statement->executeQuery(std::string("SELECT coalesce(sum(balance), 0) FROM ") + kTable));
  rows->next();
  balances.my = rows->getInt64(1);
  return balances;
}

// Prepared branches of this run's gids (baseline and txcoord alike) still waiting.
Balances CountPreparedOfRun(pqxx::connection& pg, sql::Connection& my, const std::string& prefix) {
  Balances counts;
  {
    pqxx::nontransaction tx(pg);
    // txc:<node>:<gid>:<b> with the gid starting "<prefix>-".
    counts.pg = tx.exec_params(
                      "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() "
                      "AND starts_with(gid, 'txc:') AND strpos(gid, $1) > 0",
                      ":" + prefix + "-")[0][0]
                    .as<int64_t>();
  }
  std::unique_ptr<sql::Statement> statement(my.createStatement());
  std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("XA RECOVER"));
  const std::string gtrid_prefix = std::string(db::kXidPrefix) + ":" + prefix + "-";
  while (rows->next()) {
    auto xid = db::MysqlXidFromRecoverRow(rows->getInt64(1), rows->getInt64(2), rows->getInt64(3),
                                          rows->getString(4).asStdString());
    if (xid && xid->gtrid.starts_with(gtrid_prefix)) ++counts.my;
  }
  return counts;
}

// ---- the two sides --------------------------------------------------------------------------

struct Shared {
  Settings settings;
  participants::mysql::MysqlDsn mysql;
  HttpEndpoint txcoord;
  std::string prefix;
  std::atomic<uint64_t> committed{0};  // transfers known committed on both databases
};

// The baseline: the client is its own coordinator, with one PostgreSQL and one MariaDB session
// and no decision log (nothing would survive a crash of this client: that is what txcoord adds).
// BEGIN + UPDATE + PREPARE TRANSACTION; XA START + UPDATE + XA END + XA PREPARE; then
// COMMIT PREPARED and XA COMMIT on the session that prepared (the MariaDB trap).
class ClientSideWorker final : public LoadWorker {
 public:
  ClientSideWorker(Shared& shared, const std::string& tag, int index)
      : shared_(shared),
        accounts_(index, shared.settings.accounts),
        gid_base_(PhaseGidBase(shared.prefix, tag, index)) {
    Connect();
  }

  bool RunOnce(std::string* error) override {
    const std::string gid = gid_base_ + std::to_string(++n_);
    const std::string pg_xid =
        db::PostgresStringLiteral(db::PostgresXid(kBaselineNode, gid, 0).value());
    const std::string my_xid = db::MysqlXidSql(db::MakeMysqlXid(kBaselineNode, gid, 1).value());
    Progress progress;
    try {
      pqxx::nontransaction tx(*pg_);
      tx.exec("BEGIN");
      progress.pg = Stage::kActive;
      tx.exec_params(kPgDebit, kAmount, accounts_.Next());
      tx.exec("PREPARE TRANSACTION " + pg_xid);
      progress.pg = Stage::kPrepared;

      MysqlExecute(*my_, "XA START " + my_xid);
      progress.my = Stage::kActive;
      credit_->setInt64(1, kAmount);
      credit_->setInt64(2, accounts_.Next());
      credit_->executeUpdate();
      MysqlExecute(*my_, "XA END " + my_xid);
      progress.my = Stage::kIdle;
      MysqlExecute(*my_, "XA PREPARE " + my_xid);
      progress.my = Stage::kPrepared;

      progress.commit = true;  // both voted yes: the decision
      tx.exec("COMMIT PREPARED " + pg_xid);
      progress.pg = Stage::kCommitted;
      MysqlExecute(*my_, "XA COMMIT " + my_xid);
      progress.my = Stage::kCommitted;
      ++shared_.committed;
      return true;
    } catch (const std::exception& e) {
      *error = DescribeException(e);
    }
    Finish(progress, pg_xid, my_xid);
    return false;
  }

 private:
  enum class Stage { kNone, kActive, kIdle, kPrepared, kCommitted };
  struct Progress {
    Stage pg = Stage::kNone;
    Stage my = Stage::kNone;
    bool commit = false;
  };

  void Connect() {
    pg_ = std::make_unique<pqxx::connection>(WithConnectTimeout(shared_.settings.pg_dsn));
    {
      pqxx::nontransaction tx(*pg_);
      tx.exec("SET statement_timeout = " + std::to_string(shared_.settings.timeout_ms));
    }
    credit_.reset();
    my_ = ConnectMysql(shared_.mysql);
    MysqlExecute(*my_, "SET SESSION innodb_lock_wait_timeout = " +
                           std::to_string((shared_.settings.timeout_ms + 999) / 1000));
    // Prepared once per session, as a client that runs the same statement all day would.
    credit_.reset(my_->prepareStatement(kMysqlCredit));
  }

  // After a failure: carry out the decision (commit once both prepared, else roll back) on
  // whatever was begun; a session that cannot be cleaned up is replaced. Whatever stays
  // prepared shows in the check at the end.
  void Finish(const Progress& progress, const std::string& pg_xid, const std::string& my_xid) {
    bool pg_done = progress.pg == Stage::kNone || progress.pg == Stage::kCommitted;
    bool my_done = progress.my == Stage::kNone || progress.my == Stage::kCommitted;
    try {
      pqxx::nontransaction tx(*pg_);
      if (progress.pg == Stage::kActive) tx.exec("ROLLBACK");
      if (progress.pg == Stage::kPrepared) {
        tx.exec((progress.commit ? "COMMIT PREPARED " : "ROLLBACK PREPARED ") + pg_xid);
      }
      pg_done = true;
    } catch (const std::exception&) {
    }
    try {
      if (progress.my == Stage::kActive) {
        try {
          MysqlExecute(*my_, "XA END " + my_xid);
        } catch (const sql::SQLException&) {  // XA ROLLBACK decides either way
        }
      }
      if (progress.my == Stage::kActive || progress.my == Stage::kIdle) {
        MysqlExecute(*my_, "XA ROLLBACK " + my_xid);
      }
      if (progress.my == Stage::kPrepared) {
        MysqlExecute(*my_, (progress.commit ? "XA COMMIT " : "XA ROLLBACK ") + my_xid);
      }
      my_done = true;
    } catch (const std::exception&) {
    }
    if (progress.commit && pg_done && my_done) ++shared_.committed;
    if (!pg_done || !my_done) {
      try {
        Connect();
      } catch (const std::exception&) {  // the next operation fails and says why
      }
    }
  }

  Shared& shared_;
  MysqlThread mysql_thread_;  // before the MariaDB session, which it outlives
  AccountPicker accounts_;
  std::string gid_base_;
  uint64_t n_ = 0;
  std::unique_ptr<pqxx::connection> pg_;
  std::unique_ptr<sql::Connection> my_;
  std::unique_ptr<sql::PreparedStatement> credit_;
};

// Through txcoord: one POST /v1/transactions (2pc, wait true) per transfer, on a keep-alive
// connection.
class CoordinatorWorker final : public LoadWorker {
 public:
  CoordinatorWorker(Shared& shared, const std::string& tag, int index)
      : shared_(shared),
        client_(shared.txcoord, std::chrono::milliseconds(shared.settings.timeout_ms)),
        accounts_(index, shared.settings.accounts),
        gid_base_(PhaseGidBase(shared.prefix, tag, index)),
        timeout_(std::to_string(shared.settings.timeout_ms)) {}

  bool RunOnce(std::string* error) override {
    const std::string gid = gid_base_ + std::to_string(++n_);
    const std::string body =
        "{\"gid\":\"" + gid + "\",\"protocol\":\"2pc\",\"wait\":true,\"timeout_ms\":" + timeout_ +
        ",\"branches\":[{\"name\":\"debit\",\"resource\":\"" + shared_.settings.pg_resource +
        "\",\"sql\":[{\"text\":\"" + kPgDebit + "\",\"params\":[" + std::to_string(kAmount) + "," +
        std::to_string(accounts_.Next()) + "]}]},{\"name\":\"credit\",\"resource\":\"" +
        shared_.settings.mysql_resource + "\",\"sql\":[{\"text\":\"" + kMysqlCredit +
        "\",\"params\":[" + std::to_string(kAmount) + "," + std::to_string(accounts_.Next()) +
        "]}]}]}";
    if (!SubmitExpectingCommit(client_, body, "transfer " + gid, error)) return false;
    ++shared_.committed;
    return true;
  }

 private:
  Shared& shared_;
  KeepAliveClient client_;
  AccountPicker accounts_;
  std::string gid_base_;
  std::string timeout_;
  uint64_t n_ = 0;
};

std::string Money(int64_t value) { return Thousands(static_cast<double>(value)); }

}  // namespace

const char* TwoPhaseDbUsage() {
  return "  2pc-db    cross-database transfers (debit a random PostgreSQL account, credit a\n"
         "        random MariaDB account) through txcoord (POST /v1/transactions, protocol 2pc,\n"
         "        wait true, database branches on the resources txcoord's configuration names\n"
         "        pg and my), beside a baseline running the same statements as client-side\n"
         "        2PC/XA with no coordinator, same concurrency, alternately over several\n"
         "        rounds; medians and the ratio; then checks that the money is unchanged and\n"
         "        nothing is left prepared. (Re)creates table txc_bench_accounts on both.\n"
         "        Options: --url URL (txcoord), --pg DSN, --mysql DSN (all three required;\n"
         "        mysql://user:pw@host:port/db), --seconds N (per side and round, default 10),\n"
         "        --concurrency N (client threads, default 8), --accounts N (per database,\n"
         "        default 1000), --rounds N (default 3), --warmup S (seconds per side, default\n"
         "        1), --timeout-ms N (per transfer, default 30000), --pg-resource NAME,\n"
         "        --mysql-resource NAME (txcoord's resource names, default pg and my),\n"
         "        --only baseline|txcoord (run one side only, e.g. under a profiler)\n";
}

int RunTwoPhaseDbBench(const std::vector<std::string>& args) {
  auto shared = std::make_unique<Shared>();
  bool help = false;
  if (!Parse(args, &shared->settings, &help)) return 2;
  if (help) {
    std::printf("usage: txc-bench 2pc-db --url URL --pg DSN --mysql DSN [options]\n%s",
                TwoPhaseDbUsage());
    return 0;
  }
  const Settings& settings = shared->settings;
  auto txcoord = ParseHttpUrl(settings.url);
  if (!txcoord.ok()) {
    std::fprintf(stderr, "txc-bench %s: --url: %s\n", kScenario,
                 txcoord.status().message().c_str());
    return 2;
  }
  shared->txcoord = *txcoord;
  auto mysql_dsn = participants::mysql::ParseMysqlDsn(settings.mysql_dsn);
  if (!mysql_dsn.ok()) {
    std::fprintf(stderr, "txc-bench %s: --mysql: %s\n", kScenario,
                 mysql_dsn.status().message().c_str());
    return 2;
  }
  shared->mysql = *mysql_dsn;
  shared->prefix = RunGidPrefix();
  if (!CheckCoordinatorReady(kScenario, shared->txcoord)) return 1;

  // The main thread's own sessions: set-up and the checks.
  std::unique_ptr<pqxx::connection> pg;
  try {
    pg = std::make_unique<pqxx::connection>(WithConnectTimeout(settings.pg_dsn));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "txc-bench %s: cannot connect to PostgreSQL (--pg): %s\n", kScenario,
                 DescribeException(e).c_str());
    return 1;
  }
  std::unique_ptr<sql::Connection> my;
  try {
    my = ConnectMysql(shared->mysql);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "txc-bench %s: cannot connect to MariaDB at %s (--mysql): %s\n", kScenario,
                 shared->mysql.Redacted().c_str(), DescribeException(e).c_str());
    return 1;
  }
  try {
    const int leftovers = RollBackBaselineLeftovers(*pg, *my);
    if (leftovers > 0) {
      std::printf("set-up   rolled back %d prepared branches an earlier baseline left behind\n",
                  leftovers);
    }
    CreateAccounts(*pg, *my, settings.accounts);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "txc-bench %s: cannot create %s (a prepared transaction of an earlier run may "
                 "hold it: see pg_prepared_xacts / XA RECOVER): %s\n",
                 kScenario, kTable, DescribeException(e).c_str());
    return 1;
  }
  const int64_t total_before = 2 * settings.accounts * kInitialBalance;

  const ComparisonOptions& options = settings.comparison;
  std::printf(
      "txc-bench %s: %d rounds x %.1f s per side, concurrency %d, %s accounts per database, "
      "txcoord %s (resources %s, %s), gids %s-*\n",
      kScenario, options.rounds, options.seconds, options.concurrency,
      Thousands(static_cast<double>(settings.accounts)).c_str(), shared->txcoord.ToString().c_str(),
      settings.pg_resource.c_str(), settings.mysql_resource.c_str(), shared->prefix.c_str());
  std::fflush(stdout);

  Shared& s = *shared;
  ComparisonSide baseline{
      "baseline", "client-side 2PC/XA, no coordinator", [&s](const std::string& tag) {
        return [&s, tag](int index, std::string* error) -> std::unique_ptr<LoadWorker> {
          try {
            return std::make_unique<ClientSideWorker>(s, tag, index);
          } catch (const std::exception& e) {
            *error = "cannot open the worker's sessions: " + DescribeException(e);
            return nullptr;
          }
        };
      }};
  ComparisonSide coordinated{
      "txcoord", "POST /v1/transactions 2pc, wait", [&s](const std::string& tag) {
        return [&s, tag](int index, std::string*) -> std::unique_ptr<LoadWorker> {
          return std::make_unique<CoordinatorWorker>(s, tag, index);
        };
      }};

  const double planned = (options.warmup_seconds + options.seconds * options.rounds) * 2;
  Watchdog watchdog(kScenario,
                    planned + 120 + 2.0 * static_cast<double>(settings.timeout_ms) / 1000);
  SideFigures baseline_figures, txcoord_figures;
  const bool ran =
      RunComparison(options, baseline, coordinated, &baseline_figures, &txcoord_figures);
  if (ran) PrintComparison(options, baseline, coordinated, baseline_figures, txcoord_figures);

  // The checks, also after a failed run: whatever committed must have moved money, not made or
  // lost it. txcoord may still be finishing a transfer whose client gave up: give it a moment.
  try {
    Balances prepared = CountPreparedOfRun(*pg, *my, shared->prefix);
    for (int i = 0; i < 50 && prepared.pg + prepared.my > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      prepared = CountPreparedOfRun(*pg, *my, shared->prefix);
    }
    const Balances after = ReadBalances(*pg, *my);
    const int64_t total_after = after.pg + after.my;
    const int64_t moved = settings.accounts * kInitialBalance - after.pg;
    const uint64_t committed = shared->committed.load();
    const bool money_ok = total_after == total_before;
    const bool prepared_ok = prepared.pg == 0 && prepared.my == 0;
    std::printf("check    money before %s, after %s (PostgreSQL %s + MariaDB %s): %s\n",
                Money(total_before).c_str(), Money(total_after).c_str(), Money(after.pg).c_str(),
                Money(after.my).c_str(), money_ok ? "unchanged" : "CHANGED");
    std::printf("check    moved %s = %s transfers counted committed (warm-ups included)%s\n",
                Money(moved).c_str(), Thousands(static_cast<double>(committed)).c_str(),
                moved == static_cast<int64_t>(committed * kAmount)
                    ? ""
                    : ": differs (transfers whose outcome the client never learned)");
    std::printf("check    prepared transactions left: PostgreSQL %s, MariaDB %s: %s\n",
                Money(prepared.pg).c_str(), Money(prepared.my).c_str(),
                prepared_ok ? "none" : "LEFT BEHIND");
    std::printf("check    %s\n", money_ok && prepared_ok ? "OK" : "FAILED");
    std::fflush(stdout);
    if (!money_ok || !prepared_ok) return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "txc-bench %s: the check after the run failed: %s\n", kScenario,
                 DescribeException(e).c_str());
    return 1;
  }
  return ran ? 0 : 1;
}

}  // namespace txc::bench
