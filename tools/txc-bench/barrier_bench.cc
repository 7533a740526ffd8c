#include "tools/txc-bench/barrier_bench.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "participants/mysql/mysql_dsn.h"
#include "tcc/barrier/barrier.h"
#include "tcc/barrier/mysql_barrier.h"
#include "tcc/barrier/postgres_barrier.h"
#include "tools/txc-bench/bench_db.h"
#include "tools/txc-bench/comparison.h"
#include "tools/txc-bench/latency.h"

namespace txc::bench {
namespace {

constexpr const char* kScenario = "barrier";
constexpr const char* kTable = "txc_bench_barrier_accounts";
// The branch of every barrier key the bench enters: how it tells its own rows in txc_barrier
// from those of the services or tests that share the database.
constexpr const char* kBranch = "txc-bench";
constexpr const char* kPgCredit =
    "UPDATE txc_bench_barrier_accounts SET balance = balance + 1 WHERE id = $1";
constexpr const char* kMysqlCredit =
    "UPDATE txc_bench_barrier_accounts SET balance = balance + 1 WHERE id = ?";

struct Settings {
  std::string pg_dsn;
  std::string mysql_dsn;
  std::string only;  // "pg" or "mysql": that database only; empty: both
  int64_t accounts = 1000;
  int64_t timeout_ms = 30'000;
  ComparisonOptions comparison;
};

bool Parse(const std::vector<std::string>& args, Settings* settings, bool* help) {
  settings->comparison.scenario = kScenario;
  settings->comparison.unit = "tx/s";
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
    if (option == "--pg") {
      settings->pg_dsn = value;
    } else if (option == "--mysql") {
      settings->mysql_dsn = value;
    } else if (option == "--only") {  // not the comparisons' --only (baseline|txcoord)
      if (value != "pg" && value != "mysql") {
        std::fprintf(stderr, "txc-bench %s: --only must be pg or mysql\n", kScenario);
        return false;
      }
      settings->only = value;
    } else if (option == "--accounts") {
      if (!ParseNumber(kScenario, option, value, 1, 10'000'000, &number)) return false;
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
  const bool need_pg = settings->only != "mysql";
  const bool need_mysql = settings->only != "pg";
  const char* missing =
      need_pg && settings->pg_dsn.empty()         ? "--pg DSN (PostgreSQL, TXC_TEST_PG_DSN)"
      : need_mysql && settings->mysql_dsn.empty() ? "--mysql DSN (MariaDB, TXC_TEST_MYSQL_DSN)"
                                                  : nullptr;
  if (missing != nullptr) {
    std::fprintf(stderr, "txc-bench %s: %s is required (or --only); see txc-bench %s --help\n",
                 kScenario, missing, kScenario);
    return false;
  }
  return true;
}

// What one database's check reads after its run.
struct Totals {
  int64_t balance = 0;       // the accounts' sum: +1 per committed transaction, either side
  int64_t barrier_rows = 0;  // this run's rows in txc_barrier: 1 per committed barrier entry
};

// Counted by the workers of one database, warm-ups included.
struct Counters {
  std::atomic<uint64_t> committed{0};
  std::atomic<uint64_t> with_barrier{0};
};

struct Shared {
  Settings settings;
  participants::mysql::MysqlDsn mysql;
  std::string prefix;
  Counters pg;
  Counters my;
};

// The key of one handler call: a gid the barrier has never seen, the bench's branch, try.
barrier::BarrierKey FreshKey(const std::string& gid_base, uint64_t n) {
  return barrier::BarrierKey{gid_base + std::to_string(n), kBranch, barrier::BarrierOp::kTry};
}

// A fresh key must be let through; anything else fails the operation.
bool CheckVerdict(const Result<barrier::Verdict>& verdict, std::string* error) {
  if (!verdict.ok()) {
    *error = verdict.status().ToString();
    return false;
  }
  if (*verdict != barrier::Verdict::kRun) {
    *error = std::string("barrier verdict ") + barrier::VerdictName(*verdict) + " for a fresh key";
    return false;
  }
  return true;
}

// ---- PostgreSQL -----------------------------------------------------------------------------

// (Re)creates the accounts (ids 1..accounts, balance 0), the barrier table if missing, and
// deletes the bench's barrier rows of earlier runs. Returns how many it deleted.
int64_t SetUpPostgres(pqxx::connection& pg, int64_t accounts) {
  {
    pqxx::nontransaction tx(pg);
    tx.exec("SET lock_timeout = '10s'");
    tx.exec(std::string("DROP TABLE IF EXISTS ") + kTable);
    tx.exec(std::string("CREATE TABLE ") + kTable +
            " (id integer PRIMARY KEY, balance bigint NOT NULL)");
    tx.exec_params(
        std::string("INSERT INTO ") + kTable + " SELECT g, 0 FROM generate_series(1, $1) AS g",
        accounts);
    tx.exec(std::string("VACUUM ANALYZE ") + kTable);
    tx.exec("RESET lock_timeout");
  }
  if (const Status created = barrier::EnsurePostgresBarrierTable(pg); !created.ok()) {
    throw std::runtime_error(created.ToString());
  }
  pqxx::nontransaction tx(pg);
  const int64_t deleted =
      tx.exec_params("DELETE FROM txc_barrier WHERE branch = $1", kBranch).affected_rows();
  tx.exec("VACUUM ANALYZE txc_barrier");
  return deleted;
}

Totals ReadPostgresTotals(pqxx::connection& pg, const std::string& prefix) {
  pqxx::nontransaction tx(pg);
  Totals totals;
  totals.balance =
      tx.exec(std::string("SELECT coalesce(sum(balance), 0) FROM ") + kTable)[0][0].as<int64_t>();
  totals.barrier_rows =
      tx.exec_params("SELECT count(*) FROM txc_barrier WHERE branch = $1 AND starts_with(gid, $2)",
                     kBranch, prefix + "-")[0][0]
          .as<int64_t>();
  return totals;
}

// One handler call per operation: pqxx::work (BEGIN ... COMMIT, READ COMMITTED), with the
// barrier EnterPostgres first, then the UPDATE (prepared once per session, as a service would).
class PostgresWorker final : public LoadWorker {
 public:
  PostgresWorker(Shared& shared, bool barrier, int index, std::string gid_base)
      : shared_(shared),
        barrier_(barrier),
        accounts_(index, shared.settings.accounts),
        gid_base_(std::move(gid_base)) {
    Connect();
  }

  bool RunOnce(std::string* error) override {
    try {
      pqxx::work txn(*connection_);
      if (barrier_ &&
          !CheckVerdict(barrier::EnterPostgres(txn, FreshKey(gid_base_, ++n_)), error)) {
        return false;  // txn's destructor rolls back
      }
      txn.exec_prepared("credit", accounts_.Next());
      txn.commit();
    } catch (const std::exception& e) {
      *error = DescribeException(e);
      if (!connection_->is_open()) Reconnect();
      return false;
    }
    ++shared_.pg.committed;
    if (barrier_) ++shared_.pg.with_barrier;
    return true;
  }

 private:
  void Connect() {
    connection_ = std::make_unique<pqxx::connection>(WithConnectTimeout(shared_.settings.pg_dsn));
    {
      pqxx::nontransaction tx(*connection_);
      tx.exec("SET statement_timeout = " + std::to_string(shared_.settings.timeout_ms));
    }
    connection_->prepare("credit", kPgCredit);
  }

  void Reconnect() {
    try {
      Connect();
    } catch (const std::exception&) {  // the next operation fails and says why
    }
  }

  Shared& shared_;
  bool barrier_;
  AccountPicker accounts_;
  std::string gid_base_;
  uint64_t n_ = 0;
  std::unique_ptr<pqxx::connection> connection_;
};

// ---- MariaDB / MySQL ------------------------------------------------------------------------

int64_t SetUpMysql(sql::Connection& my, int64_t accounts) {
  MysqlExecute(my, "SET SESSION lock_wait_timeout = 10");
  MysqlExecute(my, std::string("DROP TABLE IF EXISTS ") + kTable);
  MysqlExecute(my, std::string("CREATE TABLE ") + kTable +
                       " (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB");
  constexpr int64_t kRowsPerInsert = 1000;
  for (int64_t first = 1; first <= accounts; first += kRowsPerInsert) {
    std::string insert = std::string("INSERT INTO ") + kTable + " (id, balance) VALUES ";
    for (int64_t id = first; id < first + kRowsPerInsert && id <= accounts; ++id) {
      if (id != first) insert += ",";
      insert += "(" + std::to_string(id) + ",0)";
    }
    MysqlExecute(my, insert);
  }
  MysqlExecute(my, std::string("ANALYZE TABLE ") + kTable);
  if (const Status created = barrier::EnsureMysqlBarrierTable(my); !created.ok()) {
    throw std::runtime_error(created.ToString());
  }
  std::unique_ptr<sql::PreparedStatement> clean(
      my.prepareStatement("DELETE FROM txc_barrier WHERE branch = ?"));
  clean->setString(1, kBranch);
  return clean->executeUpdate();
}

Totals ReadMysqlTotals(sql::Connection& my, const std::string& prefix) {
  Totals totals;
  {
    std::unique_ptr<sql::Statement> statement(my.createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery(std::string("SELECT coalesce(sum(balance), 0) FROM ") + kTable));
    rows->next();
    totals.balance = rows->getInt64(1);
  }
  std::unique_ptr<sql::PreparedStatement> count(
      my.prepareStatement("SELECT count(*) FROM txc_barrier WHERE branch = ? AND gid LIKE ?"));
  count->setString(1, kBranch);
  count->setString(2, prefix + "-%");  // the prefix is [a-z0-9]: nothing to escape
  std::unique_ptr<sql::ResultSet> rows(count->executeQuery());
  rows->next();
  totals.barrier_rows = rows->getInt64(1);
  return totals;
}

// One handler call per operation, as mysql_barrier.h has it: autocommit off (the transaction
// begins with its first statement), with the barrier EnterMysql first, then the UPDATE (prepared
// once per session), commit.
class MysqlWorker final : public LoadWorker {
 public:
  MysqlWorker(Shared& shared, bool barrier, int index, std::string gid_base)
      : shared_(shared),
        barrier_(barrier),
        accounts_(index, shared.settings.accounts),
        gid_base_(std::move(gid_base)) {
    Connect();
  }

  bool RunOnce(std::string* error) override {
    try {
      if (barrier_ &&
          !CheckVerdict(barrier::EnterMysql(*connection_, FreshKey(gid_base_, ++n_)), error)) {
        Rollback();
        return false;
      }
      credit_->setInt64(1, accounts_.Next());
      credit_->executeUpdate();
      connection_->commit();
    } catch (const std::exception& e) {
      *error = DescribeException(e);
      Rollback();
      return false;
    }
    ++shared_.my.committed;
    if (barrier_) ++shared_.my.with_barrier;
    return true;
  }

 private:
  void Connect() {
    credit_.reset();
    connection_ = ConnectMysql(shared_.mysql);
    MysqlExecute(*connection_, "SET SESSION innodb_lock_wait_timeout = " +
                                   std::to_string((shared_.settings.timeout_ms + 999) / 1000));
    connection_->setAutoCommit(false);
    credit_.reset(connection_->prepareStatement(kMysqlCredit));
  }

  // After a failure: a session that cannot even roll back is replaced.
  void Rollback() {
    try {
      connection_->rollback();
    } catch (const std::exception&) {
      try {
        Connect();
      } catch (const std::exception&) {  // the next operation fails and says why
      }
    }
  }

  Shared& shared_;
  MysqlThread mysql_thread_;  // before the session, which it outlives
  bool barrier_;
  AccountPicker accounts_;
  std::string gid_base_;
  uint64_t n_ = 0;
  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::PreparedStatement> credit_;
};

// ---- the run --------------------------------------------------------------------------------

// One database's comparison: its two sides and what its check reads.
struct Database {
  const char* name;  // "PostgreSQL"
  ComparisonSide without;
  ComparisonSide with;
  std::function<Totals()> read_totals;  // on the main thread's session
  Counters* counters;
};

// The medians of one database's run, for the summary.
struct Outcome {
  const char* name;
  SideFigures without;
  SideFigures with;
};

// A side whose workers are Workers (PostgresWorker, MysqlWorker), with or without the barrier;
// a worker's constructor opens its session and throws when it cannot.
template <typename Worker>
ComparisonSide Side(Shared& shared, const char* name, const char* description, bool barrier,
                    const char* database) {
  return ComparisonSide{name, description, [&shared, barrier, database](const std::string& tag) {
                          return [&shared, barrier, database, tag](
                                     int index, std::string* error) -> std::unique_ptr<LoadWorker> {
                            try {
                              return std::make_unique<Worker>(
                                  shared, barrier, index, PhaseGidBase(shared.prefix, tag, index));
                            } catch (const std::exception& e) {
                              *error = std::string("cannot open a ") + database +
                                       " session: " + DescribeException(e);
                              return nullptr;
                            }
                          };
                        }};
}

bool Check(const Database& database, const std::string& prefix) {
  try {
    const Totals totals = database.read_totals();
    const uint64_t committed = database.counters->committed.load();
    const uint64_t with_barrier = database.counters->with_barrier.load();
    const bool balance_ok = totals.balance == static_cast<int64_t>(committed);
    const bool rows_ok = totals.barrier_rows == static_cast<int64_t>(with_barrier);
    std::printf(
        "check    %s: balances +%s for %s transactions committed; %s barrier rows (gids %s-*) "
        "for %s committed with the barrier: %s\n",
        database.name, Thousands(static_cast<double>(totals.balance)).c_str(),
        Thousands(static_cast<double>(committed)).c_str(),
        Thousands(static_cast<double>(totals.barrier_rows)).c_str(), prefix.c_str(),
        Thousands(static_cast<double>(with_barrier)).c_str(),
        balance_ok && rows_ok ? "OK" : "MISMATCH");
    std::fflush(stdout);
    return balance_ok && rows_ok;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "txc-bench %s: the check of %s failed: %s\n", kScenario, database.name,
                 DescribeException(e).c_str());
    return false;
  }
}

}  // namespace

const char* BarrierUsage() {
  return "  barrier   the participant-side barrier's cost (tcc/barrier), no coordinator: a\n"
         "        handler-like transaction (BEGIN; EnterPostgres / EnterMysql for a fresh (gid,\n"
         "        branch txc-bench, try) key; UPDATE one random account; COMMIT) by concurrent\n"
         "        clients, with and without the barrier, alternately over several rounds, on\n"
         "        PostgreSQL and on MariaDB; medians and the ratio with/without; then checks\n"
         "        the balances and the barrier rows. (Re)creates table\n"
         "        txc_bench_barrier_accounts, creates txc_barrier when missing and deletes the\n"
         "        rows of branch txc-bench from it first.\n"
         "        Options: --pg DSN, --mysql DSN (mysql://user:pw@host:port/db; both required\n"
         "        unless --only), --only pg|mysql, --seconds N (per side and round, default\n"
         "        10), --concurrency N (client threads, default 8), --accounts N (per database,\n"
         "        default 1000), --rounds N (default 3), --warmup S (seconds per side, default\n"
         "        1), --timeout-ms N (statement and lock wait timeout, default 30000)\n";
}

int RunBarrierBench(const std::vector<std::string>& args) {
  auto shared = std::make_unique<Shared>();
  bool help = false;
  if (!Parse(args, &shared->settings, &help)) return 2;
  if (help) {
    std::printf("usage: txc-bench barrier --pg DSN --mysql DSN [options]\n%s", BarrierUsage());
    return 0;
  }
  const Settings& settings = shared->settings;
  const bool use_pg = settings.only != "mysql";
  const bool use_mysql = settings.only != "pg";
  if (use_mysql) {
    auto mysql_dsn = participants::mysql::ParseMysqlDsn(settings.mysql_dsn);
    if (!mysql_dsn.ok()) {
      std::fprintf(stderr, "txc-bench %s: --mysql: %s\n", kScenario,
                   mysql_dsn.status().message().c_str());
      return 2;
    }
    shared->mysql = *mysql_dsn;
  }
  shared->prefix = RunGidPrefix();

  // The main thread's own sessions: set-up and the checks.
  std::unique_ptr<pqxx::connection> pg;
  std::unique_ptr<sql::Connection> my;
  std::string versions;
  if (use_pg) {
    try {
      pg = std::make_unique<pqxx::connection>(WithConnectTimeout(settings.pg_dsn));
      const int64_t deleted = SetUpPostgres(*pg, settings.accounts);
      pqxx::nontransaction tx(*pg);
      versions += "PostgreSQL " + tx.exec("SHOW server_version")[0][0].as<std::string>();
      if (deleted > 0) {
        std::printf("set-up   PostgreSQL: deleted %s barrier rows of earlier runs\n",
                    Thousands(static_cast<double>(deleted)).c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "txc-bench %s: PostgreSQL (--pg): cannot set up: %s\n", kScenario,
                   DescribeException(e).c_str());
      return 1;
    }
  }
  if (use_mysql) {
    InitMysqlDriver();  // on this thread, before any worker's
    try {
      my = ConnectMysql(shared->mysql);
      const int64_t deleted = SetUpMysql(*my, settings.accounts);
      std::unique_ptr<sql::Statement> statement(my->createStatement());
      std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("SELECT VERSION()"));
      rows->next();
      if (!versions.empty()) versions += ", ";
      versions += "MariaDB/MySQL " + std::string(rows->getString(1));
      if (deleted > 0) {
        std::printf("set-up   MariaDB: deleted %s barrier rows of earlier runs\n",
                    Thousands(static_cast<double>(deleted)).c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "txc-bench %s: MariaDB at %s (--mysql): cannot set up: %s\n", kScenario,
                   shared->mysql.Redacted().c_str(), DescribeException(e).c_str());
      return 1;
    }
  }

  const ComparisonOptions& options = settings.comparison;
  std::printf(
      "txc-bench %s: %d rounds x %.1f s per side, concurrency %d, %s accounts per database, %s, "
      "barrier keys (%s-*, %s, try)\n",
      kScenario, options.rounds, options.seconds, options.concurrency,
      Thousands(static_cast<double>(settings.accounts)).c_str(), versions.c_str(),
      shared->prefix.c_str(), kBranch);
  std::fflush(stdout);

  Shared& s = *shared;
  std::vector<Database> databases;
  if (use_pg) {
    databases.push_back(
        Database{"PostgreSQL",
                 Side<PostgresWorker>(s, "without", "PostgreSQL: BEGIN, UPDATE, COMMIT", false,
                                      "PostgreSQL"),
                 Side<PostgresWorker>(s, "with", "PostgreSQL: BEGIN, barrier, UPDATE, COMMIT", true,
                                      "PostgreSQL"),
                 [&] { return ReadPostgresTotals(*pg, s.prefix); }, &s.pg});
  }
  if (use_mysql) {
    databases.push_back(
        Database{"MariaDB",
                 Side<MysqlWorker>(s, "without", "MariaDB: UPDATE, COMMIT (autocommit off)", false,
                                   "MariaDB"),
                 Side<MysqlWorker>(s, "with", "MariaDB: barrier, UPDATE, COMMIT", true, "MariaDB"),
                 [&] { return ReadMysqlTotals(*my, s.prefix); }, &s.my});
  }

  const double planned = (options.warmup_seconds + options.seconds * options.rounds) * 2 *
                         static_cast<double>(databases.size());
  Watchdog watchdog(kScenario,
                    planned + 120 + 2.0 * static_cast<double>(settings.timeout_ms) / 1000);
  bool ok = true;
  std::vector<Outcome> outcomes;
  for (const Database& database : databases) {
    std::printf("%s\n", database.name);
    std::fflush(stdout);
    SideFigures without, with;
    const bool ran = RunComparison(options, database.without, database.with, &without, &with);
    if (ran) {
      PrintComparison(options, database.without, database.with, without, with);
      outcomes.push_back(Outcome{database.name, without, with});
    }
    const bool checked = Check(database, s.prefix);  // also after a failed run
    ok = ok && ran && checked;
  }
  if (outcomes.size() > 1) {
    for (const Outcome& outcome : outcomes) {
      const SideFigures& without = outcome.without;
      const SideFigures& with = outcome.with;
      std::printf(
          "summary  %-10s without %8s %s, with %8s %s: with/without %.2f; p50 %.0f -> %.0f us, "
          "p99 %.0f -> %.0f us\n",
          outcome.name, Thousands(without.per_second).c_str(), options.unit.c_str(),
          Thousands(with.per_second).c_str(), options.unit.c_str(),
          without.per_second > 0 ? with.per_second / without.per_second : 0, without.p50_us,
          with.p50_us, without.p99_us, with.p99_us);
    }
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

}  // namespace txc::bench
