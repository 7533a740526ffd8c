// The participant-side barrier (tcc/barrier) against real servers: PostgreSQL through libpqxx and
// MariaDB through Connector/C++ (scripts/dbs.sh; DSNs in TXC_TEST_PG_DSN, TXC_TEST_MYSQL_DSN).
// Every database test runs on both. A handler here is what a service does: enter the barrier,
// on kRun apply a business effect (add to a counter row), commit, or roll back when the business
// logic fails. The counters, read after the fact, show which calls really ran.
// Gids carry the process id and a start time, so reruns against the same servers never collide.
#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tcc/barrier/barrier.h"
#include "tcc/barrier/barrier_store.h"
#include "tcc/barrier/mysql_barrier.h"
#include "tcc/barrier/postgres_barrier.h"
#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::barrier {
namespace {

using testing::ConnectMysql;
using testing::ConnectPostgres;
using testing::ExecMysql;
using testing::ExecPostgres;
using testing::MysqlDsn;
using testing::ParseMysqlDsn;

constexpr int kRaceRounds = 50;
constexpr std::chrono::microseconds kRaceHold{2000};
constexpr std::chrono::microseconds kRaceDelay{300};
constexpr std::chrono::microseconds kNoDelay{0};
// How long a request that must wait is given to (wrongly) finish on its own.
constexpr std::chrono::milliseconds kMustStillWait{300};

// A gid no other test, process or earlier run uses: prefix, pid, start time, sequence number.
std::string UniqueGid(const std::string& prefix) {
  static const int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
  static std::atomic<int> sequence{0};
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(start_ms) + "-" +
         std::to_string(sequence.fetch_add(1));
}

BarrierKey Key(const std::string& gid, BarrierOp op, const std::string& branch = "b1") {
  return BarrierKey{gid, branch, op};
}

// ---------------------------------------------------------------------------------------------
// Key parsing and names (no server).

TEST(ParseBarrierKeyTest, AcceptsEverySagaAndTccOp) {
  for (const BarrierOp op : {BarrierOp::kAction, BarrierOp::kCompensate, BarrierOp::kTry,
                             BarrierOp::kConfirm, BarrierOp::kCancel}) {
    const Result<BarrierKey> key = ParseBarrierKey("order-1", "pay.B_2", BarrierOpName(op));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->gid, "order-1");
    EXPECT_EQ(key->branch, "pay.B_2");
    EXPECT_EQ(key->op, op);
    EXPECT_TRUE(CheckBarrierKey(*key).ok());
  }
}

TEST(ParseBarrierKeyTest, AcceptsTheLongestValues) {
  const Result<BarrierKey> key =
      ParseBarrierKey(std::string(56, 'g'), std::string(64, 'b'), "confirm");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->gid.size(), 56u);
  EXPECT_EQ(key->branch.size(), 64u);
}

// The error is InvalidArgument and its message starts with the header's name.
void ExpectRejectedNaming(const Result<BarrierKey>& key, const std::string& header) {
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(key.status().message().rfind(header + ": ", 0), 0u) << key.status().message();
}

TEST(ParseBarrierKeyTest, ErrorsNameTheHeader) {
  ExpectRejectedNaming(ParseBarrierKey("", "b", "try"), "Txc-Gid");
  ExpectRejectedNaming(ParseBarrierKey(std::string(57, 'g'), "b", "try"), "Txc-Gid");
  ExpectRejectedNaming(ParseBarrierKey("order 1", "b", "try"), "Txc-Gid");
  ExpectRejectedNaming(ParseBarrierKey("order/1", "b", "try"), "Txc-Gid");
  ExpectRejectedNaming(ParseBarrierKey("g", "", "try"), "Txc-Branch");
  ExpectRejectedNaming(ParseBarrierKey("g", std::string(65, 'b'), "try"), "Txc-Branch");
  ExpectRejectedNaming(ParseBarrierKey("g", "b:1", "try"), "Txc-Branch");
  ExpectRejectedNaming(ParseBarrierKey("g", "b", ""), "Txc-Op");
  ExpectRejectedNaming(ParseBarrierKey("g", "b", "prepare"), "Txc-Op");  // a 2PC op
  ExpectRejectedNaming(ParseBarrierKey("g", "b", "Try"), "Txc-Op");      // case matters
  ExpectRejectedNaming(ParseBarrierKey("g", "b", " try"), "Txc-Op");
}

TEST(ParseBarrierKeyTest, MessagesQuoteTheValueSafely) {
  const Result<BarrierKey> key = ParseBarrierKey(std::string("a\"\n\xff", 4), "b", "try");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find(R"("a\"\x0a\xff")"), std::string::npos)
      << key.status().message();
  const Result<BarrierKey> long_op = ParseBarrierKey("g", "b", std::string(1000, 'x'));
  ASSERT_FALSE(long_op.ok());
  EXPECT_LT(long_op.status().message().size(), 200u) << long_op.status().message();
}

