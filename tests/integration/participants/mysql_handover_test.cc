// The MariaDB hand-over race (participants/mysql/mysql_resource.h): phase 2 of a prepared branch
// from a session other than the one that prepared it, while that session is still being ended,
// can answer success without doing anything. MysqlResource hands a branch over in three ways;
// each is repeated here against a real MariaDB 10.11 (scripts/dbs.sh; TXC_TEST_MYSQL_DSN; fails,
// never skips, without it), and after every phase 2 the outcome is checked from another session:
// the write is visible (commit) or not (rollback), XA RECOVER no longer lists the xid, and the
// row's lock is free.
//
// To meet the race in every round instead of now and then, the preparing session is given many
// user variables (SlowEnd): MariaDB frees them while it ends the session, after it has marked the
// session's xid recovered and before it detaches the InnoDB transaction, which stretches that
// window from well under a millisecond to several. Without the hand-over guard every stress test
// here lost a branch within its first 40 rounds (measured on MariaDB 10.11.19); the resolving side
// retries every millisecond, as a coordinator's fast retries and in-doubt scans would.
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "participants/database/xid.h"
#include "participants/mysql/innodb_status.h"
#include "participants/mysql/mysql_resource.h"
#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::participants::mysql {
namespace {

using database::InDoubtXid;
using database::Statement;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 5s;
// How long a test waits for a branch to be resolvable at all (a hand-over takes milliseconds).
constexpr std::chrono::seconds kResolveTimeout = 10s;
// Rounds of each stress test, and the user variables that slow the preparing session's end.
constexpr int kRounds = 300;
constexpr int kSlowEndVariables = 20'000;

// A branch's statements: many user variables (see the top of the file), then it sets row `row`
// of `table` to `value`.
std::vector<Statement> SlowEndThenSetRow(const std::string& table, int row, int value) {
  std::vector<Statement> statements;
  for (int first = 0; first < kSlowEndVariables; first += 1000) {
    std::string text = "SET ";
    for (int i = first; i < first + 1000; ++i) {
      text += (i == first ? "@hx" : ", @hx") + std::to_string(i) + " = " + std::to_string(i);
    }
    statements.push_back(Statement{text, {}});
  }
  statements.push_back(
      Statement{"UPDATE " + table + " SET v = ? WHERE k = ?", {int64_t{value}, int64_t{row}}});
  return statements;
}

// ---- SHOW ENGINE INNODB STATUS, as MariaDB 10.11.19 printed it (abridged) ----

constexpr std::string_view kStatusHead =
    "=====================================\n"
    "2025-11-29 22:40:01 0x7f32 INNODB MONITOR OUTPUT\n"
    "=====================================\n"
    "------------\n"
    "TRANSACTIONS\n"
    "------------\n"
    "Trx id counter 10190\n"
    "Purge done for trx's n:o < 10189 undo n:o < 0 state: running but idle\n"
    "History list length 0\n"
    "LIST OF TRANSACTIONS FOR EACH SESSION:\n";
constexpr std::string_view kStatusTail =
    "--------\n"
    "FILE I/O\n"
    "--------\n"
    "Pending flushes (fsync): 0\n";

TEST(InnodbStatusTest, ReadsAttachedTransactionsAndTheCounter) {
  const std::string status =
      std::string(kStatusHead) +
      "---TRANSACTION 10189, ACTIVE (PREPARED) 0 sec\n"
      "2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1\n"
      "MariaDB thread id 24, OS thread handle 139856082589376, query id 59 127.0.0.1 txc \n"
      "---TRANSACTION 10150, ACTIVE (PREPARED) 109 sec recovered trx\n"
      "2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1\n"
      "---TRANSACTION 10170, ACTIVE 3 sec\n"
      "mysql tables in use 1, locked 1\n"
      "MariaDB thread id 31, OS thread handle 1398, query id 80 127.0.0.1 txc updating\n"
      "UPDATE t SET v = 'MariaDB thread id 99, OS thread handle' WHERE k = 1\n"
      "---TRANSACTION (0x7f32ca761b80), not started\n"
      "0 lock struct(s), heap size 1128, 0 row lock(s)\n"
      "MariaDB thread id 40, OS thread handle 1399, query id 81 127.0.0.1 txc starting\n"
      "SHOW ENGINE INNODB STATUS\n"
      "---TRANSACTION (0x7f32ca762c80), ACTIVE 1 sec\n"
      "MariaDB thread id 41, OS thread handle 1400, query id 82 127.0.0.1 txc\n" +
      std::string(kStatusTail);
  const std::optional<InnodbTransactions> parsed = ParseInnodbTransactions(status);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->trx_id_counter, 10190u);
  // The detached ("recovered trx") branch has no session; the statement text's imitation of a
  // thread line does not count; a transaction without an id yet has none.
  const std::vector<AttachedTransaction> expected = {
      {.session_id = 24, .trx_id = 10189, .started = true, .prepared = true},
      {.session_id = 31, .trx_id = 10170, .started = true, .prepared = false},
      {.session_id = 40, .trx_id = std::nullopt, .started = false, .prepared = false},
      {.session_id = 41, .trx_id = std::nullopt, .started = true, .prepared = false},
  };
  EXPECT_EQ(parsed->attached, expected);
}

