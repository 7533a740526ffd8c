// Chaos: txcoord killed (SIGKILL, by its own crash points) at every named point of a cross-database
// 2PC transfer (PostgreSQL and MariaDB, both directions, committing and refused by a CHECK), some
// of them a second time while recovering, then restarted on the same log. Whatever the point, the
// transfer ends applied on both databases or on neither, with the outcome the point implies; the
// document says which, and no branch is left prepared.
// Then the in-doubt scan: prepared branches of this node that no live transaction owns are settled
// before /readyz turns 200 (rolled back, or committed when the log holds a commit), and another
// node's are left alone. Last, a slow participant: a PREPARE still running in PostgreSQL when the
// coordinator dies must not stay prepared once its call's time is up.
//
// Needs TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/test.sh sets them).
#include <cppconn/connection.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/common/crash_point.h"
#include "tests/chaos/chaos_support.h"
#include "tests/support/db_env.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::chaos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr char kNode[] = "chaos-crash";
constexpr char kPrefix[] = "chaos_crash";
constexpr char kPgAccount[] = "alice";
constexpr char kMyAccount[] = "bob";
constexpr int64_t kStartBalance = 100;
constexpr int64_t kAmount = 30;
constexpr int64_t kTooMuch = 500;  // more than either account holds: the CHECK refuses the debit