TEST(CheckBarrierKeyTest, RefusesKeysParseWouldRefuse) {
  EXPECT_EQ(CheckBarrierKey(BarrierKey{std::string(57, 'g'), "b", BarrierOp::kTry}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckBarrierKey(BarrierKey{"g", "b c", BarrierOp::kTry}).code(),
            StatusCode::kInvalidArgument);
  const Status bad_op = CheckBarrierKey(BarrierKey{"g", "b", static_cast<BarrierOp>(42)});
  EXPECT_EQ(bad_op.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_op.message().rfind("Txc-Op: ", 0), 0u) << bad_op.message();
}

TEST(NamesTest, OpsAndVerdicts) {
  EXPECT_STREQ(BarrierOpName(BarrierOp::kAction), "action");
  EXPECT_STREQ(BarrierOpName(BarrierOp::kCompensate), "compensate");
  EXPECT_STREQ(BarrierOpName(BarrierOp::kTry), "try");
  EXPECT_STREQ(BarrierOpName(BarrierOp::kConfirm), "confirm");
  EXPECT_STREQ(BarrierOpName(BarrierOp::kCancel), "cancel");
  EXPECT_STREQ(VerdictName(Verdict::kRun), "run");
  EXPECT_STREQ(VerdictName(Verdict::kDuplicate), "duplicate");
  EXPECT_STREQ(VerdictName(Verdict::kEmptyCompensation), "empty_compensation");
  EXPECT_STREQ(VerdictName(Verdict::kRefusedAfterCancel), "refused_after_cancel");
}

// ---------------------------------------------------------------------------------------------
// The decision over a store that answers what real tables cannot easily be made to answer.

class ScriptedStore final : public internal::BarrierStore {
 public:
  explicit ScriptedStore(std::optional<std::string> origin) : origin_(std::move(origin)) {}
  Result<bool> InsertIfAbsent(const BarrierKey&, BarrierOp, BarrierOp) override { return false; }
  Result<std::optional<std::string>> ReadOrigin(const BarrierKey&, BarrierOp) override {
    return origin_;
  }

 private:
  std::optional<std::string> origin_;
};

TEST(BarrierDecisionTest, ARowGoneBetweenInsertAndReadIsARetry) {
  ScriptedStore store(std::nullopt);
  const Result<Verdict> verdict = internal::Enter(store, Key("g", BarrierOp::kAction));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kAborted) << verdict.status().ToString();
}

TEST(BarrierDecisionTest, AnUnknownOriginIsCorruption) {
  ScriptedStore store(std::string("prepare"));
  const Result<Verdict> verdict = internal::Enter(store, Key("g", BarrierOp::kTry));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kCorruption) << verdict.status().ToString();
}

TEST(BarrierDecisionTest, AMalformedKeyNeverReachesTheStore) {
  ScriptedStore store(std::string("action"));
  const Result<Verdict> verdict = internal::Enter(store, Key("", BarrierOp::kAction));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kInvalidArgument);
}