TEST(InnodbStatusTest, ReadsMysqlThreadLines) {
  const std::string status = std::string(kStatusHead) +
                             "---TRANSACTION 1511884, ACTIVE 2 sec\n"
                             "1 lock struct(s), heap size 1136, 1 row lock(s)\n"
                             "MySQL thread id 970, OS thread handle 1231, query id 6 localhost\n" +
                             std::string(kStatusTail);
  const std::optional<InnodbTransactions> parsed = ParseInnodbTransactions(status);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->attached.size(), 1u);
  EXPECT_EQ(parsed->attached[0].session_id, 970u);
  EXPECT_EQ(parsed->attached[0].trx_id, 1511884u);
}

// Nothing may be concluded from an incomplete list: InnoDB cuts it when the output passes 1 MiB.
TEST(InnodbStatusTest, RefusesATruncatedOrMissingList) {
  const std::string truncated = std::string(kStatusHead) +
                                "---TRANSACTION 10189, ACTIVE (PREPARED) 0 sec\n"
                                "... truncated...\n" +
                                std::string(kStatusTail);
  EXPECT_FALSE(ParseInnodbTransactions(truncated).has_value());
  EXPECT_FALSE(ParseInnodbTransactions(std::string(kStatusHead)).has_value())
      << "the list must end with the next section";
  EXPECT_FALSE(ParseInnodbTransactions(kStatusTail).has_value());
  EXPECT_FALSE(ParseInnodbTransactions("").has_value());
}

// ---- Against MariaDB ----

class MysqlHandOverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(dsn, "TXC_TEST_MYSQL_DSN");
    dsn_ = dsn;
    std::string error;
    const std::optional<testing::MysqlDsn> parsed = testing::ParseMysqlDsn(dsn_, &error);
    ASSERT_TRUE(parsed.has_value()) << error;
    test_dsn_ = *parsed;
    static int counter = 0;
    base_ = "h" + std::to_string(getpid()) + "t" + std::to_string(++counter);
    node_ = base_;
    table_ = "txc_ho_" + base_;
    admin_ = testing::ConnectMysql(test_dsn_);
    // A branch left behind holding its locks must make the checks fail, not hang them.
    testing::ExecMysql(*admin_, "SET SESSION innodb_lock_wait_timeout = 1, lock_wait_timeout = 5");
    testing::ExecMysql(*admin_, "DROP TABLE IF EXISTS " + table_);
    testing::ExecMysql(
        *admin_, "CREATE TABLE " + table_ + " (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
    testing::ExecMysql(*admin_, "INSERT INTO " + table_ + " SELECT seq, 0 FROM seq_0_to_" +
                                    std::to_string(2 * kRounds + 10));
  }

  void TearDown() override {
    if (admin_ == nullptr) return;
    const auto deadline = std::chrono::steady_clock::now() + kResolveTimeout;
    std::vector<testing::XaXid> left = testing::RecoverMysqlXids(*admin_, "txc:" + base_);
    for (const testing::XaXid& xid : left) {
      // 1397 while a closed session is still being ended; 1402 for a branch without writes.
      int code = 0;
      do {
        code = testing::MysqlErrorOf(*admin_, "XA ROLLBACK " + testing::XaXidSql(xid));
      } while (code == 1397 && std::chrono::steady_clock::now() < deadline);
    }
    EXPECT_TRUE(left.empty()) << "the test left " << left.size() << " prepared branch(es)";
    EXPECT_EQ(testing::MysqlErrorOf(*admin_, "DROP TABLE IF EXISTS " + table_), 0)
        << "a transaction still holds locks on " << table_
        << ": a branch answered as resolved but left behind?";
  }

  std::unique_ptr<MysqlResource> MakeResource(std::size_t pool_size_max, std::size_t parked_max) {
    Result<std::unique_ptr<MysqlResource>> resource =
        MysqlResource::Create({.name = "payments",
                               .dsn = dsn_,
                               .node_id = node_,
                               .pool_size_max = pool_size_max,
                               .parked_max = parked_max});
    EXPECT_TRUE(resource.ok()) << resource.status().ToString();
    return resource.ok() ? std::move(*resource) : nullptr;
  }

  std::string Gid(const std::string& suffix) const { return base_ + "-" + suffix; }

  Statement SetRow(int row, int value) const {
    return Statement{"UPDATE " + table_ + " SET v = ? WHERE k = ?", {int64_t{value}, int64_t{row}}};
  }

  std::vector<Statement> SlowEndThenSetRow(int row, int value) const {
    return mysql::SlowEndThenSetRow(table_, row, value);
  }

  // Calls `call` until it is Ok (retrying every millisecond), for at most kResolveTimeout.
  static CallResult UntilOk(const std::function<CallResult()>& call) {
    const auto deadline = std::chrono::steady_clock::now() + kResolveTimeout;
    for (;;) {
      CallResult result = call();
      if (result.ok() || std::chrono::steady_clock::now() >= deadline) return result;
      std::this_thread::sleep_for(1ms);
    }
  }

  // After phase 2 of branch (gid, 0) that set `row` to `value`: seen from another session, the
  // outcome is there, XA RECOVER no longer lists the xid, and nothing holds the row's lock.
  // Returns "" or what is wrong.
  std::string ProblemAfterPhaseTwo(const std::string& gid, int row, bool committed, int value) {
    std::string problem;
    const database::MysqlXid xid = *database::MakeMysqlXid(node_, gid, 0);
    const std::vector<testing::XaXid> listed = testing::RecoverMysqlXids(*admin_, xid.gtrid);
    if (!listed.empty()) problem += "XA RECOVER still lists the xid; ";
    testing::ExecMysql(*admin_, "START TRANSACTION");
    int lock = 0;
    try {
      testing::QueryMysqlString(*admin_, "SELECT v FROM " + table_ + " WHERE k = " +
                                             std::to_string(row) + " FOR UPDATE NOWAIT");
    } catch (const sql::SQLException& error) {
      lock = error.getErrorCode();
    }
    testing::ExecMysql(*admin_, "ROLLBACK");
    if (lock != 0) problem += "the row's lock is held (error " + std::to_string(lock) + "); ";
    const std::string seen = testing::QueryMysqlString(
        *admin_, "SELECT v FROM " + table_ + " WHERE k = " + std::to_string(row));
    const std::string expected = std::to_string(committed ? value : 0);
    if (seen != expected) problem += "v is " + seen + ", expected " + expected + "; ";
    return problem;
  }

  std::string dsn_;
  testing::MysqlDsn test_dsn_;
  std::string base_;
  std::string node_;
  std::string table_;
  std::unique_ptr<sql::Connection> admin_;
};