constexpr milliseconds kReadyTimeout{15'000};
// A crash point the scenario passes is reached by then; one that is not fails the case.
constexpr milliseconds kCrashTimeout{15'000};
constexpr milliseconds kFinalTimeout{20'000};
constexpr milliseconds kPreparedGrace{5'000};

// A short random tag so that gids never meet those of an earlier run on the same servers.
std::string RunTag() {
  static const std::string tag = [] {
    std::random_device random;
    char text[8];
    std::snprintf(text, sizeof text, "%06x", static_cast<unsigned>(random() & 0xffffff));
    return std::string(text);
  }();
  return tag;
}

struct CrashCase {
  const char* point;
  int after;  // TXC_CRASH_AFTER: the point's n-th passage
  Direction direction;
  bool refused;          // the debit is refused by the CHECK: the transfer must abort
  const char* expected;  // the outcome recovery must reach
  // A second crash, of the restarted coordinator while it recovers (nullptr: none).
  const char* then_point = nullptr;
  int then_after = 1;
};

// For the test's name: refused_pg2my_after_prepare_reply_2[_then_after_decision_durable_1].
std::string CaseName(const CrashCase& c) {
  std::string name = std::string(c.refused ? "refused" : "commit") + "_" +
                     (c.direction == Direction::kPgToMy ? "pg2my" : "my2pg") + "_" + c.point + "_" +
                     std::to_string(c.after);
  if (c.then_point != nullptr) {
    name += std::string("_then_") + c.then_point + "_" + std::to_string(c.then_after);
  }
  return name;
}

// gtest prints a failing case's parameter with this.
void PrintTo(const CrashCase& c, std::ostream* out) { *out << CaseName(c); }

// For the gid (at most 56 characters): the same, abbreviated.
std::string ShortName(const CrashCase& c) {
  const auto abbreviation = [](const std::string& point) {
    const size_t underscore = point.find('_', point.starts_with("after_") ? 6 : 0);
    return point.substr(point.starts_with("after_") ? 6 : 0,
                        underscore == std::string::npos
                            ? std::string::npos
                            : underscore - (point.starts_with("after_") ? 6 : 0));
  };
  std::string name = std::string(c.refused ? "r" : "c") +
                     (c.direction == Direction::kPgToMy ? "pm" : "mp") + "-" +
                     abbreviation(c.point) + std::to_string(c.after);
  if (c.then_point != nullptr) {
    name += "-" + abbreviation(c.then_point) + std::to_string(c.then_after);
  }
  return name;
}

// Every crash point each scenario passes, with the outcome recovery must reach from it. A commit
// is recovered as a commit once the decision is durable, and presumed aborted before. The
// refused transfer passes no commit reply: that point is simply not in its list. Then crashes
// during recovery itself: the presumed abort's decision, a recovered commit's phase 2, its END.
std::vector<CrashCase> AllCases() {
  std::vector<CrashCase> cases;
  for (const Direction direction : {Direction::kPgToMy, Direction::kMyToPg}) {
    for (const CrashCase& c : std::vector<CrashCase>{
             {"after_begin_durable", 1, direction, false, "aborted"},
             {"after_prepare_reply", 1, direction, false, "aborted"},
             {"after_prepare_reply", 2, direction, false, "aborted"},
             {"after_decision_durable", 1, direction, false, "committed"},
             {"after_commit_reply", 1, direction, false, "committed"},
             {"after_commit_reply", 2, direction, false, "committed"},
             {"before_end", 1, direction, false, "committed"},
             {"after_begin_durable", 1, direction, true, "aborted"},
             {"after_prepare_reply", 1, direction, true, "aborted"},
             {"after_prepare_reply", 2, direction, true, "aborted"},
             {"after_decision_durable", 1, direction, true, "aborted"},
             {"after_abort_reply", 1, direction, true, "aborted"},
             {"after_abort_reply", 2, direction, true, "aborted"},
             {"before_end", 1, direction, true, "aborted"},
         }) {
      cases.push_back(c);
    }
  }
  for (const CrashCase& c : std::vector<CrashCase>{
           {"after_prepare_reply", 2, Direction::kPgToMy, false, "aborted",
            "after_decision_durable", 1},
           {"after_begin_durable", 1, Direction::kMyToPg, false, "aborted", "after_abort_reply", 1},
           {"after_prepare_reply", 2, Direction::kMyToPg, false, "aborted", "before_end", 1},
           {"after_decision_durable", 1, Direction::kPgToMy, false, "committed",
            "after_commit_reply", 1},
           {"after_commit_reply", 1, Direction::kMyToPg, false, "committed", "before_end", 1},
           {"after_decision_durable", 1, Direction::kMyToPg, true, "aborted", "after_abort_reply",
            2},
       }) {
    cases.push_back(c);
  }
  return cases;
}

TEST(TwoPhaseCrashCoverageTest, EveryCrashPointIsExercised) {
  const std::vector<CrashCase> cases = AllCases();
  std::set<std::string> names;
  for (const char* point : kCrashPoints) {
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(),
                            [&](const CrashCase& c) { return std::string(c.point) == point; }))
        << "crash point " << point << " (txc::kCrashPoints) has no case in two_phase_crash_test";
  }
  for (const CrashCase& c : cases) {
    for (const char* used : {c.point, c.then_point}) {
      if (used == nullptr) continue;
      EXPECT_TRUE(std::any_of(std::begin(kCrashPoints), std::end(kCrashPoints),
                              [&](const char* point) { return std::string(used) == point; }))
          << CaseName(c) << " names a crash point the coordinator does not have";
    }
    EXPECT_TRUE(names.insert(ShortName(c)).second) << "two cases are called " << ShortName(c);
    EXPECT_LE(RunTag().size() + 1 + ShortName(c).size(), 56u) << ShortName(c);
  }
}

class TwoPhaseCrashTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  void SetUp() override {
    TXC_REQUIRE_ENV(pg, "TXC_TEST_PG_DSN");
    TXC_REQUIRE_ENV(mysql, "TXC_TEST_MYSQL_DSN");
    pg_dsn_ = pg;
    mysql_dsn_ = mysql;
    databases_ = std::make_unique<Databases>(pg_dsn_, mysql_dsn_);
    // What a failed earlier case (or run) left prepared holds locks on the accounts.
    databases_->RollbackPrepared(kNode);
    static bool tables_created = false;
    if (!tables_created) {
      databases_->CreateTables(kPrefix);
      tables_created = true;
    }
    databases_->ResetAccounts(kPrefix, {{kPgAccount, kStartBalance}},
                              {{kMyAccount, kStartBalance}});
  }

  std::string pg_dsn_;
  std::string mysql_dsn_;
  std::unique_ptr<Databases> databases_;
};

TEST_P(TwoPhaseCrashTest, RecoveryAppliesTheTransferOnBothDatabasesOrOnNeither) {
  const CrashCase& c = GetParam();
  const std::string gid = RunTag() + "-" + ShortName(c);
  const Transfer transfer{gid, c.direction, kPgAccount, kMyAccount, c.refused ? kTooMuch : kAmount};
  const std::string body = TransferBody(kPrefix, transfer, /*wait=*/false, /*timeout_ms=*/3'000);
  SCOPED_TRACE("gid " + gid + ", crash point " + c.point +
               " (TXC_CRASH_AFTER=" + std::to_string(c.after) + ")" +
               (c.then_point == nullptr
                    ? std::string()
                    : std::string(", then in recovery ") + c.then_point +
                          " (TXC_CRASH_AFTER=" + std::to_string(c.then_after) + ")") +
               ", transfer " + transfer.ToString());

  testing::TempDir scratch;
  const uint16_t port = testing::FreeLoopbackPort();
  const std::string config_file = scratch.File("txcoord.yaml");
  WriteConfigFile(config_file, {kNode, port, scratch.File("log"), pg_dsn_, mysql_dsn_});

  // Waits for `dying` to end at `point`, and says so loudly if it does not.
  const auto expect_crash = [](Coordinator& dying, const char* point,
                               int after) -> ::testing::AssertionResult {
    const std::optional<int> died = dying.process().WaitForExit(kCrashTimeout);
    if (!died.has_value()) {
      dying.Kill();
      return ::testing::AssertionFailure()
             << "crash point " << point << " (passage " << after << ") was not reached by "
             << dying.name() << " within " << kCrashTimeout.count()
             << " ms: the scenario does not pass it\n"
             << dying.StderrTail();
    }
    if (*died != 128 + SIGKILL) {
      return ::testing::AssertionFailure()
             << dying.name() << " ended with status " << *died << ", not by its crash point\n"
             << dying.StderrTail();
    }
    if (dying.Stderr().find(std::string("crash point ") + point + " reached") ==
        std::string::npos) {
      return ::testing::AssertionFailure() << dying.name() << " was SIGKILLed, but not by crash "
                                           << "point " << point << "\n"
                                           << dying.StderrTail();
    }
    return ::testing::AssertionSuccess();
  };

  // 1. The coordinator that dies at the point.
  Coordinator first(TXCOORD_PATH, config_file, scratch.path(), "first", port,
                    {{"TXC_CRASH_AT", c.point}, {"TXC_CRASH_AFTER", std::to_string(c.after)}});
  ASSERT_TRUE(first.WaitReady(kReadyTimeout));
  const HttpResult submitted = HttpCall(port, "POST", "/v1/transactions", body, seconds(10));
  // 202 once BEGIN is durable; the connection may also drop when the point comes first.
  if (submitted.answered) {
    ASSERT_EQ(submitted.status, 202) << submitted.body << "\n" << first.StderrTail();
  }
  ASSERT_TRUE(expect_crash(first, c.point, c.after));

  // 1b. A restart that dies again, while it recovers the transaction.
  std::unique_ptr<Coordinator> recovering;
  std::string recovering_tail;
  if (c.then_point != nullptr) {
    recovering = std::make_unique<Coordinator>(
        TXCOORD_PATH, config_file, scratch.path(), "recovering", port,
        std::map<std::string, std::string>{{"TXC_CRASH_AT", c.then_point},
                                           {"TXC_CRASH_AFTER", std::to_string(c.then_after)}});
    ASSERT_TRUE(expect_crash(*recovering, c.then_point, c.then_after)) << first.StderrTail();
    recovering_tail = recovering->StderrTail();
  }

  // 2. The restart, on the same log, without the crash point.
  Coordinator second(TXCOORD_PATH, config_file, scratch.path(), "second", port, {});
  ASSERT_TRUE(second.WaitReady(kReadyTimeout)) << first.StderrTail() << recovering_tail;
  // Recovery is done before ready: the restarted coordinator knows the transaction at once.
  const HttpResult known = HttpCall(port, "GET", "/v1/transactions/" + gid, "", seconds(5));
  EXPECT_TRUE(known.answered && known.status == 200)
      << "right after /readyz: " << known.status << " " << known.body << known.error;
  const auto final_deadline = std::chrono::steady_clock::now() + kFinalTimeout;
  DocumentView document;
  std::string last_answer;
  while (std::chrono::steady_clock::now() < final_deadline) {
    const HttpResult got = HttpCall(port, "GET", "/v1/transactions/" + gid, "", seconds(5));
    last_answer = got.answered ? std::to_string(got.status) + " " + got.body : got.error;
    if (got.answered && got.status == 200) {
      document = ParseDocument(got.body);
      if (document.outcome.has_value()) break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(document.outcome.has_value())
      << "the transaction is not final " << kFinalTimeout.count()
      << " ms after the restart (its BEGIN was durable before the crash, so the restarted "
         "coordinator must know it and finish it); last answer: "
      << last_answer << "\n"
      << first.StderrTail() << recovering_tail << second.StderrTail();
  const std::string outcome = *document.outcome;
  const std::string context = "document: " + last_answer + "\n" + first.StderrTail() +
                              recovering_tail + second.StderrTail();

  // Crash points all come before END: the restart had the transaction to recover.
  EXPECT_THAT(second.Stderr(), HasSubstr("event=recovery_resumed transactions=1"))
      << second.StderrTail();

  // 3. The invariants.
  EXPECT_EQ(outcome, c.expected) << context;
  EXPECT_EQ(document.state, outcome) << context;
  ASSERT_EQ(document.branches.size(), 2u) << context;
  for (const auto& [name, state] : document.branches) {
    EXPECT_EQ(state, outcome) << "branch " << name << "\n" << context;
  }
  const auto pg_balances = databases_->PgBalances(kPrefix);
  const auto my_balances = databases_->MyBalances(kPrefix);
  const int64_t pg_balance = pg_balances.at(kPgAccount);
  const int64_t my_balance = my_balances.at(kMyAccount);
  const bool pg_applied = databases_->PgTransfers(kPrefix).contains(gid);
  const bool my_applied = databases_->MyTransfers(kPrefix).contains(gid);
  const std::string data =
      "postgres: " + std::string(kPgAccount) + "=" + std::to_string(pg_balance) +
      (pg_applied ? ", applied" : ", not applied") + "; mariadb: " + kMyAccount + "=" +
      std::to_string(my_balance) + (my_applied ? ", applied" : ", not applied");
  EXPECT_EQ(pg_balance + my_balance, 2 * kStartBalance)
      << "money created or destroyed: " << data << "\n"
      << context;
  EXPECT_EQ(pg_applied, my_applied) << "applied on one side only: " << data << "\n" << context;
  if (outcome == "committed") {
    EXPECT_TRUE(pg_applied && my_applied) << "committed but not applied: " << data << "\n"
                                          << context;
    EXPECT_EQ(pg_balance, kStartBalance + transfer.PgDelta()) << data << "\n" << context;
    EXPECT_EQ(my_balance, kStartBalance + transfer.MyDelta()) << data << "\n" << context;
  } else {
    EXPECT_FALSE(pg_applied || my_applied) << "aborted but applied: " << data << "\n" << context;
    EXPECT_EQ(pg_balance, kStartBalance) << data << "\n" << context;
    EXPECT_EQ(my_balance, kStartBalance) << data << "\n" << context;
  }

  // Nothing prepared is left (phase 2 of a final transaction is done; a little grace for a
  // branch whose statement was still running in a session of the dead process).
  std::vector<PreparedBranch> prepared = databases_->Prepared(kNode);
  for (const auto grace_end = std::chrono::steady_clock::now() + kPreparedGrace;
       !prepared.empty() && std::chrono::steady_clock::now() < grace_end;
       prepared = databases_->Prepared(kNode)) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(prepared.empty()) << "left prepared: " << Describe(prepared) << "\n" << context;

  // An identical resubmission answers the same transaction, final.
  const HttpResult again = HttpCall(port, "POST", "/v1/transactions", body, seconds(10));
  ASSERT_TRUE(again.answered) << again.error << "\n" << second.StderrTail();
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(ParseDocument(again.body).outcome.value_or("null"), outcome) << again.body;

  EXPECT_EQ(second.Terminate(seconds(10)), 0) << second.StderrTail();
}

INSTANTIATE_TEST_SUITE_P(EveryPoint, TwoPhaseCrashTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<CrashCase>& param_info) {
                           return CaseName(param_info.param);
                         });

// ---- the in-doubt scan -------------------------------------------------------------------------

constexpr char kOrphanNode[] = "chaos-orphan";
constexpr char kOtherNode[] = "chaos-other";
constexpr char kOrphanPrefix[] = "chaos_orphan";

// Prepares, by hand on PostgreSQL, `statements` under xid `xid`.
void PreparePostgresByHand(const std::string& dsn, const std::vector<std::string>& statements,
                           const std::string& xid) {
  auto connection = testing::ConnectPostgres(dsn);
  testing::ExecPostgres(*connection, "BEGIN");
  for (const std::string& statement : statements) testing::ExecPostgres(*connection, statement);
  testing::ExecPostgres(*connection, "PREPARE TRANSACTION " + connection->quote(xid));
}

// Prepares, by hand on MariaDB, `statements` as XA branch `xid`, then disconnects (MariaDB lets
// only the preparing session finish a branch while that session is connected).
void PrepareMysqlByHand(const std::string& dsn, const std::vector<std::string>& statements,
                        const testing::XaXid& xid) {
  std::string error;
  const auto parsed = testing::ParseMysqlDsn(dsn, &error);
  ASSERT_TRUE(parsed.has_value()) << error;
  auto connection = testing::ConnectMysql(*parsed);
  testing::ExecMysql(*connection, "XA START " + testing::XaXidSql(xid));
  for (const std::string& statement : statements) testing::ExecMysql(*connection, statement);
  testing::ExecMysql(*connection, "XA END " + testing::XaXidSql(xid));
  testing::ExecMysql(*connection, "XA PREPARE " + testing::XaXidSql(xid));
  connection->close();
}

TEST(InDoubtScanChaosTest, SettlesThisNodesOrphansBeforeReadyAndLeavesOtherNodesAlone) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases databases(pg_dsn, mysql_dsn);
  databases.RollbackPrepared(kOrphanNode);
  databases.RollbackPrepared(kOtherNode);
  databases.CreateTables(kOrphanPrefix);
  databases.ResetAccounts(kOrphanPrefix, {{kPgAccount, kStartBalance}},
                          {{kMyAccount, kStartBalance}});
  const std::string accounts = std::string(kOrphanPrefix) + "_accounts";
  const std::string transfers = std::string(kOrphanPrefix) + "_transfers";

  testing::TempDir scratch;
  const uint16_t port = testing::FreeLoopbackPort();
  const std::string config_file = scratch.File("txcoord.yaml");
  WriteConfigFile(config_file, {kOrphanNode, port, scratch.File("log"), pg_dsn, mysql_dsn});

  // A committed transfer, so that the log knows one gid with a commit outcome; then a stop.
  const std::string committed_gid = RunTag() + "-orphan-committed";
  {
    Coordinator first(TXCOORD_PATH, config_file, scratch.path(), "first", port, {});
    ASSERT_TRUE(first.WaitReady(kReadyTimeout));
    const Transfer transfer{committed_gid, Direction::kPgToMy, kPgAccount, kMyAccount, kAmount};
    const HttpResult done =
        HttpCall(port, "POST", "/v1/transactions",
                 TransferBody(kOrphanPrefix, transfer, /*wait=*/true, 10'000), seconds(20));
    ASSERT_TRUE(done.answered && done.status == 200)
        << done.status << " " << done.body << done.error << "\n"
        << first.StderrTail();
    ASSERT_EQ(ParseDocument(done.body).outcome.value_or("null"), "committed") << done.body;
    ASSERT_EQ(first.Terminate(seconds(10)), 0) << first.StderrTail();
  }
  const int64_t pg_after_commit = kStartBalance - kAmount;
  const int64_t my_after_commit = kStartBalance + kAmount;

  // While it is down, branches are left prepared on both databases:
  //   - ours, for a gid the log has never seen (a crash between PREPARE and the log): roll back;
  //   - ours, under the xids of the committed gid (a late duplicate): commit, as the log says;
  //   - another node's: not ours to touch.
  const std::string unknown_gid = RunTag() + "-orphan-unknown";
  const std::string other_gid = RunTag() + "-orphan-other";
  const std::string unknown_pg_xid = std::string("txc:") + kOrphanNode + ":" + unknown_gid + ":0";
  const std::string committed_pg_xid =
      std::string("txc:") + kOrphanNode + ":" + committed_gid + ":0";
  const std::string other_pg_xid = std::string("txc:") + kOtherNode + ":" + other_gid + ":0";
  const testing::XaXid unknown_my_xid{"txc:" + unknown_gid, std::string(kOrphanNode) + ":1",
                                      7889763};
  const testing::XaXid committed_my_xid{"txc:" + committed_gid, std::string(kOrphanNode) + ":1",
                                        7889763};
  const testing::XaXid other_my_xid{"txc:" + other_gid, std::string(kOtherNode) + ":1", 7889763};
  const std::string late = committed_gid + "-late";
  PreparePostgresByHand(pg_dsn,
                        {"UPDATE " + accounts + " SET balance = balance - 10 WHERE id = 'alice'",
                         "INSERT INTO " + transfers + " VALUES ('" + unknown_gid + "')"},
                        unknown_pg_xid);
  PreparePostgresByHand(pg_dsn, {"INSERT INTO " + transfers + " VALUES ('" + late + "')"},
                        committed_pg_xid);
  PreparePostgresByHand(pg_dsn, {"INSERT INTO " + transfers + " VALUES ('" + other_gid + "')"},
                        other_pg_xid);
  ASSERT_NO_FATAL_FAILURE(
      PrepareMysqlByHand(mysql_dsn,
                         {"UPDATE " + accounts + " SET balance = balance + 10 WHERE id = 'bob'",
                          "INSERT INTO " + transfers + " VALUES ('" + unknown_gid + "')"},
                         unknown_my_xid));
  ASSERT_NO_FATAL_FAILURE(PrepareMysqlByHand(
      mysql_dsn, {"INSERT INTO " + transfers + " VALUES ('" + late + "')"}, committed_my_xid));
  ASSERT_NO_FATAL_FAILURE(PrepareMysqlByHand(
      mysql_dsn, {"INSERT INTO " + transfers + " VALUES ('" + other_gid + "')"}, other_my_xid));
  ASSERT_EQ(databases.Prepared(kOrphanNode).size(), 4u)
      << Describe(databases.Prepared(kOrphanNode));
  ASSERT_EQ(databases.Prepared(kOtherNode).size(), 2u) << Describe(databases.Prepared(kOtherNode));

  // The restart: by the time /readyz says 200, ours are settled.
  Coordinator second(TXCOORD_PATH, config_file, scratch.path(), "second", port, {});
  ASSERT_TRUE(second.WaitReady(kReadyTimeout));
  const std::vector<PreparedBranch> ours = databases.Prepared(kOrphanNode);
  const std::vector<PreparedBranch> others = databases.Prepared(kOtherNode);
  const auto pg_transfers = databases.PgTransfers(kOrphanPrefix);
  const auto my_transfers = databases.MyTransfers(kOrphanPrefix);
  const int64_t pg_balance = databases.PgBalances(kOrphanPrefix).at(kPgAccount);
  const int64_t my_balance = databases.MyBalances(kOrphanPrefix).at(kMyAccount);
  // Clean up the other node's branches whatever the verdict.
  testing::PostgresSqlstateOf(databases.pg(), "ROLLBACK PREPARED '" + other_pg_xid + "'");
  testing::MysqlErrorOf(databases.my(), "XA ROLLBACK " + testing::XaXidSql(other_my_xid));

  EXPECT_TRUE(ours.empty()) << "still prepared when /readyz answered 200: " << Describe(ours)
                            << "\n"
                            << second.StderrTail();
  EXPECT_EQ(others.size(), 2u) << "another node's branches must be left alone; prepared now: "
                               << Describe(others) << "\n"
                               << second.StderrTail();
  // Rolled back: the unknown gid's writes are gone on both sides.
  EXPECT_EQ(pg_balance, pg_after_commit);
  EXPECT_EQ(my_balance, my_after_commit);
  EXPECT_FALSE(pg_transfers.contains(unknown_gid));
  EXPECT_FALSE(my_transfers.contains(unknown_gid));
  // Committed: the log holds a commit for that gid.
  EXPECT_TRUE(pg_transfers.contains(committed_gid));
  EXPECT_TRUE(my_transfers.contains(committed_gid));
  EXPECT_TRUE(pg_transfers.contains(late)) << second.StderrTail();
  EXPECT_TRUE(my_transfers.contains(late)) << second.StderrTail();
  const std::string log = second.Stderr();
  EXPECT_THAT(log, HasSubstr("in-doubt scan: rollback " + unknown_pg_xid + " on pg"));
  EXPECT_THAT(log, HasSubstr("in-doubt scan: commit " + committed_pg_xid + " on pg"));
  EXPECT_THAT(log, HasSubstr("event=indoubt_scanned committed=2 rolled_back=2"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(other_gid)));

  EXPECT_TRUE(databases.Prepared(kOtherNode).empty()) << Describe(databases.Prepared(kOtherNode));
  EXPECT_EQ(second.Terminate(seconds(10)), 0) << second.StderrTail();
}

// ---- a slow participant ------------------------------------------------------------------------

constexpr char kSlowNode[] = "chaos-slow";
constexpr char kSlowPrefix[] = "chaos_slow";
constexpr int kSlowPrepareSeconds = 2;     // PREPARE TRANSACTION takes this long on PostgreSQL
constexpr int64_t kSlowTimeoutMs = 4'000;  // the transfer's timeout_ms: bounds each branch call

// The coordinator dies while a PREPARE it sent is still running in the database (a slow
// participant: a deferred constraint trigger makes PREPARE TRANSACTION take 2 s on PostgreSQL;
// MariaDB answers after half a second, DO SLEEP(0.5) coming first in its branch). The restart
// aborts at once, and ROLLBACK PREPARED finds nothing yet; the PREPARE lands a moment later.
// However that is handled, nothing of a transaction reported final may stay prepared once the
// old call's own bound (the branch timeout, which the adapter sets as statement_timeout) has
// passed. Two ways to get there:
//   - presumed abort: MariaDB votes yes and the coordinator dies on that vote;
//   - logged abort: MariaDB refuses (the CHECK), the abort decision is made durable and the
//     coordinator dies right after.
struct SlowCase {
  const char* name;
  const char* point;
  Direction direction;
  bool refused;
};

class SlowPrepareChaosTest : public ::testing::TestWithParam<SlowCase> {};

TEST_P(SlowPrepareChaosTest, APrepareStillRunningWhenTheCoordinatorDiesIsNotLeftPrepared) {
  const SlowCase& c = GetParam();
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases databases(pg_dsn, mysql_dsn);
  databases.RollbackPrepared(kSlowNode);
  databases.CreateTables(kSlowPrefix);
  const std::string accounts = std::string(kSlowPrefix) + "_accounts";
  testing::ExecPostgres(databases.pg(),
                        "CREATE OR REPLACE FUNCTION chaos_slow_prepare() RETURNS trigger "
                        "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(" +
                            std::to_string(kSlowPrepareSeconds) + "); RETURN NULL; END $$");
  testing::ExecPostgres(databases.pg(), "CREATE CONSTRAINT TRIGGER slow_prepare AFTER UPDATE ON " +
                                            accounts +
                                            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                                            "EXECUTE FUNCTION chaos_slow_prepare()");
  databases.ResetAccounts(kSlowPrefix, {{kPgAccount, kStartBalance}},
                          {{kMyAccount, kStartBalance}});

  testing::TempDir scratch;
  const uint16_t port = testing::FreeLoopbackPort();
  const std::string config_file = scratch.File("txcoord.yaml");
  WriteConfigFile(config_file, {kSlowNode, port, scratch.File("log"), pg_dsn, mysql_dsn});
  const std::string gid = RunTag() + "-slow-" + c.name;
  const Transfer transfer{gid, c.direction, kPgAccount, kMyAccount, c.refused ? kTooMuch : kAmount};
  SCOPED_TRACE("gid " + gid + ", crash point " + c.point + " (MariaDB's " +
               (c.refused ? "refusal" : "vote") +
               "), while PostgreSQL is still inside PREPARE TRANSACTION; transfer " +
               transfer.ToString());

  Coordinator first(TXCOORD_PATH, config_file, scratch.path(), "first", port,
                    {{"TXC_CRASH_AT", c.point}, {"TXC_CRASH_AFTER", "1"}});
  ASSERT_TRUE(first.WaitReady(kReadyTimeout));
  const HttpResult submitted =
      HttpCall(port, "POST", "/v1/transactions",
               TransferBody(kSlowPrefix, transfer, /*wait=*/false, kSlowTimeoutMs,
                            /*my_first=*/"DO SLEEP(0.5)"),
               seconds(10));
  if (submitted.answered) {
    ASSERT_EQ(submitted.status, 202) << submitted.body;
  }
  const std::optional<int> died = first.process().WaitForExit(kCrashTimeout);
  if (!died.has_value()) first.Kill();
  ASSERT_EQ(died, 128 + SIGKILL) << first.StderrTail();
  ASSERT_THAT(first.Stderr(), HasSubstr(std::string("crash point ") + c.point + " reached"));

  Coordinator second(TXCOORD_PATH, config_file, scratch.path(), "second", port, {});
  ASSERT_TRUE(second.WaitReady(kReadyTimeout));
  DocumentView document;
  std::string last_answer;
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < started + kFinalTimeout) {
    const HttpResult got = HttpCall(port, "GET", "/v1/transactions/" + gid, "", seconds(5));
    last_answer = got.answered ? std::to_string(got.status) + " " + got.body : got.error;
    if (got.answered && got.status == 200 && ParseDocument(got.body).outcome.has_value()) {
      document = ParseDocument(got.body);
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(document.outcome.has_value()) << last_answer << "\n" << second.StderrTail();
  EXPECT_EQ(*document.outcome, "aborted") << last_answer;
  const double final_after_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // Watch the databases until the old call's bound has surely passed, noting what is prepared.
  const auto watch_end = std::chrono::steady_clock::now() + milliseconds(2 * kSlowTimeoutMs);
  const auto since_ready = [&started] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  std::string seen_prepared;  // the branch and when it was first seen prepared
  double gone_at = -1;        // when it was seen gone again
  std::vector<PreparedBranch> prepared = databases.Prepared(kSlowNode);
  while (std::chrono::steady_clock::now() < watch_end) {
    prepared = databases.Prepared(kSlowNode);
    if (!prepared.empty() && seen_prepared.empty()) {
      seen_prepared = Describe(prepared) + " at +" + std::to_string(since_ready()) + " s";
    }
    if (prepared.empty() && !seen_prepared.empty() && gone_at < 0) gone_at = since_ready();
    std::this_thread::sleep_for(milliseconds(100));
  }
  prepared = databases.Prepared(kSlowNode);
  std::printf("slow prepare (%s abort): final %.3f s after /readyz; prepared branch seen: %s%s\n",
              c.name, final_after_s, seen_prepared.empty() ? "never" : seen_prepared.c_str(),
              gone_at < 0 ? "" : (", rolled back by +" + std::to_string(gone_at) + " s").c_str());
  const int64_t pg_balance = databases.PgBalances(kSlowPrefix).at(kPgAccount);
  databases.RollbackPrepared(kSlowNode);  // whatever the verdict: it holds a lock on the account
  EXPECT_TRUE(prepared.empty())
      << "transaction " << gid << " was reported final (" << *document.outcome << ", "
      << final_after_s << " s after /readyz), but its branch " << Describe(prepared)
      << " is still prepared " << 2 * kSlowTimeoutMs / 1000
      << " s later, holding its locks (first seen " << seen_prepared
      << " after /readyz). The restarted coordinator took ROLLBACK PREPARED's \"does not "
         "exist\" as done while the previous process's PREPARE was still running, and nothing "
         "rolled the branch back once it had landed.\n"
      << second.StderrTail();
  EXPECT_EQ(pg_balance, kStartBalance);
  EXPECT_EQ(second.Terminate(seconds(10)), 0) << second.StderrTail();
}

INSTANTIATE_TEST_SUITE_P(
    SlowPostgresPrepare, SlowPrepareChaosTest,
    ::testing::Values(SlowCase{"presumed", "after_prepare_reply", Direction::kPgToMy, false},
                      SlowCase{"logged", "after_decision_durable", Direction::kMyToPg, true}),
    [](const ::testing::TestParamInfo<SlowCase>& param_info) {
      return std::string(param_info.param.name) + "_abort";
    });

}  // namespace
}  // namespace txc::chaos