// The library's compiled-in migrations are the files in migrations/, byte for byte.
std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(TXC_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(MigrationTextTest, IsTheMigrationFile) {
  const std::string postgres = ReadSourceFile("migrations/postgres/0001_txc_barrier.sql");
  const std::string mysql = ReadSourceFile("migrations/mysql/0001_txc_barrier.sql");
  ASSERT_FALSE(postgres.empty());
  ASSERT_FALSE(mysql.empty());
  EXPECT_EQ(PostgresBarrierMigration(), postgres);
  EXPECT_EQ(MysqlBarrierMigration(), mysql);
}

// ---------------------------------------------------------------------------------------------
// Both databases behind one interface.

// One connection, and the transaction a handler runs in on it.
class Session {
 public:
  virtual ~Session() = default;
  // Enters the barrier, beginning a transaction if none is open.
  virtual Result<Verdict> Enter(const BarrierKey& key) = 0;
  // The business effect: adds `delta` to the counter row `name` (creating it at 0).
  virtual void Add(const std::string& name, int delta) = 0;
  // Reads the counter table in the open transaction (beginning one if none is open); under
  // REPEATABLE READ (MariaDB's default) this fixes the transaction's snapshot.
  virtual void Read() = 0;
  virtual void Commit() = 0;
  virtual void Rollback() = 0;
};

class Database {
 public:
  virtual ~Database() = default;
  virtual std::unique_ptr<Session> Open() = 0;
  // The committed value of counter `name` (0 when it has no row).
  virtual int64_t Counter(const std::string& name) = 0;
  virtual Status EnsureTable() = 0;
  // Runs `statement` on a connection of its own, outside any transaction.
  virtual void Admin(const std::string& statement) = 0;
  // Worker threads that use the database call these first and last.
  virtual void ThreadStart() {}
  virtual void ThreadEnd() {}
};

class PostgresSession final : public Session {
 public:
  explicit PostgresSession(const std::string& dsn) : connection_(ConnectPostgres(dsn)) {}

  Result<Verdict> Enter(const BarrierKey& key) override { return EnterPostgres(Txn(), key); }
  void Add(const std::string& name, int delta) override {
    Txn().exec_params(
        "INSERT INTO txc_barrier_test_counter (name, value) VALUES ($1, $2) ON CONFLICT (name) "
        "DO UPDATE SET value = txc_barrier_test_counter.value + EXCLUDED.value",
        name, delta);
  }
  void Read() override { Txn().exec("SELECT count(*) FROM txc_barrier_test_counter"); }
  void Commit() override {
    Txn().commit();
    txn_.reset();
  }
  void Rollback() override {
    if (txn_ != nullptr) txn_->abort();
    txn_.reset();
  }
  pqxx::connection& connection() { return *connection_; }

 private:
  pqxx::work& Txn() {
    if (txn_ == nullptr) txn_ = std::make_unique<pqxx::work>(*connection_);
    return *txn_;
  }

  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<pqxx::work> txn_;
};

class PostgresDatabase final : public Database {
 public:
  explicit PostgresDatabase(std::string dsn)
      : dsn_(std::move(dsn)), admin_(ConnectPostgres(dsn_)) {}

  std::unique_ptr<Session> Open() override { return std::make_unique<PostgresSession>(dsn_); }
  int64_t Counter(const std::string& name) override {
    pqxx::work txn(*admin_);
    const pqxx::result rows =
        txn.exec_params("SELECT value FROM txc_barrier_test_counter WHERE name = $1", name);
    return rows.empty() ? 0 : rows[0][0].as<int64_t>();
  }
  Status EnsureTable() override { return EnsurePostgresBarrierTable(*admin_); }
  void Admin(const std::string& statement) override { ExecPostgres(*admin_, statement); }
  const std::string& dsn() const { return dsn_; }

 private:
  std::string dsn_;
  std::unique_ptr<pqxx::connection> admin_;
};

class MysqlSession final : public Session {
 public:
  explicit MysqlSession(const MysqlDsn& dsn) : connection_(ConnectMysql(dsn)) {
    connection_->setAutoCommit(false);
  }

  Result<Verdict> Enter(const BarrierKey& key) override { return EnterMysql(*connection_, key); }
  void Add(const std::string& name, int delta) override {
    const std::unique_ptr<sql::PreparedStatement> add(connection_->prepareStatement(
        "INSERT INTO txc_barrier_test_counter (name, value) VALUES (?, ?) "
        "ON DUPLICATE KEY UPDATE value = value + VALUES(value)"));
    add->setString(1, name);
    add->setInt(2, delta);
    add->executeUpdate();
  }
  void Read() override {
    testing::QueryMysqlString(*connection_, "SELECT COUNT(*) FROM txc_barrier_test_counter");
  }
  void Commit() override { connection_->commit(); }
  void Rollback() override { connection_->rollback(); }
  sql::Connection& connection() { return *connection_; }

 private:
  std::unique_ptr<sql::Connection> connection_;
};

class MysqlDatabase final : public Database {
 public:
  explicit MysqlDatabase(MysqlDsn dsn) : dsn_(std::move(dsn)), admin_(ConnectMysql(dsn_)) {}

  std::unique_ptr<Session> Open() override { return std::make_unique<MysqlSession>(dsn_); }
  int64_t Counter(const std::string& name) override {
    const std::unique_ptr<sql::PreparedStatement> select(
        admin_->prepareStatement("SELECT value FROM txc_barrier_test_counter WHERE name = ?"));
    select->setString(1, name);
    const std::unique_ptr<sql::ResultSet> rows(select->executeQuery());
    return rows->next() ? rows->getInt64(1) : 0;
  }
  Status EnsureTable() override { return EnsureMysqlBarrierTable(*admin_); }
  void Admin(const std::string& statement) override { ExecMysql(*admin_, statement); }
  void ThreadStart() override { sql::mysql::get_mysql_driver_instance()->threadInit(); }
  void ThreadEnd() override { sql::mysql::get_mysql_driver_instance()->threadEnd(); }
  const MysqlDsn& dsn() const { return dsn_; }

 private:
  MysqlDsn dsn_;
  std::unique_ptr<sql::Connection> admin_;  // autocommit on
};

std::unique_ptr<Database> ConnectPostgresDatabase(std::string* error) {
  const std::string dsn = testing::RequireEnv("TXC_TEST_PG_DSN");
  if (dsn.empty()) {
    *error = "TXC_TEST_PG_DSN is not set";
    return nullptr;
  }
  return std::make_unique<PostgresDatabase>(dsn);
}

std::unique_ptr<Database> ConnectMysqlDatabase(std::string* error) {
  const std::string text = testing::RequireEnv("TXC_TEST_MYSQL_DSN");
  if (text.empty()) {
    *error = "TXC_TEST_MYSQL_DSN is not set";
    return nullptr;
  }
  const std::optional<MysqlDsn> dsn = ParseMysqlDsn(text, error);
  if (!dsn.has_value()) {
    *error = "TXC_TEST_MYSQL_DSN: " + *error;
    return nullptr;
  }
  return std::make_unique<MysqlDatabase>(*dsn);
}

// What one handler call did.
struct Call {
  Result<Verdict> verdict;
  bool committed = false;
};

// A handler: enters the barrier for `key`; on kRun adds `delta` to the counter named after the
// key's gid, unless the business logic "fails" (`business_fails`), which rolls everything back.
// Every other verdict commits with no business effect, as barrier.h says a caller does.
// `hold` keeps the transaction open that long after entering, as a slow handler would.
Call Handle(Session& session, const BarrierKey& key, int delta, bool business_fails = false,
            std::chrono::microseconds hold = std::chrono::microseconds(0)) {
  Result<Verdict> verdict = session.Enter(key);
  if (hold.count() > 0) std::this_thread::sleep_for(hold);
  if (!verdict.ok()) {
    session.Rollback();
    return Call{std::move(verdict), false};
  }
  if (*verdict == Verdict::kRun) {
    if (business_fails) {
      session.Rollback();
      return Call{std::move(verdict), false};
    }
    session.Add(key.gid, delta);
  }
  session.Commit();
  return Call{std::move(verdict), true};
}

// "run", or the error: for EXPECT_EQ messages that say what came back.
std::string Describe(const Result<Verdict>& verdict) {
  return verdict.ok() ? VerdictName(*verdict) : verdict.status().ToString();
}

class BarrierTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::string error;
    database_ = std::string(GetParam()) == "postgres" ? ConnectPostgresDatabase(&error)
                                                      : ConnectMysqlDatabase(&error);
    ASSERT_NE(database_, nullptr) << error;
    const Status ensured = database_->EnsureTable();
    ASSERT_TRUE(ensured.ok()) << ensured.ToString();
    database_->Admin(
        "CREATE TABLE IF NOT EXISTS txc_barrier_test_counter "
        "(name VARCHAR(100) PRIMARY KEY, value BIGINT NOT NULL)");
    a_ = database_->Open();
    b_ = database_->Open();
  }

  // One handler call for `key` on `session` (a_ by default); its verdict or error as text.
  std::string Run(const BarrierKey& key, int delta, Session* session = nullptr) {
    return Describe(Handle(session != nullptr ? *session : *a_, key, delta).verdict);
  }

  int64_t Counter(const std::string& gid) { return database_->Counter(gid); }

  std::unique_ptr<Database> database_;
  std::unique_ptr<Session> a_;
  std::unique_ptr<Session> b_;
};