// Path 1: at parked_max, parking one more branch closes the connection parked longest ago; its
// branch is then finished from another session.
TEST_F(MysqlHandOverTest, EvictedParkedSessionsHandOverSafely) {
  std::unique_ptr<MysqlResource> resource = MakeResource(/*pool_size_max=*/3, /*parked_max=*/1);
  ASSERT_NE(resource, nullptr);
  for (int round = 0; round < kRounds; ++round) {
    const bool commit = round % 2 == 0;
    const std::string evicted = Gid("e" + std::to_string(round));
    const std::string evicting = Gid("f" + std::to_string(round));
    const int row = 2 * round;
    const CallResult first =
        resource->Prepare(evicted, 0, SlowEndThenSetRow(row, round + 1), kTimeout);
    ASSERT_TRUE(first.ok()) << "round " << round << ": " << first.reason;
    const CallResult second = resource->Prepare(evicting, 0, {{SetRow(row + 1, 1)}}, kTimeout);
    ASSERT_TRUE(second.ok()) << "round " << round << ": " << second.reason;
    ASSERT_EQ(resource->ParkedSessionId(evicted, 0), std::nullopt) << "round " << round;

    const CallResult resolved = UntilOk([&] {
      return commit ? resource->CommitPrepared(evicted, 0, kTimeout)
                    : resource->RollbackPrepared(evicted, 0, kTimeout);
    });
    ASSERT_TRUE(resolved.ok()) << "round " << round << ": " << resolved.reason;
    const std::string problem = ProblemAfterPhaseTwo(evicted, row, commit, round + 1);
    ASSERT_EQ(problem, "") << "round " << round << " (" << (commit ? "commit" : "rollback")
                           << " of an evicted branch answered Ok)";
    const CallResult other = resource->CommitPrepared(evicting, 0, kTimeout);
    ASSERT_TRUE(other.ok()) << "round " << round << ": " << other.reason;
  }
}

// Path 2: the parked preparing session breaks (here: KILLed from outside); phase 2 then runs on
// another session while the server may still be ending the killed one.
TEST_F(MysqlHandOverTest, KilledParkedSessionsHandOverSafely) {
  std::unique_ptr<MysqlResource> resource = MakeResource(/*pool_size_max=*/3, /*parked_max=*/2);
  ASSERT_NE(resource, nullptr);
  for (int round = 0; round < kRounds; ++round) {
    const bool commit = round % 2 == 0;
    const std::string gid = Gid("k" + std::to_string(round));
    const CallResult prepared =
        resource->Prepare(gid, 0, SlowEndThenSetRow(round, round + 1), kTimeout);
    ASSERT_TRUE(prepared.ok()) << "round " << round << ": " << prepared.reason;
    const std::optional<uint64_t> session = resource->ParkedSessionId(gid, 0);
    ASSERT_TRUE(session.has_value()) << "round " << round;
    testing::ExecMysql(*admin_, "KILL " + std::to_string(*session));

    const CallResult resolved = UntilOk([&] {
      return commit ? resource->CommitPrepared(gid, 0, kTimeout)
                    : resource->RollbackPrepared(gid, 0, kTimeout);
    });
    ASSERT_TRUE(resolved.ok()) << "round " << round << ": " << resolved.reason;
    const std::string problem = ProblemAfterPhaseTwo(gid, round, commit, round + 1);
    ASSERT_EQ(problem, "") << "round " << round << " (" << (commit ? "commit" : "rollback")
                           << " after the parked session was killed answered Ok)";
  }
}