INSTANTIATE_TEST_SUITE_P(Databases, BarrierTest, ::testing::Values("postgres", "mariadb"),
                         [](const auto& param_info) { return std::string(param_info.param); });

TEST_P(BarrierTest, FirstCallRuns) {
  const std::string gid = UniqueGid("first");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "run");
  EXPECT_EQ(Counter(gid), 1);
}

TEST_P(BarrierTest, ADuplicateAfterCommitDoesNotRunAgain) {
  const std::string gid = UniqueGid("dup");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "duplicate");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1, b_.get()), "duplicate");  // another connection
  EXPECT_EQ(Counter(gid), 1);
}

TEST_P(BarrierTest, ARolledBackAttemptRunsAgainOnRetry) {
  const std::string gid = UniqueGid("retry");
  // The business logic failed: the handler rolled back, barrier row included.
  const Call failed = Handle(*a_, Key(gid, BarrierOp::kTry), 1, /*business_fails=*/true);
  EXPECT_EQ(Describe(failed.verdict), "run");
  EXPECT_FALSE(failed.committed);
  EXPECT_EQ(Counter(gid), 0);
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "duplicate");
  EXPECT_EQ(Counter(gid), 1);
}

TEST_P(BarrierTest, CompensateWithoutActionIsEmptyAndRefusesTheLateAction) {
  const std::string gid = UniqueGid("empty-saga");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate), -1), "empty_compensation");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "refused_after_cancel");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate), -1), "duplicate");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1, b_.get()), "refused_after_cancel");
  EXPECT_EQ(Counter(gid), 0);
}

TEST_P(BarrierTest, CancelWithoutTryIsEmptyAndRefusesTheLateTry) {
  const std::string gid = UniqueGid("empty-tcc");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel), -1), "empty_compensation");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "refused_after_cancel");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel), -1), "duplicate");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "refused_after_cancel");
  EXPECT_EQ(Counter(gid), 0);
}

TEST_P(BarrierTest, ARolledBackEmptyCompensationLeavesNoBlock) {
  const std::string gid = UniqueGid("empty-rb");
  // The handler failed after entering (say it could not write its reply): its transaction, and
  // with it the row that blocks the action, is rolled back.
  ASSERT_EQ(Describe(a_->Enter(Key(gid, BarrierOp::kCompensate))), "empty_compensation");
  a_->Rollback();
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate), -1), "run");
  EXPECT_EQ(Counter(gid), 0);
}

TEST_P(BarrierTest, ActionThenCompensateBothRun) {
  const std::string gid = UniqueGid("saga");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "run");
  EXPECT_EQ(Counter(gid), 1);
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate), -1), "run");
  EXPECT_EQ(Counter(gid), 0);
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate), -1), "duplicate");
  // The action did run, so a late copy of it is a duplicate, not a refusal.
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "duplicate");
  EXPECT_EQ(Counter(gid), 0);
}

TEST_P(BarrierTest, TryThenCancelBothRun) {
  const std::string gid = UniqueGid("tcc-cancel");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel), -1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel), -1), "duplicate");
  EXPECT_EQ(Counter(gid), 0);
}

TEST_P(BarrierTest, ConfirmRunsOnceAndItsDuplicateDoesNot) {
  const std::string gid = UniqueGid("confirm");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kConfirm), 10), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kConfirm), 10), "duplicate");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kConfirm), 10, b_.get()), "duplicate");
  EXPECT_EQ(Counter(gid), 11);
}

TEST_P(BarrierTest, GidsAndBranchesAreDistinctKeysByteForByte) {
  const std::string gid = UniqueGid("keys");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction, "pay"), 1), "run");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction, "ship"), 1), "run");
  // A case-insensitive collation would take these for duplicates.
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction, "Pay"), 1), "run");
  EXPECT_EQ(Run(Key(gid + "X", BarrierOp::kAction, "pay"), 1), "run");
  EXPECT_EQ(Run(Key(gid + "x", BarrierOp::kAction, "pay"), 1), "run");
  // A compensation of one branch does not block another.
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCompensate, "other"), -1), "empty_compensation");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction, "pay.2"), 1), "run");
  EXPECT_EQ(Counter(gid), 4);
}

TEST_P(BarrierTest, TheLongestKeyFits) {
  std::string gid = UniqueGid("long");
  gid += std::string(56 - gid.size(), 'z');
  const std::string branch(64, 'B');
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel, branch), -1), "empty_compensation");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry, branch), 1), "refused_after_cancel");
}

TEST_P(BarrierTest, AMalformedKeyIsRefusedBeforeTheDatabase) {
  const Result<Verdict> verdict = a_->Enter(Key(std::string(57, 'g'), BarrierOp::kAction));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(verdict.status().message().rfind("Txc-Gid: ", 0), 0u) << verdict.status().message();
  a_->Rollback();
}

// A request whose transaction started (and read) before another committed the same key still
// sees that commit: on MariaDB the snapshot of REPEATABLE READ predates it.
TEST_P(BarrierTest, AnOlderSnapshotStillSeesTheCommittedRow) {
  const std::string gid = UniqueGid("snapshot");
  b_->Read();  // b_'s snapshot starts here
  EXPECT_EQ(Run(Key(gid, BarrierOp::kTry), 1), "run");
  EXPECT_EQ(Describe(b_->Enter(Key(gid, BarrierOp::kTry))), "duplicate");
  b_->Commit();
  EXPECT_EQ(Run(Key(gid, BarrierOp::kCancel), -1), "run");
  b_->Read();
  EXPECT_EQ(Run(Key(gid + "-2", BarrierOp::kCancel), -1), "empty_compensation");
  EXPECT_EQ(Describe(b_->Enter(Key(gid + "-2", BarrierOp::kTry))), "refused_after_cancel");
  b_->Commit();
  EXPECT_EQ(Counter(gid), 0);
}

// Runs `enter` on another thread; the future holds its verdict (or what went wrong).
std::future<std::string> EnterLater(Database& database, Session& session, BarrierKey key) {
  return std::async(std::launch::async, [&database, &session, key] {
    database.ThreadStart();
    std::string result;
    try {
      result = Describe(session.Enter(key));
    } catch (const std::exception& error) {
      result = std::string("exception: ") + error.what();
    }
    database.ThreadEnd();
    return result;
  });
}

TEST_P(BarrierTest, TheSecondRequestWaitsForTheFirstAndSeesItsCommit) {
  const std::string gid = UniqueGid("wait-commit");
  ASSERT_EQ(Describe(a_->Enter(Key(gid, BarrierOp::kAction))), "run");
  std::future<std::string> second = EnterLater(*database_, *b_, Key(gid, BarrierOp::kAction));
  EXPECT_EQ(second.wait_for(kMustStillWait), std::future_status::timeout)
      << "the second request did not wait: " << second.get();
  a_->Add(gid, 1);
  a_->Commit();
  EXPECT_EQ(second.get(), "duplicate");
  b_->Commit();
  EXPECT_EQ(Counter(gid), 1);
}

TEST_P(BarrierTest, TheSecondRequestRunsWhenTheFirstRollsBack) {
  const std::string gid = UniqueGid("wait-rollback");
  ASSERT_EQ(Describe(a_->Enter(Key(gid, BarrierOp::kAction))), "run");
  std::future<std::string> second = EnterLater(*database_, *b_, Key(gid, BarrierOp::kAction));
  EXPECT_EQ(second.wait_for(kMustStillWait), std::future_status::timeout)
      << "the second request did not wait: " << second.get();
  a_->Rollback();  // the first attempt's business logic failed
  EXPECT_EQ(second.get(), "run");
  b_->Add(gid, 1);
  b_->Commit();
  EXPECT_EQ(Counter(gid), 1);
}

TEST_P(BarrierTest, ACompensateWaitsForTheActionInFlight) {
  const std::string gid = UniqueGid("wait-comp");
  ASSERT_EQ(Describe(a_->Enter(Key(gid, BarrierOp::kAction))), "run");
  std::future<std::string> compensate =
      EnterLater(*database_, *b_, Key(gid, BarrierOp::kCompensate));
  EXPECT_EQ(compensate.wait_for(kMustStillWait), std::future_status::timeout)
      << "the compensate did not wait: " << compensate.get();
  a_->Add(gid, 1);
  a_->Commit();
  EXPECT_EQ(compensate.get(), "run");  // the action committed: undo it
  b_->Add(gid, -1);
  b_->Commit();
  EXPECT_EQ(Counter(gid), 0);
}

// Two handlers with the same key on two connections, started together, `kRaceRounds` times.
// Each holds its transaction open for a moment after entering, so that requests that start
// together overlap; in alternate rounds one or the other starts a little late, so that both
// orders occur. Returns the verdicts of each round.
std::vector<std::pair<std::string, std::string>> Race(Database& database, Session& a, Session& b,
                                                      const std::string& prefix, BarrierOp op_a,
                                                      int delta_a, BarrierOp op_b, int delta_b,
                                                      std::vector<std::string>* gids) {
  std::vector<std::pair<std::string, std::string>> outcomes;
  for (int round = 0; round < kRaceRounds; ++round) {
    const std::string gid = UniqueGid(prefix);
    gids->push_back(gid);
    std::barrier start(2);
    const auto handler = [&](Session& session, BarrierOp op, int delta,
                             std::chrono::microseconds delay) {
      database.ThreadStart();
      std::string result;
      try {
        start.arrive_and_wait();
        std::this_thread::sleep_for(delay);
        result = Describe(Handle(session, Key(gid, op), delta, false, kRaceHold).verdict);
      } catch (const std::exception& error) {
        result = std::string("exception: ") + error.what();
      }
      database.ThreadEnd();
      return result;
    };
    const bool a_late = round % 2 == 1;
    std::future<std::string> first = std::async(std::launch::async, handler, std::ref(a), op_a,
                                                delta_a, a_late ? kRaceDelay : kNoDelay);
    std::future<std::string> second = std::async(std::launch::async, handler, std::ref(b), op_b,
                                                 delta_b, a_late ? kNoDelay : kRaceDelay);
    outcomes.emplace_back(first.get(), second.get());
  }
  return outcomes;
}