// Path 3 within one process: the resource object that prepared is destroyed (its connections
// closed), and a new one lists and resolves the branch right away. (The sessions given up are
// remembered process-wide; the next test covers a new process, which remembers nothing.)
TEST_F(MysqlHandOverTest, ANewResourceResolvesSafelyRightAfterTheOldOneClosed) {
  for (int round = 0; round < kRounds; ++round) {
    const bool commit = round % 2 == 0;
    const std::string gid = Gid("n" + std::to_string(round));
    {
      std::unique_ptr<MysqlResource> old = MakeResource(/*pool_size_max=*/2, /*parked_max=*/1);
      ASSERT_NE(old, nullptr);
      const CallResult prepared =
          old->Prepare(gid, 0, SlowEndThenSetRow(round, round + 1), kTimeout);
      ASSERT_TRUE(prepared.ok()) << "round " << round << ": " << prepared.reason;
    }  // closes the parked preparing session
    std::unique_ptr<MysqlResource> restarted = MakeResource(/*pool_size_max=*/2, /*parked_max=*/1);
    ASSERT_NE(restarted, nullptr);
    const Result<std::vector<InDoubtXid>> in_doubt = restarted->ListInDoubt(kTimeout);
    ASSERT_TRUE(in_doubt.ok()) << "round " << round << ": " << in_doubt.status().ToString();
    ASSERT_EQ(*in_doubt,
              (std::vector<InDoubtXid>{
                  {gid, 0, database::MysqlXidSql(*database::MakeMysqlXid(node_, gid, 0))}}))
        << "round " << round;

    const CallResult resolved = UntilOk([&] {
      return commit ? restarted->CommitPrepared(gid, 0, kTimeout)
                    : restarted->RollbackPrepared(gid, 0, kTimeout);
    });
    ASSERT_TRUE(resolved.ok()) << "round " << round << ": " << resolved.reason;
    const std::string problem = ProblemAfterPhaseTwo(gid, round, commit, round + 1);
    ASSERT_EQ(problem, "") << "round " << round << " (" << (commit ? "commit" : "rollback")
                           << " by a new resource answered Ok)";
  }
}

// Path 3 for real: a coordinator process that prepared a branch dies (the kernel closes its
// sockets, with no goodbye to the server: _exit or SIGKILL), and a new process resolves the branch
// right away. The new process remembers nothing of the old one's sessions: only the guard's
// reading of the server (the node's marker, sessions being ended) keeps it safe. The dying
// process is this test binary run again as PreparingProcess.
TEST_F(MysqlHandOverTest, ANewProcessResolvesSafelyRightAfterThePreparingProcessDied) {
  std::vector<std::string> environment;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    environment.emplace_back(*variable);
  }
  environment.push_back("TXC_HANDOVER_NODE=" + node_);
  environment.push_back("TXC_HANDOVER_TABLE=" + table_);
  environment.push_back("TXC_HANDOVER_CHILD=1");  // run as the preparing process
  const std::size_t round_at = environment.size();
  environment.emplace_back();  // TXC_HANDOVER_ROUND, set per round
  std::vector<char*> env;
  for (std::string& variable : environment) env.push_back(variable.data());
  env.push_back(nullptr);
  std::string self = "/proc/self/exe";
  char* const argv[] = {self.data(), nullptr};
  posix_spawn_file_actions_t quiet;
  ASSERT_EQ(posix_spawn_file_actions_init(&quiet), 0);
  ASSERT_EQ(posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0), 0);

  for (int round = 0; round < kRounds; ++round) {
    const bool commit = round % 2 == 0;
    const std::string gid = Gid("d" + std::to_string(round));
    environment[round_at] = "TXC_HANDOVER_ROUND=" + std::to_string(round);
    env[round_at] = environment[round_at].data();
    pid_t child = 0;
    ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", &quiet, nullptr, argv, env.data()), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    const bool died = round % 4 == 1 ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
                                     : WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ASSERT_TRUE(died) << "round " << round << ": the preparing process failed (status " << status
                      << ")";

    std::unique_ptr<MysqlResource> restarted = MakeResource(/*pool_size_max=*/2, /*parked_max=*/1);
    ASSERT_NE(restarted, nullptr);
    const CallResult resolved = UntilOk([&] {
      return commit ? restarted->CommitPrepared(gid, 0, kTimeout)
                    : restarted->RollbackPrepared(gid, 0, kTimeout);
    });
    ASSERT_TRUE(resolved.ok()) << "round " << round << ": " << resolved.reason;
    const std::string problem = ProblemAfterPhaseTwo(gid, round, commit, round + 1);
    ASSERT_EQ(problem, "") << "round " << round << " (" << (commit ? "commit" : "rollback")
                           << " by a new process answered Ok)";
  }
  posix_spawn_file_actions_destroy(&quiet);
}

// The dying process of the test above: this binary started again with TXC_HANDOVER_CHILD=1 and
// its instructions in the environment. Prepares branch (<node>-d<round>, 0) and dies without
// closing anything, every fourth round by SIGKILL. It runs from a global test environment, so
// before any test and after all static initialisation, and never returns.
void RunPreparingProcess() {
  const char* dsn = std::getenv("TXC_TEST_MYSQL_DSN");
  const char* node = std::getenv("TXC_HANDOVER_NODE");
  const char* table = std::getenv("TXC_HANDOVER_TABLE");
  const char* round_text = std::getenv("TXC_HANDOVER_ROUND");
  if (dsn == nullptr || node == nullptr || table == nullptr || round_text == nullptr) _exit(2);
  const int round = std::atoi(round_text);
  Result<std::unique_ptr<MysqlResource>> resource =
      MysqlResource::Create({.name = "payments", .dsn = dsn, .node_id = node});
  if (!resource.ok()) _exit(3);
  const CallResult prepared =
      (*resource)->Prepare(std::string(node) + "-d" + std::to_string(round), 0,
                           SlowEndThenSetRow(table, round, round + 1), kTimeout);
  if (!prepared.ok()) _exit(4);
  if (round % 4 == 1) raise(SIGKILL);
  _exit(0);  // no destructors: the kernel closes the sockets, as when a process dies
}

class PreparingProcessEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    if (std::getenv("TXC_HANDOVER_CHILD") != nullptr) RunPreparingProcess();
  }
};
[[maybe_unused]] ::testing::Environment* const kPreparingProcess =
    ::testing::AddGlobalTestEnvironment(new PreparingProcessEnvironment);