TEST_P(BarrierTest, TwoConcurrentRequestsWithTheSameKeyRunExactlyOnce) {
  std::vector<std::string> gids;
  const auto outcomes =
      Race(*database_, *a_, *b_, "race", BarrierOp::kAction, 1, BarrierOp::kAction, 1, &gids);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& [first, second] = outcomes[i];
    const bool one_ran =
        (first == "run" && second == "duplicate") || (first == "duplicate" && second == "run");
    EXPECT_TRUE(one_ran) << "round " << i << ": " << first << " / " << second;
    EXPECT_EQ(Counter(gids[i]), 1) << "round " << i;
  }
}

TEST_P(BarrierTest, ConcurrentConfirmsRunExactlyOnce) {
  std::vector<std::string> gids;
  const auto outcomes = Race(*database_, *a_, *b_, "race-confirm", BarrierOp::kConfirm, 1,
                             BarrierOp::kConfirm, 1, &gids);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& [first, second] = outcomes[i];
    EXPECT_TRUE((first == "run") != (second == "run"))
        << "round " << i << ": " << first << " / " << second;
    EXPECT_EQ(Counter(gids[i]), 1) << "round " << i;
  }
}

// A try racing its own cancel: either the try ran and the cancel undid it, or the cancel came
// first, was empty, and the try was refused. Never a try that runs after an empty cancel (a
// hanging reservation), never a cancel that undoes a try that did not run.
TEST_P(BarrierTest, ATryRacingItsCancelNeverHangs) {
  std::vector<std::string> gids;
  const auto outcomes =
      Race(*database_, *a_, *b_, "race-cancel", BarrierOp::kTry, 1, BarrierOp::kCancel, -1, &gids);
  int try_first = 0;
  int cancel_first = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& [try_verdict, cancel_verdict] = outcomes[i];
    if (try_verdict == "run" && cancel_verdict == "run") {
      ++try_first;
    } else if (try_verdict == "refused_after_cancel" && cancel_verdict == "empty_compensation") {
      ++cancel_first;
    } else {
      ADD_FAILURE() << "round " << i << ": try " << try_verdict << ", cancel " << cancel_verdict;
    }
    EXPECT_EQ(Counter(gids[i]), 0) << "round " << i;
  }
  std::printf("[          ] try first %d times, cancel first %d times\n", try_first, cancel_first);
}

TEST_P(BarrierTest, EnsureTableIsIdempotent) {
  EXPECT_TRUE(database_->EnsureTable().ok());
  EXPECT_TRUE(database_->EnsureTable().ok());
  const std::string gid = UniqueGid("ensure");
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "run");
  EXPECT_TRUE(database_->EnsureTable().ok());
  EXPECT_EQ(Run(Key(gid, BarrierOp::kAction), 1), "duplicate");  // the rows are kept
}

// ---------------------------------------------------------------------------------------------
// Creating the table where it is missing, and the errors when it is: in a schema (PostgreSQL) or
// database (MariaDB) of the test's own, dropped afterwards.

class PostgresFreshSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
    admin_ = ConnectPostgres(dsn);
    schema_ = "txc_bt_" + std::to_string(getpid());
    ExecPostgres(*admin_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    ExecPostgres(*admin_, "CREATE SCHEMA " + schema_);
    connection_ = ConnectPostgres(dsn);
    ExecPostgres(*connection_, "SET search_path TO " + schema_);
  }
  void TearDown() override {
    connection_.reset();
    if (admin_ != nullptr) ExecPostgres(*admin_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }

  bool TableExists() {
    return ExecPostgres(*admin_,
                        "SELECT to_regclass('" + schema_ + ".txc_barrier') IS NOT NULL")[0][0]
        .as<bool>();
  }

  std::unique_ptr<pqxx::connection> admin_;
  std::unique_ptr<pqxx::connection> connection_;
  std::string schema_;
};