// A session of an earlier process of this node (it carries the node's marker lock) that still
// holds the branch: the new resource waits for it, with a reason naming it, instead of trying;
// once that session has ended, the branch is committed.
TEST_F(MysqlHandOverTest, ASessionOfAnEarlierProcessOfThisNodeIsWaitedFor) {
  const std::string gid = Gid("p");
  const database::MysqlXid xid = *database::MakeMysqlXid(node_, gid, 0);
  const testing::XaXid test_xid{xid.gtrid, xid.bqual, static_cast<long>(xid.format_id)};
  std::unique_ptr<sql::Connection> earlier = testing::ConnectMysql(test_dsn_);
  const std::string earlier_id = testing::QueryMysqlString(*earlier, "SELECT CONNECTION_ID()");
  testing::QueryMysqlString(*earlier, "SELECT GET_LOCK('txc:" + node_ + ":" + earlier_id + "', 0)");
  testing::ExecMysql(*earlier, "XA START " + testing::XaXidSql(test_xid));
  testing::ExecMysql(*earlier, "UPDATE " + table_ + " SET v = 7 WHERE k = 1");
  testing::ExecMysql(*earlier, "XA END " + testing::XaXidSql(test_xid));
  testing::ExecMysql(*earlier, "XA PREPARE " + testing::XaXidSql(test_xid));

  std::unique_ptr<MysqlResource> resource = MakeResource(/*pool_size_max=*/2, /*parked_max=*/1);
  ASSERT_NE(resource, nullptr);
  const auto start = std::chrono::steady_clock::now();
  const CallResult waiting = resource->CommitPrepared(gid, 0, 300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "bounded by the call's timeout";
  EXPECT_EQ(waiting.outcome, CallOutcome::kTransient) << waiting.reason;
  EXPECT_NE(waiting.reason.find("session(s) " + earlier_id), std::string::npos) << waiting.reason;
  EXPECT_EQ(ProblemAfterPhaseTwo(gid, 1, /*committed=*/false, 0),
            "XA RECOVER still lists the xid; the row's lock is held (error 1205); ");

  earlier.reset();
  const CallResult commit = UntilOk([&] { return resource->CommitPrepared(gid, 0, kTimeout); });
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(ProblemAfterPhaseTwo(gid, 1, /*committed=*/true, 7), "");
}

// Sessions that are not this node's (no marker) and are not being ended do not hold a new
// resource up, even with a prepared branch of their own; nor do the parked sessions of another
// resource object of this process.
TEST_F(MysqlHandOverTest, OtherNodesAndSiblingResourcesDoNotHoldTheGuardUp) {
  const testing::XaXid foreign{"txc:" + base_ + "-foreign", "othernode:0", 7889763};
  std::unique_ptr<sql::Connection> other_node = testing::ConnectMysql(test_dsn_);
  testing::ExecMysql(*other_node, "XA START " + testing::XaXidSql(foreign));
  testing::ExecMysql(*other_node, "UPDATE " + table_ + " SET v = 5 WHERE k = 2");
  testing::ExecMysql(*other_node, "XA END " + testing::XaXidSql(foreign));
  testing::ExecMysql(*other_node, "XA PREPARE " + testing::XaXidSql(foreign));
  std::unique_ptr<MysqlResource> sibling = MakeResource(/*pool_size_max=*/2, /*parked_max=*/1);
  ASSERT_NE(sibling, nullptr);
  ASSERT_TRUE(sibling->Prepare(Gid("s"), 0, {{SetRow(3, 3)}}, kTimeout).ok());

  std::unique_ptr<MysqlResource> resource = MakeResource(/*pool_size_max=*/3, /*parked_max=*/1);
  ASSERT_NE(resource, nullptr);
  ASSERT_TRUE(resource->Prepare(Gid("a"), 0, {{SetRow(4, 4)}}, kTimeout).ok());
  ASSERT_TRUE(resource->Prepare(Gid("b"), 0, {{SetRow(5, 5)}}, kTimeout).ok());  // evicts a
  const CallResult commit = UntilOk([&] { return resource->CommitPrepared(Gid("a"), 0, 300ms); });
  EXPECT_TRUE(commit.ok()) << commit.reason;
  EXPECT_EQ(ProblemAfterPhaseTwo(Gid("a"), 4, /*committed=*/true, 4), "");

  EXPECT_TRUE(resource->CommitPrepared(Gid("b"), 0, kTimeout).ok());
  EXPECT_TRUE(sibling->CommitPrepared(Gid("s"), 0, kTimeout).ok());
  testing::ExecMysql(*other_node, "XA ROLLBACK " + testing::XaXidSql(foreign));
}

// The guard reads SHOW ENGINE INNODB STATUS: without the PROCESS privilege CheckReady says so.
TEST_F(MysqlHandOverTest, CheckReadyNeedsTheProcessPrivilege) {
  const std::string user = "txc_np_" + base_;
  testing::ExecMysql(*admin_, "CREATE USER '" + user + "'@'%' IDENTIFIED BY 'np-pw'");
  Result<std::unique_ptr<MysqlResource>> resource = MysqlResource::Create(
      {.name = "payments",
       .dsn = "mysql://" + user + ":np-pw@" + test_dsn_.host + ":" + std::to_string(test_dsn_.port),
       .node_id = node_});
  ASSERT_TRUE(resource.ok()) << resource.status().ToString();
  const Status ready = (*resource)->CheckReady(kTimeout);
  resource->reset();
  testing::ExecMysql(*admin_, "DROP USER '" + user + "'@'%'");
  EXPECT_EQ(ready.code(), StatusCode::kFailedPrecondition) << ready.ToString();
  EXPECT_NE(ready.message().find("PROCESS"), std::string::npos) << ready.message();
}

}  // namespace
}  // namespace txc::participants::mysql