TEST_F(PostgresFreshSchemaTest, AMissingTableIsAFailedPreconditionThatSaysWhatToDo) {
  pqxx::work txn(*connection_);
  const Result<Verdict> verdict = EnterPostgres(txn, Key(UniqueGid("missing"), BarrierOp::kTry));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = verdict.status().message();
  EXPECT_NE(message.find("SQLSTATE 42P01"), std::string::npos) << message;
  EXPECT_NE(message.find("relation \"txc_barrier\" does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("EnsurePostgresBarrierTable"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(PostgresFreshSchemaTest, EnsureCreatesTheTableOnceAndTheBarrierUsesIt) {
  ASSERT_FALSE(TableExists());
  const Status created = EnsurePostgresBarrierTable(*connection_);
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_TRUE(TableExists());
  EXPECT_TRUE(EnsurePostgresBarrierTable(*connection_).ok());
  const std::string gid = UniqueGid("fresh");
  {
    pqxx::work txn(*connection_);
    EXPECT_EQ(Describe(EnterPostgres(txn, Key(gid, BarrierOp::kCancel))), "empty_compensation");
    txn.commit();
  }
  pqxx::work txn(*connection_);
  EXPECT_EQ(Describe(EnterPostgres(txn, Key(gid, BarrierOp::kTry))), "refused_after_cancel");
  // The table refuses what the library never writes.
  EXPECT_EQ(testing::PostgresSqlstateOf(*admin_, "INSERT INTO " + schema_ +
                                                     ".txc_barrier (gid, branch, op, origin) "
                                                     "VALUES ('g', 'b', 'prepare', 'prepare')"),
            "23514");
}

TEST_F(PostgresFreshSchemaTest, EnsureWithATransactionOpenIsAnError) {
  pqxx::work txn(*connection_);
  const Status status = EnsurePostgresBarrierTable(*connection_);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
}

// Several services starting at once against an empty database all succeed.
TEST_F(PostgresFreshSchemaTest, ConcurrentEnsuresAllSucceed) {
  TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
  constexpr int kRounds = 10;
  constexpr int kSessions = 4;
  std::vector<std::unique_ptr<pqxx::connection>> connections;
  for (int i = 0; i < kSessions; ++i) {
    connections.push_back(ConnectPostgres(dsn));
    ExecPostgres(*connections.back(), "SET search_path TO " + schema_);
  }
  for (int round = 0; round < kRounds; ++round) {
    ExecPostgres(*admin_, "DROP TABLE IF EXISTS " + schema_ + ".txc_barrier");
    std::barrier start(kSessions);
    std::vector<std::future<Status>> results;
    for (int i = 0; i < kSessions; ++i) {
      results.push_back(std::async(std::launch::async, [&, i] {
        start.arrive_and_wait();
        return EnsurePostgresBarrierTable(*connections[i]);
      }));
    }
    for (auto& result : results) {
      const Status status = result.get();
      EXPECT_TRUE(status.ok()) << "round " << round << ": " << status.ToString();
    }
    EXPECT_TRUE(TableExists());
  }
}

// Both the failed statement and the error from the barrier leave nothing behind.
TEST_F(PostgresFreshSchemaTest, AFailedTransactionIsRefusedAndWritesNothing) {
  ASSERT_TRUE(EnsurePostgresBarrierTable(*connection_).ok());
  const std::string gid = UniqueGid("failed");
  {
    pqxx::work txn(*connection_);
    // The handler's own statement failed before it entered the barrier (and it went on).
    EXPECT_THROW(txn.exec("SELECT 1 / 0"), pqxx::sql_error);
    const Result<Verdict> verdict = EnterPostgres(txn, Key(gid, BarrierOp::kTry));
    ASSERT_FALSE(verdict.ok());
    EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition)
        << verdict.status().ToString();
  }
  {
    pqxx::work txn(*connection_);
    txn.commit();
    const Result<Verdict> verdict = EnterPostgres(txn, Key(gid, BarrierOp::kTry));
    ASSERT_FALSE(verdict.ok());
    EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition)
        << verdict.status().ToString();
  }
  {
    // A transaction the caller began by hand: the server itself refuses (25P02).
    pqxx::nontransaction session(*connection_);
    session.exec("BEGIN");
    EXPECT_THROW(session.exec("SELECT 1 / 0"), pqxx::sql_error);
    const Result<Verdict> verdict = EnterPostgres(session, Key(gid, BarrierOp::kTry));
    ASSERT_FALSE(verdict.ok());
    EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition)
        << verdict.status().ToString();
    EXPECT_NE(verdict.status().message().find("SQLSTATE 25P02"), std::string::npos)
        << verdict.status().message();
    session.exec("ROLLBACK");
  }
  EXPECT_EQ(
      ExecPostgres(*admin_, "SELECT count(*) FROM " + schema_ + ".txc_barrier")[0][0].as<int64_t>(),
      0);
  // The retry runs.
  pqxx::work txn(*connection_);
  EXPECT_EQ(Describe(EnterPostgres(txn, Key(gid, BarrierOp::kTry))), "run");
  txn.commit();
}

// What postgres_barrier.h says of REPEATABLE READ: the waiting request fails with a
// serialization error (Aborted: roll back and retry) rather than seeing a row its snapshot
// cannot show; the retry is then a duplicate.
TEST_F(PostgresFreshSchemaTest, AtRepeatableReadAConcurrentDuplicateIsAborted) {
  TXC_REQUIRE_ENV(dsn, "TXC_TEST_PG_DSN");
  ASSERT_TRUE(EnsurePostgresBarrierTable(*connection_).ok());
  const std::unique_ptr<pqxx::connection> other = ConnectPostgres(dsn);
  ExecPostgres(*other, "SET search_path TO " + schema_);
  const std::string gid = UniqueGid("rr");
  pqxx::work first(*connection_);
  ASSERT_EQ(Describe(EnterPostgres(first, Key(gid, BarrierOp::kAction))), "run");
  {
    pqxx::transaction<pqxx::repeatable_read> second(*other);
    std::future<Result<Verdict>> verdict = std::async(
        std::launch::async, [&] { return EnterPostgres(second, Key(gid, BarrierOp::kAction)); });
    EXPECT_EQ(verdict.wait_for(kMustStillWait), std::future_status::timeout);
    first.commit();
    const Result<Verdict> result = verdict.get();
    ASSERT_FALSE(result.ok()) << VerdictName(*result);
    EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  }
  pqxx::transaction<pqxx::repeatable_read> retry(*other);
  EXPECT_EQ(Describe(EnterPostgres(retry, Key(gid, BarrierOp::kAction))), "duplicate");
}

class MysqlFreshDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(text, "TXC_TEST_MYSQL_DSN");
    std::string error;
    const std::optional<MysqlDsn> dsn = ParseMysqlDsn(text, &error);
    ASSERT_TRUE(dsn.has_value()) << error;
    admin_ = ConnectMysql(*dsn);
    database_ = "txc_bt_" + std::to_string(getpid());
    ExecMysql(*admin_, "DROP DATABASE IF EXISTS " + database_);
    ExecMysql(*admin_, "CREATE DATABASE " + database_);
    dsn_ = *dsn;
    dsn_.database = database_;
    connection_ = ConnectMysql(dsn_);
    connection_->setAutoCommit(false);
  }
  void TearDown() override {
    connection_.reset();
    if (admin_ != nullptr) ExecMysql(*admin_, "DROP DATABASE IF EXISTS " + database_);
  }

  bool TableExists() {
    return testing::QueryMysqlString(*admin_,
                                     "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                     "TABLE_SCHEMA = '" +
                                         database_ + "' AND TABLE_NAME = 'txc_barrier'") == "1";
  }

  MysqlDsn dsn_;  // the test's own database
  std::unique_ptr<sql::Connection> admin_;
  std::unique_ptr<sql::Connection> connection_;
  std::string database_;
};

TEST_F(MysqlFreshDatabaseTest, AMissingTableIsAFailedPreconditionThatSaysWhatToDo) {
  const Result<Verdict> verdict =
      EnterMysql(*connection_, Key(UniqueGid("missing"), BarrierOp::kTry));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = verdict.status().message();
  EXPECT_NE(message.find("MySQL error 1146"), std::string::npos) << message;
  EXPECT_NE(message.find("txc_barrier' doesn't exist"), std::string::npos) << message;
  EXPECT_NE(message.find("EnsureMysqlBarrierTable"), std::string::npos) << message;
  connection_->rollback();
}

TEST_F(MysqlFreshDatabaseTest, EnsureCreatesTheTableOnceAndTheBarrierUsesIt) {
  ASSERT_FALSE(TableExists());
  const Status created = EnsureMysqlBarrierTable(*connection_);
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_TRUE(TableExists());
  EXPECT_TRUE(EnsureMysqlBarrierTable(*connection_).ok());
  EXPECT_FALSE(connection_->getAutoCommit());  // left as it was
  const std::string gid = UniqueGid("fresh");
  EXPECT_EQ(Describe(EnterMysql(*connection_, Key(gid, BarrierOp::kCompensate))),
            "empty_compensation");
  connection_->commit();
  EXPECT_EQ(Describe(EnterMysql(*connection_, Key(gid, BarrierOp::kAction))),
            "refused_after_cancel");
  connection_->commit();
  EXPECT_EQ(testing::QueryMysqlString(*admin_,
                                      "SELECT ENGINE FROM information_schema.TABLES "
                                      "WHERE TABLE_SCHEMA = '" +
                                          database_ + "' AND TABLE_NAME = 'txc_barrier'"),
            "InnoDB");
  EXPECT_EQ(testing::QueryMysqlString(
                *admin_, "SELECT COUNT(*) FROM " + database_ +
                             ".txc_barrier WHERE created_at > UTC_TIMESTAMP() - INTERVAL 1 HOUR "
                             "AND created_at < UTC_TIMESTAMP() + INTERVAL 1 MINUTE"),
            "2");
}

TEST_F(MysqlFreshDatabaseTest, AutocommitOnIsRefused) {
  ASSERT_TRUE(EnsureMysqlBarrierTable(*connection_).ok());
  connection_->setAutoCommit(true);
  const std::string gid = UniqueGid("autocommit");
  const Result<Verdict> verdict = EnterMysql(*connection_, Key(gid, BarrierOp::kAction));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(verdict.status().message().find("autocommit"), std::string::npos)
      << verdict.status().message();
  EXPECT_EQ(testing::QueryMysqlString(*admin_, "SELECT COUNT(*) FROM " + database_ +
                                                   ".txc_barrier WHERE gid = '" + gid + "'"),
            "0");
}

TEST_F(MysqlFreshDatabaseTest, ALockWaitTimeoutIsAbortedWithTheDatabaseMessage) {
  ASSERT_TRUE(EnsureMysqlBarrierTable(*connection_).ok());
  const std::string gid = UniqueGid("lock");
  ASSERT_EQ(Describe(EnterMysql(*connection_, Key(gid, BarrierOp::kTry))), "run");
  // A second connection to the same database, with a short lock wait.
  const std::unique_ptr<sql::Connection> other = ConnectMysql(dsn_);
  other->setAutoCommit(false);
  ExecMysql(*other, "SET SESSION innodb_lock_wait_timeout = 1");
  const Result<Verdict> verdict = EnterMysql(*other, Key(gid, BarrierOp::kTry));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), StatusCode::kAborted) << verdict.status().ToString();
  EXPECT_NE(verdict.status().message().find("MySQL error 1205"), std::string::npos)
      << verdict.status().message();
  other->rollback();
  connection_->rollback();
}

}  // namespace
}  // namespace txc::barrier
