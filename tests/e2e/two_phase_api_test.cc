// 2PC through the real API (API.md "Submit", "The transaction document", "Operate", "Participant
// contract", "Database branches", "Metrics"): txcoord runs as a process on a free loopback port
// with its own log directory and participants.allow = http://127.0.0.1:*; HTTP participants are
// TestHttpServer instances inside this process, scripted per operation, recording every request
// they get (and, across participants, the order of all of them). Database branches use the
// throwaway servers of scripts/dbs.sh (TXC_TEST_PG_DSN, TXC_TEST_MYSQL_DSN); the tests that need
// them fail, naming the variable, when they are missing.
//
// Every txcoord gets a node_id of its own, so its in-doubt scan never touches the prepared
// branches of another test running at the same time, and every test stops its txcoord with
// SIGTERM and expects exit code 0.
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <cppconn/connection.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/e2e/api_harness.h"
#include "tests/support/db_env.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

// ---------------------------------------------------------------------------------------------
// Databases (the mixed and restart tests)

// A table of this test on each server, and what is left prepared by this test's node.
class Databases {
 public:
  Databases(const std::string& pg_dsn, const std::string& mysql_dsn, const std::string& node_id)
      : node_id_(node_id), table_("e2e_" + node_id) {
    std::transform(table_.begin(), table_.end(), table_.begin(), [](unsigned char c) {
      return std::isalnum(c) != 0 ? static_cast<char>(std::tolower(c)) : '_';
    });
    pg_ = ConnectPostgres(pg_dsn);
    ExecPostgres(*pg_, "SET lock_timeout = '10s'");
    ExecPostgres(*pg_, "DROP TABLE IF EXISTS " + table_);
    ExecPostgres(*pg_, "CREATE TABLE " + table_ + " (id TEXT PRIMARY KEY, v INT NOT NULL)");
    std::string error;
    auto parsed = ParseMysqlDsn(mysql_dsn, &error);
    if (!parsed) throw std::runtime_error("TXC_TEST_MYSQL_DSN: " + error);
    mysql_ = ConnectMysql(*parsed);
    // A branch left prepared holds its locks: fail after 10 s instead of waiting for ever.
    ExecMysql(*mysql_, "SET SESSION innodb_lock_wait_timeout = 10");
    ExecMysql(*mysql_, "SET SESSION lock_wait_timeout = 10");
    ExecMysql(*mysql_, "DROP TABLE IF EXISTS " + table_);
    ExecMysql(*mysql_, "CREATE TABLE " + table_ +
                           " (id VARCHAR(64) PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
  }
  ~Databases() {
    try {
      const std::vector<std::string> left = PreparedLeft();
      EXPECT_THAT(left, IsEmpty()) << "prepared branches of node " << node_id_ << " left behind";
      std::vector<std::string> nodes = also_clean_;
      nodes.push_back(node_id_);
      for (const std::string& node : nodes) {
        for (const std::string& gid : PreparedPostgresGids(*pg_, "txc:" + node + ":")) {
          ExecPostgres(*pg_, "ROLLBACK PREPARED " + pg_->quote(gid));
        }
        for (const XaXid& xid : MysqlXidsOf(node)) {
          ExecMysql(*mysql_, "XA ROLLBACK " + XaXidSql(xid));
        }
      }
      ExecPostgres(*pg_, "DROP TABLE IF EXISTS " + table_);
      ExecMysql(*mysql_, "DROP TABLE IF EXISTS " + table_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "database clean-up failed: " << e.what();
    }
  }

  const std::string& table() const { return table_; }
  // Prepared branches of `node` are rolled back (without complaint) at the end too.
  void AlsoClean(const std::string& node) { also_clean_.push_back(node); }

  std::optional<int> PostgresValue(const std::string& id) {
    const pqxx::result rows =
        ExecPostgres(*pg_, "SELECT v FROM " + table_ + " WHERE id = " + pg_->quote(id));
    if (rows.empty()) return std::nullopt;
    return rows[0][0].as<int>();
  }
  std::optional<int> MysqlValue(const std::string& id) {
    // Ids of this test are [a-z0-9-] only.
    const std::string value =
        QueryMysqlString(*mysql_, "SELECT v FROM " + table_ + " WHERE id = '" + id + "'");
    if (value.empty()) return std::nullopt;
    return std::stoi(value);
  }
  void InsertMysql(const std::string& id, int value) {
    ExecMysql(*mysql_,
              "INSERT INTO " + table_ + " VALUES ('" + id + "', " + std::to_string(value) + ")");
  }

  // Prepared branches whose xid carries this test's node id, on both servers.
  std::vector<std::string> PreparedLeft() {
    std::vector<std::string> left = PreparedPostgresGids(*pg_, "txc:" + node_id_ + ":");
    for (const XaXid& xid : MysqlXidsOf(node_id_)) left.push_back(xid.gtrid + "," + xid.bqual);
    return left;
  }

 private:
  std::vector<XaXid> MysqlXidsOf(const std::string& node) {
    std::vector<XaXid> mine;
    for (const XaXid& xid : RecoverMysqlXids(*mysql_, "txc:")) {
      if (xid.bqual.rfind(node + ":", 0) == 0) mine.push_back(xid);
    }
    return mine;
  }

  std::string node_id_;
  std::vector<std::string> also_clean_;
  std::string table_;
  std::unique_ptr<pqxx::connection> pg_;
  std::unique_ptr<sql::Connection> mysql_;
};

std::string ResourcesYaml(const std::string& pg_dsn, const std::string& mysql_dsn) {
  return "[{name: orders, kind: postgres, dsn: \"" + pg_dsn +
         "\"}, {name: payments, kind: mysql, dsn: \"" + mysql_dsn + "\"}]";
}

std::string PostgresBranch(const std::string& table, const std::string& id, int value) {
  return "{\"name\":\"orders\",\"resource\":\"orders\",\"sql\":[{\"text\":\"INSERT INTO " + table +
         " (id, v) VALUES ($1, $2)\",\"params\":[\"" + id + "\"," + std::to_string(value) +
         "]},{\"text\":\"UPDATE " + table + " SET v = v + $1 WHERE id = $2\",\"params\":[1,\"" +
         id + "\"]}]}";
}

std::string MysqlBranch(const std::string& table, const std::string& id, int value) {
  return "{\"name\":\"payments\",\"resource\":\"payments\",\"sql\":[{\"text\":\"INSERT INTO " +
         table + " (id, v) VALUES (?, ?)\",\"params\":[\"" + id + "\"," + std::to_string(value) +
         "]}]}";
}

// ---------------------------------------------------------------------------------------------
// The fixture

class TwoPhaseApiTest : public ApiTest {};

const char kTimestampPattern[] =
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";
const char kTraceparentPattern[] = "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}";

// ---------------------------------------------------------------------------------------------
// Submit and the participant contract

TEST_F(TwoPhaseApiTest, AllYesPreparesEveryBranchThenCommitsEachWithTheContractHeaders) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const std::string body =
      R"({"gid":"order-1234","protocol":"2pc","timeout_ms":20000,"wait":true,"branches":[)"
      R"({"name":"order","prepare":{"url":")" +
      shop.Url("prepare") +
      R"(","body":{"item":"book","qty":2,"gift":false},"headers":{"X-Tenant":"t-1"}},)"
      R"("commit":{"url":")" +
      shop.Url("commit") +
      R"(","method":"PUT","body":{"item":"book"}},)"
      R"("abort":{"url":")" +
      shop.Url("abort") +
      R"("}},)"
      R"({"name":"payment","prepare":{"url":")" +
      bank.Url("prepare") +
      R"(","body":{"amount":30,"currency":"EUR","note":null}},)"
      R"("commit":{"url":")" +
      bank.Url("commit") + R"("},"abort":{"url":")" + bank.Url("abort") + R"("}}]})";

  const Reply reply = txc().Submit(body);
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  ASSERT_TRUE(document) << reply.body;
  EXPECT_EQ(Text(document, "gid"), "order-1234");
  EXPECT_EQ(Text(document, "protocol"), "2pc");
  EXPECT_EQ(Text(document, "state"), "committed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_FALSE(Flag(document, "stuck"));
  EXPECT_THAT(Text(document, "created_at"), MatchesRegex(kTimestampPattern));
  EXPECT_THAT(Text(document, "updated_at"), MatchesRegex(kTimestampPattern));
  EXPECT_LE(Text(document, "created_at"), Text(document, "updated_at"));
  ASSERT_TRUE(document->has("branches"));
  ASSERT_EQ(document->getArray("branches")->size(), 2u);
  for (const char* name : {"order", "payment"}) {
    const Json branch = Branch(document, name);
    ASSERT_TRUE(branch) << name;
    EXPECT_EQ(Text(branch, "state"), "committed") << name;
    EXPECT_EQ(Number(branch, "attempts"), 1) << name;
    EXPECT_TRUE(branch->has("last_error") && branch->isNull("last_error")) << name;
    EXPECT_FALSE(Flag(branch, "needs_operator")) << name;
  }
  EXPECT_EQ(Text(document->getArray("branches")->getObject(0), "name"), "order");

  // Phase 2 starts only when every branch has voted yes; nothing is aborted.
  const std::vector<std::string> calls = journal_.Calls("order-1234");
  ASSERT_EQ(calls.size(), 4u) << ::testing::PrintToString(calls);
  EXPECT_THAT(std::vector<std::string>(calls.begin(), calls.begin() + 2),
              ::testing::UnorderedElementsAre("order:prepare", "payment:prepare"));
  EXPECT_THAT(std::vector<std::string>(calls.begin() + 2, calls.end()),
              ::testing::UnorderedElementsAre("order:commit", "payment:commit"));

  const auto check_headers = [](const CapturedRequest& request, const std::string& branch,
                                const std::string& op) {
    SCOPED_TRACE(branch + " " + op);
    EXPECT_EQ(request.Header("Txc-Gid"), "order-1234");
    EXPECT_EQ(request.Header("Txc-Branch"), branch);
    EXPECT_EQ(request.Header("Txc-Op"), op);
    EXPECT_EQ(request.Header("Idempotency-Key"), "order-1234/" + branch + "/" + op);
    EXPECT_THAT(request.Header("traceparent"), MatchesRegex(kTraceparentPattern));
    for (const char* name : {"Txc-Gid", "Txc-Branch", "Txc-Op", "Idempotency-Key", "traceparent"}) {
      EXPECT_EQ(request.HeaderCount(name), 1u) << name;
    }
  };

  const auto order_prepare = shop.Requests("order-1234", "prepare");
  ASSERT_EQ(order_prepare.size(), 1u);
  check_headers(order_prepare[0], "order", "prepare");
  EXPECT_EQ(order_prepare[0].method, "POST");
  EXPECT_EQ(order_prepare[0].uri, "/shop/prepare");
  EXPECT_EQ(Canonical(order_prepare[0].body), Canonical(R"({"item":"book","qty":2,"gift":false})"));
  EXPECT_EQ(order_prepare[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(order_prepare[0].Header("X-Tenant"), "t-1");

  const auto order_commit = shop.Requests("order-1234", "commit");
  ASSERT_EQ(order_commit.size(), 1u);
  check_headers(order_commit[0], "order", "commit");
  EXPECT_EQ(order_commit[0].method, "PUT");
  EXPECT_EQ(order_commit[0].uri, "/shop/commit");
  EXPECT_EQ(Canonical(order_commit[0].body), Canonical(R"({"item":"book"})"));
  EXPECT_EQ(order_commit[0].Header("X-Tenant"), "") << "headers belong to their own call";

  const auto payment_prepare = bank.Requests("order-1234", "prepare");
  ASSERT_EQ(payment_prepare.size(), 1u);
  check_headers(payment_prepare[0], "payment", "prepare");
  EXPECT_EQ(payment_prepare[0].uri, "/bank/prepare");
  EXPECT_EQ(Canonical(payment_prepare[0].body),
            Canonical(R"({"amount":30,"currency":"EUR","note":null})"));

  const auto payment_commit = bank.Requests("order-1234", "commit");
  ASSERT_EQ(payment_commit.size(), 1u);
  check_headers(payment_commit[0], "payment", "commit");
  EXPECT_EQ(payment_commit[0].method, "POST");
  EXPECT_EQ(payment_commit[0].body, "") << "a call without a body sends none";
  EXPECT_EQ(payment_commit[0].Header("Content-Length"), "0");

  EXPECT_EQ(shop.Count("order-1234", "abort") + bank.Count("order-1234", "abort"), 0u);

  // The same document afterwards through GET.
  const Reply got = txc().Document("order-1234");
  ASSERT_EQ(got.status, 200) << got;
  EXPECT_EQ(Text(got.json(), "outcome"), "committed");
  EXPECT_EQ(Text(got.json(), "created_at"), Text(document, "created_at"));
}

TEST_F(TwoPhaseApiTest, ANoVoteAbortsEveryBranchIncludingTheOneThatVotedNo) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.Respond("prepare", 409, "insufficient funds");

  const Reply reply =
      txc().Submit(Spec{"no-vote-1", {shop.BranchJson("order"), bank.BranchJson("payment")}});
  ASSERT_EQ(reply.status, 200) << reply;
  const Json document = reply.json();
  EXPECT_EQ(Text(document, "state"), "aborted");
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_FALSE(Flag(document, "stuck"));
  EXPECT_THAT(BranchStates(document), ElementsAre("aborted", "aborted"));
  // The no vote's reason stays readable: it is why the transaction aborted.
  EXPECT_THAT(Text(Branch(document, "payment"), "last_error"), HasSubstr("409"));
  EXPECT_THAT(Text(Branch(document, "payment"), "last_error"), HasSubstr("insufficient funds"));

  EXPECT_EQ(bank.Count("no-vote-1", "prepare"), 1u) << "a 409 is never retried";
  EXPECT_EQ(bank.Count("no-vote-1", "abort"), 1u) << "the branch that voted no gets abort too";
  EXPECT_EQ(shop.Count("no-vote-1", "prepare"), 1u);
  EXPECT_EQ(shop.Count("no-vote-1", "abort"), 1u);
  EXPECT_EQ(shop.Count("no-vote-1", "commit") + bank.Count("no-vote-1", "commit"), 0u);
  const auto aborts = bank.Requests("no-vote-1", "abort");
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].Header("Idempotency-Key"), "no-vote-1/payment/abort");
  EXPECT_EQ(aborts[0].uri, "/bank/abort");
}

TEST_F(TwoPhaseApiTest, A5xxPrepareIsRetriedWithTheSameKeyUntilItSucceeds) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("prepare", [](const CapturedRequest&, int nth) {
    Answer answer;
    answer.status = nth <= 2 ? 503 : 200;
    return answer;
  });

  const Reply reply =
      txc().Submit(Spec{"retry-prepare-1", {shop.BranchJson("order"), bank.BranchJson("payment")}});
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_EQ(Text(reply.json(), "outcome"), "committed");
  EXPECT_THAT(BranchStates(reply.json()), ElementsAre("committed", "committed"));

  const auto prepares = bank.Requests("retry-prepare-1", "prepare");
  ASSERT_EQ(prepares.size(), 3u);
  for (const auto& request : prepares) {
    EXPECT_EQ(request.Header("Idempotency-Key"), "retry-prepare-1/payment/prepare");
  }
  EXPECT_EQ(shop.Count("retry-prepare-1", "prepare"), 1u);
  EXPECT_EQ(shop.Count("retry-prepare-1", "commit"), 1u);
  EXPECT_EQ(bank.Count("retry-prepare-1", "commit"), 1u);
  EXPECT_EQ(shop.Count("retry-prepare-1", "abort") + bank.Count("retry-prepare-1", "abort"), 0u);

  const std::string metrics = txc().Metrics();
  EXPECT_EQ(MetricValue(metrics, "txc_retries_total", {{"protocol", "2pc"}, {"op", "prepare"}}), 2);
  EXPECT_EQ(MetricValue(metrics, "txc_branch_calls_total",
                        {{"protocol", "2pc"}, {"op", "prepare"}, {"result", "transient"}}),
            2);
}

TEST_F(TwoPhaseApiTest, APrepareThatNeverAnswersInTimeAbortsOnceTimeoutMsHasPassed) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant slow("slow", &journal_);
  slow.On("prepare", [](const CapturedRequest&, int) {
    Answer answer;
    answer.delay = 20s;  // cut short when the server stops
    return answer;
  });
  // The prepare call gives up after 1500 ms; the transaction's phase 1 after 600 ms.
  const std::string slow_branch = R"({"name":"slow","prepare":{"url":")" + slow.Url("prepare") +
                                  R"(","timeout_ms":1500},"commit":{"url":")" + slow.Url("commit") +
                                  R"("},"abort":{"url":")" + slow.Url("abort") + R"("}})";
  Spec spec{"deadline-1", {shop.BranchJson("fast"), slow_branch}};
  spec.timeout_ms = 600;

  const auto start = std::chrono::steady_clock::now();
  const Reply reply = txc().Submit(spec);
  const auto answered_after = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_GE(answered_after, 550ms) << "wait: true answers at the end or once timeout_ms passed";
  const Json answered = reply.json();
  if (IsNull(answered, "outcome")) {
    EXPECT_THAT(Text(answered, "state"), ::testing::AnyOf("preparing", "aborting"));
  } else {
    EXPECT_EQ(Text(answered, "outcome"), "aborted");
  }

  const Json document = txc().WaitFinal("deadline-1", 15s);
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "state"), "aborted");
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_THAT(BranchStates(document), ElementsAre("aborted", "aborted"));
  EXPECT_EQ(slow.Count("deadline-1", "prepare"), 1u);
  EXPECT_EQ(slow.Count("deadline-1", "abort"), 1u);
  EXPECT_EQ(shop.Count("deadline-1", "abort"), 1u);
  EXPECT_EQ(shop.Count("deadline-1", "commit") + slow.Count("deadline-1", "commit"), 0u);
  // The abort reaches the silent branch only after its prepare call ended (no abort may overtake
  // a prepare that could still land).
  EXPECT_THAT(journal_.Calls("deadline-1"), ::testing::Contains("slow:abort"));
  const auto calls = journal_.Calls("deadline-1");
  const auto slow_prepare = std::find(calls.begin(), calls.end(), "slow:prepare") - calls.begin();
  const auto slow_abort = std::find(calls.begin(), calls.end(), "slow:abort") - calls.begin();
  EXPECT_LT(slow_prepare, slow_abort) << ::testing::PrintToString(calls);
}

TEST_F(TwoPhaseApiTest, A5xxCommitIsRetriedPastTheTimeoutUntilItSucceeds) {
  StartTxcoord();
  // Declared before the participants, whose handlers use them, so they outlive the servers.
  std::mutex mu;
  std::optional<std::chrono::steady_clock::time_point> first_commit;
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  // Every commit fails with 500 for 1.5 s, three times the transaction's timeout_ms: phase 2 is
  // not bounded by it.
  bank.On("commit", [&](const CapturedRequest&, int) {
    std::lock_guard lock(mu);
    const auto now = std::chrono::steady_clock::now();
    if (!first_commit) first_commit = now;
    Answer answer;
    answer.status = now - *first_commit < 1500ms ? 500 : 200;
    answer.body = answer.status == 500 ? "database is down" : "";
    return answer;
  });
  Spec spec{"retry-commit-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.timeout_ms = 500;
  spec.wait = false;
  spec.retry_initial_ms = 50;
  spec.retry_max_ms = 200;

  const Reply reply = txc().Submit(spec);
  ASSERT_EQ(reply.status, 202) << reply;
  const Json failing = txc().WaitForDocument(
      "retry-commit-1",
      [](const Json& d) {
        return Text(d, "state") == "committing" &&
               Text(Branch(d, "payment"), "last_error").find("500") != std::string::npos;
      },
      "showed the failing commit");
  ASSERT_TRUE(failing);
  EXPECT_TRUE(IsNull(failing, "outcome"));
  EXPECT_FALSE(Flag(Branch(failing, "payment"), "needs_operator")) << "a 5xx is transient";

  const Json document = txc().WaitFinal("retry-commit-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
  const auto commits = bank.Requests("retry-commit-1", "commit");
  EXPECT_GE(commits.size(), 3u);
  for (const auto& request : commits) {
    EXPECT_EQ(request.Header("Idempotency-Key"), "retry-commit-1/payment/commit");
  }
  EXPECT_EQ(shop.Count("retry-commit-1", "commit"), 1u);
  EXPECT_EQ(shop.Count("retry-commit-1", "abort") + bank.Count("retry-commit-1", "abort"), 0u);
  EXPECT_GE(
      MetricValue(txc().Metrics(), "txc_retries_total", {{"protocol", "2pc"}, {"op", "commit"}}),
      2);
}

TEST_F(TwoPhaseApiTest, A404OnCommitNeedsAnOperatorAndRetryFinishesItOnceItIsFixed) {
  StartTxcoord();
  std::atomic<bool> fixed{false};
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("commit", [&](const CapturedRequest&, int) {
    Answer answer;
    answer.status = fixed ? 200 : 404;
    answer.body = fixed ? "" : "no such endpoint";
    return answer;
  });
  Spec spec{"operator-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;
  spec.retry_initial_ms = 20;
  spec.retry_max_ms = 120'000;  // the longest backoff is far beyond this test

  ASSERT_EQ(txc().Submit(spec).status, 202);
  const Json stuck = txc().WaitForDocument(
      "operator-1", [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
      "waited for an operator");
  ASSERT_TRUE(stuck);
  EXPECT_EQ(Text(stuck, "state"), "committing");
  EXPECT_TRUE(IsNull(stuck, "outcome"));
  EXPECT_TRUE(Flag(stuck, "stuck"));
  EXPECT_EQ(Text(Branch(stuck, "order"), "state"), "committed");
  EXPECT_EQ(Text(Branch(stuck, "payment"), "state"), "prepared");
  EXPECT_THAT(Text(Branch(stuck, "payment"), "last_error"), HasSubstr("404"));

  const Reply listed = txc().Get("/v1/transactions?stuck=true");
  ASSERT_EQ(listed.status, 200) << listed;
  EXPECT_THAT(listed.body, HasSubstr("\"operator-1\""));

  // A permanent error in phase 2 is retried only at the longest backoff: no new call meanwhile.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(bank.Count("operator-1", "commit"), 1u);

  fixed = true;
  const Reply retried = txc().Post("/v1/transactions/operator-1/retry");
  ASSERT_EQ(retried.status, 200) << retried;
  EXPECT_EQ(Text(retried.json(), "gid"), "operator-1");

  const Json document = txc().WaitFinal("operator-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "state"), "committed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_FALSE(Flag(document, "stuck"));
  EXPECT_FALSE(Flag(Branch(document, "payment"), "needs_operator"));
  EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
  EXPECT_EQ(bank.Count("operator-1", "commit"), 2u);
  EXPECT_EQ(shop.Count("operator-1", "commit"), 1u);

  const Reply again = txc().Post("/v1/transactions/operator-1/retry");
  EXPECT_EQ(again.status, 409) << again;
  EXPECT_EQ(again.ErrorCode(), "conflict");
}

TEST_F(TwoPhaseApiTest, EveryStatusClassOfTheParticipantContractIsHandledAsTheTableSays) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  // The bank's prepare answer per transaction: `first` on the first call, 200 afterwards.
  const std::map<std::string, int> first = {{"st-204", 204},  {"st-429", 429}, {"st-408", 408},
                                            {"st-400", 400},  {"st-302", 302}, {"st-closed", -1},
                                            {"st-abort", 409}};
  bank.On("prepare", [&](const CapturedRequest& request, int nth) {
    Answer answer;
    const auto it = first.find(request.Header("Txc-Gid"));
    if (it == first.end() || nth > 1) return answer;
    if (it->second == -1) {
      answer.kind = Answer::Kind::kCloseWithoutAnswer;
    } else {
      answer.status = it->second;
      if (it->second == 302) answer.headers["Location"] = "http://127.0.0.1:1/elsewhere";
    }
    return answer;
  });
  bank.Respond("commit", 202);
  // The shop's abort fails twice with 503 before it works: phase 2 is retried.
  shop.On("abort", [](const CapturedRequest&, int nth) {
    Answer answer;
    answer.status = nth <= 2 ? 503 : 200;
    return answer;
  });
  struct Expectation {
    std::string gid;
    std::string outcome;
    size_t bank_prepares;
  };
  const std::vector<Expectation> expectations = {
      {"st-204", "committed", 1},     // any 2xx is a yes
      {"st-429", "committed", 2},     // 429: transient, retried
      {"st-408", "committed", 2},     // 408: transient, retried
      {"st-closed", "committed", 2},  // no answer: retried
      {"st-400", "aborted", 1},       // another 4xx in phase 1: as refused, never retried
      {"st-302", "aborted", 1},       // a redirect is not followed: permanent
      {"st-abort", "aborted", 1},     // 409; the shop's abort needs three calls
  };
  for (const Expectation& e : expectations) {
    SCOPED_TRACE(e.gid);
    const Reply reply =
        txc().Submit(Spec{e.gid, {shop.BranchJson("order"), bank.BranchJson("payment")}});
    ASSERT_EQ(reply.status, 200) << reply;
    const Json document = reply.json();
    EXPECT_EQ(Text(document, "outcome"), e.outcome) << reply;
    EXPECT_EQ(bank.Count(e.gid, "prepare"), e.bank_prepares);
    const std::string phase2 = e.outcome == "committed" ? "commit" : "abort";
    const std::string other = e.outcome == "committed" ? "abort" : "commit";
    EXPECT_EQ(bank.Count(e.gid, phase2), 1u);
    EXPECT_EQ(shop.Count(e.gid, other) + bank.Count(e.gid, other), 0u);
    if (e.outcome == "aborted") {
      EXPECT_EQ(shop.Count(e.gid, "abort"), 3u) << "a 503 on abort is retried until it works";
      EXPECT_THAT(BranchStates(document), ElementsAre("aborted", "aborted"));
    } else {
      EXPECT_EQ(shop.Count(e.gid, "commit"), 1u);
      EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
    }
  }
  const Json redirected = txc().Document("st-302").json();
  EXPECT_THAT(Text(Branch(redirected, "payment"), "last_error"), HasSubstr("302"));
}

TEST_F(TwoPhaseApiTest, WaitFalseAnswers202AsSoonAsBeginIsDurableThenGetFollowsIt) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const auto gate = bank.Block("prepare");
  Spec spec{"async-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;

  const auto start = std::chrono::steady_clock::now();
  const Reply reply = txc().Submit(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ASSERT_EQ(reply.status, 202) << reply;
  const Json accepted = reply.json();
  EXPECT_EQ(Text(accepted, "gid"), "async-1");
  EXPECT_EQ(Text(accepted, "protocol"), "2pc");
  EXPECT_EQ(Text(accepted, "state"), "preparing");
  EXPECT_TRUE(accepted->has("outcome") && accepted->isNull("outcome"));
  EXPECT_FALSE(Flag(accepted, "stuck"));
  ASSERT_EQ(BranchStates(accepted).size(), 2u);

  ASSERT_TRUE(WaitUntil([&] { return bank.Count("async-1", "prepare") == 1; }, 10s));
  const Reply running = txc().Document("async-1");
  ASSERT_EQ(running.status, 200) << running;
  EXPECT_EQ(Text(running.json(), "state"), "preparing");
  EXPECT_TRUE(IsNull(running.json(), "outcome"));
  EXPECT_EQ(Text(Branch(running.json(), "payment"), "state"), "pending");

  gate->Open();
  const Json document = txc().WaitFinal("async-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "state"), "committed");
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_EQ(Text(document, "created_at"), Text(accepted, "created_at"));
}

TEST_F(TwoPhaseApiTest, AnIdenticalResubmissionAnswers200WithTheSameTransactionAndCallsNothing) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const auto gate = bank.Block("prepare");
  Spec spec{"again-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;

  const Reply first = txc().Submit(spec);
  ASSERT_EQ(first.status, 202) << first;
  ASSERT_TRUE(WaitUntil([&] { return bank.Count("again-1", "prepare") == 1; }, 10s));

  // While it runs: the same transaction (wait is not part of the transaction).
  const Reply while_running = txc().Submit(spec);
  ASSERT_EQ(while_running.status, 200) << while_running;
  EXPECT_EQ(Text(while_running.json(), "gid"), "again-1");
  EXPECT_EQ(Text(while_running.json(), "state"), "preparing");
  EXPECT_EQ(Text(while_running.json(), "created_at"), Text(first.json(), "created_at"));
  Spec waiting = spec;
  waiting.wait = true;
  const Reply waited = txc().Submit(waiting);
  ASSERT_EQ(waited.status, 200) << waited;
  EXPECT_EQ(Text(waited.json(), "created_at"), Text(first.json(), "created_at"));

  gate->Open();
  ASSERT_TRUE(txc().WaitFinal("again-1"));
  const Reply after = txc().Submit(spec);
  ASSERT_EQ(after.status, 200) << after;
  EXPECT_EQ(Text(after.json(), "outcome"), "committed");
  EXPECT_EQ(Text(after.json(), "created_at"), Text(first.json(), "created_at"));

  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(shop.Count("again-1", "prepare"), 1u) << "no second prepare";
  EXPECT_EQ(bank.Count("again-1", "prepare"), 1u) << "no second prepare";
  EXPECT_EQ(shop.Count("again-1", "commit"), 1u);
  EXPECT_EQ(bank.Count("again-1", "commit"), 1u);
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_transactions_started_total", {{"protocol", "2pc"}}),
            1);
}

TEST_F(TwoPhaseApiTest, AnotherBodyWithAUsedGidIs409AndChangesNothing) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const Spec spec{"taken-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  ASSERT_EQ(txc().Submit(spec).status, 200);

  Spec other_timeout = spec;
  other_timeout.timeout_ms = 12'345;
  Spec other_branches{"taken-1", {shop.BranchJson("order")}};
  for (const Spec& other : {other_timeout, other_branches}) {
    const Reply conflict = txc().Submit(other);
    EXPECT_EQ(conflict.status, 409) << conflict;
    EXPECT_EQ(conflict.ErrorCode(), "conflict");
    EXPECT_THAT(conflict.ErrorMessage(), HasSubstr("taken-1"));
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(shop.Count("taken-1", "prepare"), 1u);
  EXPECT_EQ(bank.Count("taken-1", "prepare"), 1u);
  const Reply document = txc().Document("taken-1");
  ASSERT_EQ(document.status, 200);
  EXPECT_EQ(Text(document.json(), "outcome"), "committed");
  ASSERT_EQ(BranchStates(document.json()).size(), 2u);
}

TEST_F(TwoPhaseApiTest, ConcurrentIdenticalSubmissionsStartExactlyOneTransaction) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const auto gate = bank.Block("prepare");
  Spec spec{"race-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;
  std::vector<Reply> replies(8);
  {
    std::vector<std::thread> clients;
    for (size_t i = 0; i < replies.size(); ++i) {
      clients.emplace_back([&, i] { replies[i] = txc().Submit(spec); });
    }
    for (auto& client : clients) client.join();
  }
  int created = 0;
  int existing = 0;
  for (const Reply& reply : replies) {
    created += reply.status == 202 ? 1 : 0;
    existing += reply.status == 200 ? 1 : 0;
    EXPECT_THAT(reply.status, ::testing::AnyOf(200, 202)) << reply;
    EXPECT_EQ(Text(reply.json(), "gid"), "race-1");
    EXPECT_EQ(Text(reply.json(), "created_at"), Text(replies[0].json(), "created_at"));
  }
  EXPECT_EQ(created, 1) << "one submission starts it";
  EXPECT_EQ(existing, 7) << "the others get that transaction";
  gate->Open();
  const Json document = txc().WaitFinal("race-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_EQ(shop.Count("race-1", "prepare"), 1u);
  EXPECT_EQ(bank.Count("race-1", "prepare"), 1u);
  EXPECT_EQ(shop.Count("race-1", "commit"), 1u);
  EXPECT_EQ(bank.Count("race-1", "commit"), 1u);
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_transactions_started_total", {{"protocol", "2pc"}}),
            1);
}

TEST_F(TwoPhaseApiTest, ManyConcurrentTransactionsEachEndAsTheirVotesSay) {
  StartTxcoord();
  // Every fifth transaction gets a no from the bank.
  const auto refused = [](const std::string& gid) { return std::stoi(gid.substr(5)) % 5 == 0; };
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("prepare", [&](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = refused(request.Header("Txc-Gid")) ? 409 : 200;
    return answer;
  });
  constexpr int kClients = 8;
  constexpr int kEach = 5;
  std::vector<Reply> replies(kClients * kEach);
  {
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int k = 0; k < kEach; ++k) {
          const int i = c * kEach + k;
          replies[static_cast<size_t>(i)] = txc().Submit(Spec{
              "load-" + std::to_string(i), {shop.BranchJson("order"), bank.BranchJson("payment")}});
        }
      });
    }
    for (auto& client : clients) client.join();
  }
  int committed = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const std::string gid = "load-" + std::to_string(i);
    SCOPED_TRACE(gid);
    ASSERT_EQ(replies[i].status, 200) << replies[i];
    const Json document = replies[i].json();
    EXPECT_EQ(Text(document, "gid"), gid);
    const bool no = refused(gid);
    EXPECT_EQ(Text(document, "outcome"), no ? "aborted" : "committed");
    committed += no ? 0 : 1;
    EXPECT_EQ(shop.Count(gid, "prepare"), 1u);
    EXPECT_EQ(bank.Count(gid, "prepare"), 1u);
    EXPECT_EQ(shop.Count(gid, no ? "abort" : "commit"), 1u);
    EXPECT_EQ(bank.Count(gid, no ? "abort" : "commit"), 1u);
    EXPECT_EQ(shop.Count(gid, no ? "commit" : "abort"), 0u);
    EXPECT_EQ(bank.Count(gid, no ? "commit" : "abort"), 0u);
  }
  const std::string metrics = txc().Metrics();
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total", {{"outcome", "committed"}}),
            committed);
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_finished_total", {{"outcome", "aborted"}}),
            static_cast<double>(replies.size()) - committed);
  EXPECT_EQ(MetricValue(metrics, "txc_transactions_in_flight"), 0);
}

TEST_F(TwoPhaseApiTest, AGidIsGeneratedWhenAbsentAndTheLongestGidAndBranchNameWork) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  const Spec anonymous{"", {shop.BranchJson("order")}};
  const Reply first = txc().Submit(anonymous);
  ASSERT_EQ(first.status, 200) << first;
  const std::string gid = Text(first.json(), "gid");
  EXPECT_THAT(gid, MatchesRegex("[A-Za-z0-9._-]{1,56}"));
  EXPECT_EQ(Text(first.json(), "outcome"), "committed");
  EXPECT_EQ(shop.Count(gid, "prepare"), 1u);
  EXPECT_EQ(txc().Document(gid).status, 200);
  // Without a gid there is nothing to recognise: the same body again is a new transaction.
  const Reply second = txc().Submit(anonymous);
  ASSERT_EQ(second.status, 200) << second;
  EXPECT_NE(Text(second.json(), "gid"), gid);

  const std::string longest_gid(56, 'g');
  const std::string longest_name = std::string(63, 'n') + "9";
  const Reply longest = txc().Submit(Spec{longest_gid, {shop.BranchJson(longest_name)}});
  ASSERT_EQ(longest.status, 200) << longest;
  EXPECT_EQ(Text(longest.json(), "outcome"), "committed");
  const auto prepares = shop.Requests(longest_gid, "prepare");
  ASSERT_EQ(prepares.size(), 1u);
  EXPECT_EQ(prepares[0].Header("Idempotency-Key"), longest_gid + "/" + longest_name + "/prepare");
  EXPECT_EQ(prepares[0].Header("Txc-Branch"), longest_name);
}

TEST_F(TwoPhaseApiTest, InvalidBodiesAre400NamingTheFieldAndStartNothing) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  const std::string good = shop.BranchJson("order");
  const std::string prepare = "\"prepare\":{\"url\":\"" + shop.Url("prepare") + "\"}";
  const std::string commit = "\"commit\":{\"url\":\"" + shop.Url("commit") + "\"}";
  const std::string abort = "\"abort\":{\"url\":\"" + shop.Url("abort") + "\"}";
  std::string sixty_five;  // one branch more than limits.max_branches (64)
  for (int i = 0; i < 65; ++i) {
    sixty_five += (i > 0 ? "," : "") + shop.BranchJson("b" + std::to_string(i));
  }
  struct Case {
    std::string body;
    std::string field;  // the message names it
  };
  const std::vector<Case> cases = {
      {R"({"gid":"bad-1","protocol":"2pc","branches":[)", "body"},
      {R"([1,2,3])", "body"},
      {R"({"gid":"bad-2","branches":[)" + good + "]}", "protocol"},
      {R"({"gid":"bad-3","protocol":"4pc","branches":[)" + good + "]}", "protocol"},
      {R"({"gid":"bad/4","protocol":"2pc","branches":[)" + good + "]}", "gid"},
      {R"({"gid":")" + std::string(57, 'g') + R"(","protocol":"2pc","branches":[)" + good + "]}",
       "gid"},
      {R"({"gid":"bad-5","protocol":"2pc","timeout_ms":"soon","branches":[)" + good + "]}",
       "timeout_ms"},
      {R"({"gid":"bad-6","protocol":"2pc","wait":"yes","branches":[)" + good + "]}", "wait"},
      {R"({"gid":"bad-7","protocol":"2pc","branches":[]})", "branches"},
      {R"({"gid":"bad-8","protocol":"2pc"})", "branches"},
      {R"({"gid":"bad-9","protocol":"2pc","colour":"red","branches":[)" + good + "]}", "colour"},
      {R"({"gid":"bad-10","protocol":"2pc","branches":[)" + good + ",{\"name\":\"order\"," +
           prepare + "," + commit + "," + abort + "}]}",
       "branches[1].name"},
      {R"({"gid":"bad-11","protocol":"2pc","branches":[)" + good + ",{\"name\":\"pay\"," + commit +
           "," + abort + "}]}",
       "branches[1].prepare"},
      {R"({"gid":"bad-12","protocol":"2pc","branches":[)"
       R"({"name":"order","prepare":{"method":"POST"},)" +
           commit + "," + abort + "}]}",
       "branches[0].prepare.url"},
      {R"({"gid":"bad-13","protocol":"2pc","branches":[{"name":"order",)" + prepare +
           R"(,"commit":{"url":"ftp://127.0.0.1/x"},)" + abort + "}]}",
       "branches[0].commit.url"},
      {R"({"gid":"bad-14","protocol":"2pc","branches":[{"name":"order",)" + prepare + "," + commit +
           R"(,"abort":{"url":")" + shop.Url("abort") + R"(","method":"FETCH"}}]})",
       "branches[0].abort.method"},
      {R"({"gid":"bad-15","protocol":"2pc","branches":[{"name":"a b",)" + prepare + "," + commit +
           "," + abort + "}]}",
       "branches[0].name"},
      {R"({"gid":"bad-16","protocol":"2pc","branches":[{"name":"db","resource":"nowhere",)"
       R"("sql":[{"text":"SELECT 1"}]}]})",
       "branches[0].resource"},
      {R"({"gid":"bad-17","protocol":"2pc","retry":{"initial_ms":500,"max_ms":100},"branches":[)" +
           good + "]}",
       "retry.max_ms"},
      {R"({"gid":"bad-18","protocol":"2pc","timeout_ms":0,"branches":[)" + good + "]}",
       "timeout_ms"},
      {R"({"gid":"bad-19","protocol":"2pc","branches":[{"name":"order",)" + prepare + "," + commit +
           R"(,"abort":{"url":")" + shop.Url("abort") +
           R"(","headers":{"Txc-Gid":"someone-else"}}}]})",
       "branches[0].abort.headers.Txc-Gid"},
      {R"({"gid":"bad-20","protocol":"2pc","branches":[{"name":"order",)" + prepare + "," + commit +
           R"(,"abort":{"url":")" + shop.Url("abort") +
           R"(","headers":{"Idempotency-Key":"mine"}}}]})",
       "branches[0].abort.headers.Idempotency-Key"},
      {R"({"gid":"bad-21","protocol":"2pc","branches":[)" + sixty_five + "]}", "branches"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    const Reply reply = txc().Submit(c.body);
    EXPECT_EQ(reply.status, 400) << reply;
    EXPECT_FALSE(reply.ErrorCode().empty()) << reply;
    EXPECT_THAT(reply.ErrorMessage(), HasSubstr(c.field)) << reply;
  }
  for (int i = 1; i <= 21; ++i) {
    const Reply missing = txc().Document("bad-" + std::to_string(i));
    EXPECT_EQ(missing.status, 404) << "bad-" << i << ": " << missing;
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(shop.TotalRequests(), 0u);
  const Reply list = txc().Get("/v1/transactions");
  ASSERT_EQ(list.status, 200) << list;
  EXPECT_EQ(list.json()->getArray("transactions")->size(), 0u) << list.body;
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_transactions_started_total"), 0);
}

TEST_F(TwoPhaseApiTest, AUrlOutsideParticipantsAllowIs400AndNothingIsCalledOrLogged) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant outside("outside", &journal_);
  // Reachable, but not as written: participants.allow is http://127.0.0.1:* and this says
  // localhost.
  const std::string outside_url =
      "http://localhost:" + std::to_string(outside.port()) + "/outside/prepare";
  const std::string outside_branch = R"({"name":"payment","prepare":{"url":")" + outside_url +
                                     R"("},"commit":{"url":")" + outside.Url("commit") +
                                     R"("},"abort":{"url":")" + outside.Url("abort") + R"("}})";
  const Reply reply = txc().Submit(Spec{"outside-1", {shop.BranchJson("order"), outside_branch}});
  EXPECT_EQ(reply.status, 400) << reply;
  EXPECT_FALSE(reply.ErrorCode().empty());
  EXPECT_THAT(reply.ErrorMessage(), HasSubstr("branches[1].prepare.url"));

  const std::string other_outside = R"({"name":"order","prepare":{"url":")" + shop.Url("prepare") +
                                    R"("},"commit":{"url":"http://10.255.255.1:9/commit"},)"
                                    R"("abort":{"url":")" +
                                    shop.Url("abort") + R"("}})";
  const Reply second = txc().Submit(Spec{"outside-2", {other_outside}});
  EXPECT_EQ(second.status, 400) << second;
  EXPECT_THAT(second.ErrorMessage(), HasSubstr("branches[0].commit.url"));

  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(shop.TotalRequests(), 0u);
  EXPECT_EQ(outside.TotalRequests(), 0u);
  EXPECT_EQ(txc().Document("outside-1").status, 404);
  EXPECT_EQ(txc().Document("outside-2").status, 404);

  // Nothing reached the log either: after a restart the gids are still unknown and free.
  RestartTxcoord();
  EXPECT_EQ(txc().Document("outside-1").status, 404);
  const Reply reused = txc().Submit(Spec{"outside-1", {shop.BranchJson("order")}});
  EXPECT_EQ(reused.status, 200) << reused;
  EXPECT_EQ(Text(reused.json(), "outcome"), "committed");
}

// ---------------------------------------------------------------------------------------------
// Operate

TEST_F(TwoPhaseApiTest, AnUnknownGidIs404ForEveryVerb) {
  StartTxcoord();
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/transactions/nobody-here"},
           {"POST", "/v1/transactions/nobody-here/abort"},
           {"POST", "/v1/transactions/nobody-here/retry"}}) {
    const Reply reply = Exchange(txc().port(), method, path, "");
    EXPECT_EQ(reply.status, 404) << method << " " << path << ": " << reply;
    EXPECT_EQ(reply.ErrorCode(), "not_found") << reply;
    EXPECT_THAT(reply.ErrorMessage(), HasSubstr("nobody-here"));
  }
}

TEST_F(TwoPhaseApiTest, AbortBeforeTheDecisionAbortsEveryBranchAndIs409Afterwards) {
  StartTxcoord();
  std::atomic<bool> commit_works{false};
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const auto gate = bank.Block("prepare");
  Spec spec{"abort-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "abort-1", [](const Json& d) { return Text(Branch(d, "order"), "state") == "prepared"; },
      "had its order branch prepared"));
  ASSERT_TRUE(WaitUntil([&] { return bank.Count("abort-1", "prepare") == 1; }, 10s));

  const Reply aborted = txc().Post("/v1/transactions/abort-1/abort");
  ASSERT_EQ(aborted.status, 200) << aborted;
  EXPECT_EQ(Text(aborted.json(), "gid"), "abort-1");
  EXPECT_THAT(Text(aborted.json(), "state"), ::testing::AnyOf("aborting", "aborted"));
  // The prepared branch is aborted at once; the one whose prepare is still out gets its abort
  // after the prepare's reply.
  ASSERT_TRUE(WaitUntil([&] { return shop.Count("abort-1", "abort") == 1; }, 10s));
  EXPECT_EQ(bank.Count("abort-1", "abort"), 0u);
  gate->Open();

  const Json document = txc().WaitFinal("abort-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "state"), "aborted");
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("aborted", "aborted"));
  EXPECT_EQ(bank.Count("abort-1", "abort"), 1u);
  EXPECT_EQ(shop.Count("abort-1", "commit") + bank.Count("abort-1", "commit"), 0u);

  const Reply too_late = txc().Post("/v1/transactions/abort-1/abort");
  EXPECT_EQ(too_late.status, 409) << too_late;
  EXPECT_EQ(too_late.ErrorCode(), "conflict");

  // After a commit decision (phase 2 still running) abort is refused too.
  bank.On("commit", [&](const CapturedRequest&, int) {
    Answer answer;
    answer.status = commit_works ? 200 : 503;
    return answer;
  });
  bank.Respond("prepare", 200);
  Spec committing{"abort-2", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  committing.wait = false;
  ASSERT_EQ(txc().Submit(committing).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "abort-2", [](const Json& d) { return Text(d, "state") == "committing"; },
      "decided to commit"));
  const Reply refused = txc().Post("/v1/transactions/abort-2/abort");
  EXPECT_EQ(refused.status, 409) << refused;
  EXPECT_EQ(refused.ErrorCode(), "conflict");
  commit_works = true;
  const Json committed = txc().WaitFinal("abort-2");
  ASSERT_TRUE(committed);
  EXPECT_EQ(Text(committed, "outcome"), "committed");
  EXPECT_EQ(shop.Count("abort-2", "abort") + bank.Count("abort-2", "abort"), 0u);
}

TEST_F(TwoPhaseApiTest, ListFiltersByStateProtocolAndStuckAndPagesWithACursor) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("prepare", [](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = request.Header("Txc-Gid").rfind("list-no", 0) == 0 ? 409 : 200;
    return answer;
  });
  bank.On("commit", [](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = request.Header("Txc-Gid").rfind("list-stuck", 0) == 0 ? 404 : 200;
    return answer;
  });
  std::set<std::string> all;
  for (const std::string gid : {"list-ok-0", "list-ok-1", "list-ok-2", "list-ok-3", "list-ok-4",
                                "list-no-0", "list-no-1"}) {
    const Reply reply =
        txc().Submit(Spec{gid, {shop.BranchJson("order"), bank.BranchJson("payment")}});
    ASSERT_EQ(reply.status, 200) << reply;
    all.insert(gid);
  }
  Spec stuck{"list-stuck-0", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  stuck.wait = false;
  stuck.retry_max_ms = 120'000;
  ASSERT_EQ(txc().Submit(stuck).status, 202);
  all.insert("list-stuck-0");
  ASSERT_TRUE(txc().WaitForDocument(
      "list-stuck-0", [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
      "waited for an operator"));

  const auto gids_of = [](const Reply& reply) {
    std::vector<std::string> gids;
    const Json body = reply.json();
    if (!body || !body->has("transactions")) return gids;
    auto items = body->getArray("transactions");
    for (unsigned i = 0; i < items->size(); ++i) gids.push_back(Text(items->getObject(i), "gid"));
    return gids;
  };
  const auto list = [&](const std::string& query) {
    const Reply reply = txc().Get("/v1/transactions" + query);
    EXPECT_EQ(reply.status, 200) << query << ": " << reply;
    return reply;
  };

  EXPECT_THAT(gids_of(list("?state=committed")),
              ElementsAre("list-ok-0", "list-ok-1", "list-ok-2", "list-ok-3", "list-ok-4"));
  EXPECT_THAT(gids_of(list("?state=aborted")), ElementsAre("list-no-0", "list-no-1"));
  EXPECT_THAT(gids_of(list("?state=committing")), ElementsAre("list-stuck-0"));
  EXPECT_THAT(gids_of(list("?stuck=true")), ElementsAre("list-stuck-0"));
  EXPECT_THAT(gids_of(list("?stuck=true&state=committed")), IsEmpty());
  EXPECT_EQ(gids_of(list("?protocol=2pc")).size(), all.size());
  EXPECT_THAT(gids_of(list("?protocol=saga")), IsEmpty());
  EXPECT_EQ(gids_of(list("")).size(), all.size());
  {
    const Reply stuck_list = list("?stuck=true");
    const Json item = stuck_list.json()->getArray("transactions")->getObject(0);
    EXPECT_TRUE(Flag(item, "stuck"));
    EXPECT_EQ(Text(item, "protocol"), "2pc");
    EXPECT_TRUE(Flag(Branch(item, "payment"), "needs_operator"));
    EXPECT_TRUE(stuck_list.json()->isNull("next_cursor"));
  }

  // Pages of 3: every transaction once, in gid order, the last page's next_cursor null.
  std::vector<std::string> paged;
  std::string cursor;
  int pages = 0;
  for (; pages < 10; ++pages) {
    const Reply page = list("?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor));
    const std::vector<std::string> gids = gids_of(page);
    EXPECT_LE(gids.size(), 3u);
    paged.insert(paged.end(), gids.begin(), gids.end());
    const Json body = page.json();
    ASSERT_TRUE(body && body->has("next_cursor")) << page;
    if (body->isNull("next_cursor")) break;
    cursor = Text(body, "next_cursor");
    ASSERT_FALSE(cursor.empty());
  }
  EXPECT_EQ(pages + 1, 3) << "8 transactions in pages of 3";
  EXPECT_EQ(paged, std::vector<std::string>(all.begin(), all.end()));

  // A filtered listing pages too.
  const Reply first = list("?state=committed&limit=2");
  EXPECT_THAT(gids_of(first), ElementsAre("list-ok-0", "list-ok-1"));
  const Reply second = list("?state=committed&limit=2&cursor=" + Text(first.json(), "next_cursor"));
  EXPECT_THAT(gids_of(second), ElementsAre("list-ok-2", "list-ok-3"));
  const Reply third = list("?state=committed&limit=2&cursor=" + Text(second.json(), "next_cursor"));
  EXPECT_THAT(gids_of(third), ElementsAre("list-ok-4"));
  EXPECT_TRUE(third.json()->isNull("next_cursor"));

  // The stuck gauge follows (it is refreshed every 10 s).
  EXPECT_TRUE(Eventually(
      [&] {
        return MetricValue(txc().Metrics(), "txc_transactions_stuck", {{"protocol", "2pc"}}) == 1;
      },
      25s))
      << "txc_transactions_stuck{protocol=\"2pc\"} never became 1";

  for (const std::string query : {"?limit=0", "?limit=abc", "?stuck=maybe"}) {
    const Reply bad = txc().Get("/v1/transactions" + query);
    EXPECT_EQ(bad.status, 400) << query << ": " << bad;
    EXPECT_THAT(bad.ErrorMessage(), HasSubstr(query.substr(1, query.find('=') - 1))) << query;
  }
}

TEST_F(TwoPhaseApiTest, AtMaxInFlightSubmissionsAreShedWith503AndRetryAfterAndCounted) {
  StartTxcoord({{"TXC_LIMITS_MAX_IN_FLIGHT", "2"}});
  Participant shop("shop", &journal_);
  const auto gate = shop.Block("prepare");
  for (const std::string gid : {"busy-1", "busy-2"}) {
    Spec spec{gid, {shop.BranchJson("order")}};
    spec.wait = false;
    ASSERT_EQ(txc().Submit(spec).status, 202) << gid;
  }
  EXPECT_EQ(
      MetricValue(txc().Metrics(), "txc_requests_rejected_total", {{"reason", "in_flight_limit"}}),
      0);

  Spec third{"busy-3", {shop.BranchJson("order")}};
  third.wait = false;
  const Reply shed = txc().Submit(third);
  EXPECT_EQ(shed.status, 503) << shed;
  EXPECT_FALSE(shed.Header("Retry-After").empty()) << shed;
  EXPECT_FALSE(shed.ErrorCode().empty()) << shed;
  const Reply shed_again = txc().Submit(third);
  EXPECT_EQ(shed_again.status, 503) << shed_again;
  EXPECT_EQ(
      MetricValue(txc().Metrics(), "txc_requests_rejected_total", {{"reason", "in_flight_limit"}}),
      2);
  EXPECT_EQ(txc().Document("busy-3").status, 404) << "a shed submission leaves nothing";
  // A resubmission of a transaction that is already in flight is not new load.
  Spec first_again{"busy-1", {shop.BranchJson("order")}};
  first_again.wait = false;
  EXPECT_EQ(txc().Submit(first_again).status, 200);

  gate->Open();
  ASSERT_TRUE(txc().WaitFinal("busy-1"));
  ASSERT_TRUE(txc().WaitFinal("busy-2"));
  const Reply later = txc().Submit(third);
  EXPECT_EQ(later.status, 202) << later;
  ASSERT_TRUE(txc().WaitFinal("busy-3"));
  EXPECT_EQ(shop.Count("busy-3", "prepare"), 1u);
}

TEST_F(TwoPhaseApiTest, MetricsCountFinishedTransactionsAndBranchCalls) {
  StartTxcoord();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("prepare", [](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = request.Header("Txc-Gid") == "m-no" ? 409 : 200;
    return answer;
  });
  for (const std::string gid : {"m-yes-1", "m-yes-2", "m-no"}) {
    ASSERT_EQ(
        txc().Submit(Spec{gid, {shop.BranchJson("order"), bank.BranchJson("payment")}}).status,
        200);
  }
  const std::string metrics = txc().Metrics();
  const auto value = [&](const std::string& name, std::map<std::string, std::string> labels) {
    return MetricValue(metrics, name, labels);
  };
  EXPECT_EQ(value("txc_transactions_started_total", {{"protocol", "2pc"}}), 3);
  EXPECT_EQ(
      value("txc_transactions_finished_total", {{"protocol", "2pc"}, {"outcome", "committed"}}), 2);
  EXPECT_EQ(value("txc_transactions_finished_total", {{"protocol", "2pc"}, {"outcome", "aborted"}}),
            1);
  EXPECT_EQ(value("txc_transaction_duration_seconds_count",
                  {{"protocol", "2pc"}, {"outcome", "committed"}}),
            2);
  EXPECT_EQ(value("txc_transaction_duration_seconds_count",
                  {{"protocol", "2pc"}, {"outcome", "aborted"}}),
            1);
  EXPECT_EQ(
      value("txc_branch_calls_total", {{"protocol", "2pc"}, {"op", "prepare"}, {"result", "ok"}}),
      5);
  EXPECT_EQ(value("txc_branch_calls_total",
                  {{"protocol", "2pc"}, {"op", "prepare"}, {"result", "refused"}}),
            1);
  EXPECT_EQ(
      value("txc_branch_calls_total", {{"protocol", "2pc"}, {"op", "commit"}, {"result", "ok"}}),
      4);
  EXPECT_EQ(
      value("txc_branch_calls_total", {{"protocol", "2pc"}, {"op", "abort"}, {"result", "ok"}}), 2);
  EXPECT_EQ(value("txc_branch_calls_total", {{"protocol", "2pc"}}), 12);
  EXPECT_EQ(value("txc_branch_call_duration_seconds_count", {{"op", "prepare"}}), 6);
  EXPECT_EQ(value("txc_transactions_in_flight", {{"protocol", "2pc"}}), 0)
      << "nothing is left in flight";
  EXPECT_EQ(value("txc_retries_total", {{"protocol", "2pc"}}), 0);
  EXPECT_GE(value("txc_log_appends_total", {{"durability", "forced"}}), 3 * 2)
      << "BEGIN and the decision of each transaction are forced";
}

// ---------------------------------------------------------------------------------------------
// Databases

TEST_F(TwoPhaseApiTest, AMixedHttpPostgresAndMariadbTransactionCommitsAndAborts) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases db(pg_dsn, mysql_dsn, node_id_);
  StartTxcoord({{"TXC_RESOURCES", ResourcesYaml(pg_dsn, mysql_dsn)}});
  Participant ship("ship", &journal_);
  ship.On("prepare", [](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = request.Header("Txc-Gid") == "mixed-no" ? 409 : 200;
    return answer;
  });
  const std::string& t = db.table();

  // Commit: every branch prepared, then committed; the writes are visible.
  const Reply committed = txc().Submit(
      Spec{"mixed-yes",
           {ship.BranchJson("ship"), PostgresBranch(t, "yes", 10), MysqlBranch(t, "yes", 20)}});
  ASSERT_EQ(committed.status, 200) << committed;
  EXPECT_EQ(Text(committed.json(), "outcome"), "committed");
  EXPECT_THAT(BranchStates(committed.json()), ElementsAre("committed", "committed", "committed"));
  EXPECT_EQ(db.PostgresValue("yes"), 11);
  EXPECT_EQ(db.MysqlValue("yes"), 20);
  EXPECT_THAT(journal_.Calls("mixed-yes"), ElementsAre("ship:prepare", "ship:commit"));

  // Abort by the HTTP participant's no: neither database keeps anything.
  const Reply refused = txc().Submit(Spec{
      "mixed-no", {ship.BranchJson("ship"), PostgresBranch(t, "no", 1), MysqlBranch(t, "no", 2)}});
  ASSERT_EQ(refused.status, 200) << refused;
  EXPECT_EQ(Text(refused.json(), "outcome"), "aborted");
  EXPECT_THAT(BranchStates(refused.json()), ElementsAre("aborted", "aborted", "aborted"));
  EXPECT_EQ(db.PostgresValue("no"), std::nullopt);
  EXPECT_EQ(db.MysqlValue("no"), std::nullopt);
  EXPECT_THAT(journal_.Calls("mixed-no"), ElementsAre("ship:prepare", "ship:abort"));

  // Abort by a failing statement (a duplicate key in MariaDB): a no vote with the database's
  // message; the PostgreSQL write is rolled back, the HTTP branch aborted.
  db.InsertMysql("dup", 0);
  const Reply failed = txc().Submit(
      Spec{"mixed-sql",
           {ship.BranchJson("ship"), PostgresBranch(t, "dup", 3), MysqlBranch(t, "dup", 4)}});
  ASSERT_EQ(failed.status, 200) << failed;
  EXPECT_EQ(Text(failed.json(), "outcome"), "aborted");
  EXPECT_THAT(BranchStates(failed.json()), ElementsAre("aborted", "aborted", "aborted"));
  EXPECT_THAT(Text(Branch(failed.json(), "payments"), "last_error"), HasSubstr("Duplicate entry"));
  EXPECT_EQ(db.PostgresValue("dup"), std::nullopt);
  EXPECT_EQ(db.MysqlValue("dup"), 0);
  EXPECT_THAT(journal_.Calls("mixed-sql"), ElementsAre("ship:prepare", "ship:abort"));

  // The longest gid fits every XID (MySQL gtrid "txc:" + 56 bytes).
  const std::string longest_gid = std::string(52, 'm') + "-max";
  const Reply longest = txc().Submit(
      Spec{longest_gid,
           {ship.BranchJson("ship"), PostgresBranch(t, "long", 1), MysqlBranch(t, "long", 2)}});
  ASSERT_EQ(longest.status, 200) << longest;
  EXPECT_EQ(Text(longest.json(), "outcome"), "committed") << longest;
  EXPECT_EQ(db.PostgresValue("long"), 2);
  EXPECT_EQ(db.MysqlValue("long"), 2);

  // Statements are checked at submission: 400 naming the field, nothing run.
  const std::string bad_param =
      R"({"name":"orders","resource":"orders","sql":[{"text":"SELECT $1","params":[{"a":1}]}]})";
  const Reply param = txc().Submit(Spec{"mixed-bad-1", {ship.BranchJson("ship"), bad_param}});
  EXPECT_EQ(param.status, 400) << param;
  EXPECT_THAT(param.ErrorMessage(), HasSubstr("branches[1].sql[0].params[0]"));
  const std::string commits_itself =
      R"({"name":"payments","resource":"payments","sql":[{"text":"INSERT INTO )" + t +
      R"js( VALUES ('x', 1)"},{"text":"COMMIT"}]})js";
  const Reply own_commit =
      txc().Submit(Spec{"mixed-bad-2", {ship.BranchJson("ship"), commits_itself}});
  EXPECT_EQ(own_commit.status, 400) << own_commit;
  EXPECT_THAT(own_commit.ErrorMessage(), HasSubstr("branches[1].sql[1].text"));
  EXPECT_EQ(ship.Count("mixed-bad-1", "prepare") + ship.Count("mixed-bad-2", "prepare"), 0u);
  EXPECT_EQ(txc().Document("mixed-bad-2").status, 404);
  EXPECT_EQ(db.MysqlValue("x"), std::nullopt);

  EXPECT_THAT(db.PreparedLeft(), IsEmpty());
  const std::string metrics = txc().Metrics();
  EXPECT_EQ(
      MetricValue(metrics, "txc_branch_calls_total", {{"op", "prepare"}, {"result", "refused"}}),
      2);
}

TEST_F(TwoPhaseApiTest, ATransactionUndecidedAtARestartIsAbortedEverywhere) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases db(pg_dsn, mysql_dsn, node_id_);
  StartTxcoord({{"TXC_RESOURCES", ResourcesYaml(pg_dsn, mysql_dsn)}});
  Participant ship("ship", &journal_);
  const auto gate = ship.Block("prepare");
  const std::string& t = db.table();
  const std::string ship_branch = R"({"name":"ship","prepare":{"url":")" + ship.Url("prepare") +
                                  R"(","timeout_ms":30000},"commit":{"url":")" +
                                  ship.Url("commit") + R"("},"abort":{"url":")" +
                                  ship.Url("abort") + R"("}})";
  Spec spec{"undecided-1", {PostgresBranch(t, "u", 1), MysqlBranch(t, "u", 2), ship_branch}};
  spec.wait = false;
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "undecided-1",
      [](const Json& d) {
        return Text(Branch(d, "orders"), "state") == "prepared" &&
               Text(Branch(d, "payments"), "state") == "prepared";
      },
      "had its database branches prepared"));
  ASSERT_TRUE(WaitUntil([&] { return ship.Count("undecided-1", "prepare") == 1; }, 10s));
  ASSERT_EQ(db.PreparedLeft().size(), 2u);

  // Stopped while the ship branch has not voted (its prepare call is still out).
  const auto stop_start = std::chrono::steady_clock::now();
  RestartTxcoord();
  const auto restart_took = std::chrono::steady_clock::now() - stop_start;
  EXPECT_LT(restart_took, 15s) << "SIGTERM with a participant call outstanding took "
                               << std::chrono::duration_cast<milliseconds>(restart_took).count()
                               << " ms (shutdown_grace_ms is 5000)";

  // Presumed abort: every branch gets abort, nothing is applied, nothing stays prepared.
  const Json document = txc().WaitFinal("undecided-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  EXPECT_THAT(BranchStates(document), ElementsAre("aborted", "aborted", "aborted"));
  EXPECT_EQ(ship.Count("undecided-1", "abort"), 1u);
  EXPECT_EQ(ship.Count("undecided-1", "commit"), 0u);
  EXPECT_EQ(ship.Count("undecided-1", "prepare"), 1u) << "no prepare after the restart";
  EXPECT_EQ(db.PostgresValue("u"), std::nullopt);
  EXPECT_EQ(db.MysqlValue("u"), std::nullopt);
  EXPECT_THAT(db.PreparedLeft(), IsEmpty());
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_recovered_transactions_total", {{"protocol", "2pc"}}),
            1);
  gate->Open();
}

TEST_F(TwoPhaseApiTest, AtStartTheInDoubtScanRollsBackOrphansOfThisNodeOnly) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases db(pg_dsn, mysql_dsn, node_id_);
  const std::string& t = db.table();
  const std::string foreign = node_id_ + "x";
  db.AlsoClean(foreign);
  // Prepared by "an earlier life of this node" (and one of another node) on sessions that are
  // gone now, as after a crash between PREPARE and the log.
  {
    auto pg = ConnectPostgres(pg_dsn);
    for (const std::string& node : {node_id_, foreign}) {
      ExecPostgres(*pg, "BEGIN");
      ExecPostgres(*pg, "INSERT INTO " + t + " VALUES (" + pg->quote("o-" + node) + ", 1)");
      ExecPostgres(*pg, "PREPARE TRANSACTION " + pg->quote("txc:" + node + ":orphan-1:0"));
    }
    std::string error;
    for (const std::string& node : {node_id_, foreign}) {
      // One session per XA branch; it disconnects at the end of the iteration.
      auto my = ConnectMysql(*ParseMysqlDsn(mysql_dsn, &error));
      const std::string xid = XaXidSql({"txc:orphan-1", node + ":1", 7889763});
      ExecMysql(*my, "XA START " + xid);
      ExecMysql(*my, "INSERT INTO " + t + " VALUES ('o-" + node + "', 1)");
      ExecMysql(*my, "XA END " + xid);
      ExecMysql(*my, "XA PREPARE " + xid);
    }
  }
  ASSERT_EQ(db.PreparedLeft().size(), 2u);

  StartTxcoord({{"TXC_RESOURCES", ResourcesYaml(pg_dsn, mysql_dsn)}});
  // Ready means the first scan is done.
  EXPECT_THAT(db.PreparedLeft(), IsEmpty());
  EXPECT_EQ(db.PostgresValue("o-" + node_id_), std::nullopt);
  EXPECT_EQ(db.MysqlValue("o-" + node_id_), std::nullopt);
  const std::string metrics = txc().Metrics();
  EXPECT_EQ(MetricValue(metrics, "txc_indoubt_resolved_total",
                        {{"resource", "orders"}, {"action", "rollback"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_indoubt_resolved_total",
                        {{"resource", "payments"}, {"action", "rollback"}}),
            1);
  EXPECT_EQ(MetricValue(metrics, "txc_indoubt_resolved_total", {{"action", "commit"}}), 0);
  EXPECT_EQ(txc().Document("orphan-1").status, 404) << "an orphan is not a transaction of the log";

  // The other node's branches are untouched; the test settles them as that node would.
  auto pg = ConnectPostgres(pg_dsn);
  EXPECT_THAT(PreparedPostgresGids(*pg, "txc:" + foreign + ":"),
              ElementsAre("txc:" + foreign + ":orphan-1:0"));
  for (const std::string& gid : PreparedPostgresGids(*pg, "txc:" + foreign + ":")) {
    ExecPostgres(*pg, "ROLLBACK PREPARED " + pg->quote(gid));
  }
  std::string error;
  auto my = ConnectMysql(*ParseMysqlDsn(mysql_dsn, &error));
  bool foreign_xa_found = false;
  for (const XaXid& xid : RecoverMysqlXids(*my, "txc:orphan-1")) {
    if (xid.bqual == foreign + ":1") {
      foreign_xa_found = true;
      ExecMysql(*my, "XA ROLLBACK " + XaXidSql(xid));
    }
  }
  EXPECT_TRUE(foreign_xa_found) << "the other node's XA branch was resolved by this node";
}

TEST_F(TwoPhaseApiTest, AfterARestartFinishedTransactionsAreStillReadAndRecognised) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases db(pg_dsn, mysql_dsn, node_id_);
  StartTxcoord({{"TXC_RESOURCES", ResourcesYaml(pg_dsn, mysql_dsn)}});
  std::atomic<bool> commit_works{true};
  Participant ship("ship", &journal_);
  ship.On("prepare", [](const CapturedRequest& request, int) {
    Answer answer;
    answer.status = request.Header("Txc-Gid") == "restart-no" ? 409 : 200;
    return answer;
  });
  ship.On("commit", [&](const CapturedRequest&, int) {
    Answer answer;
    answer.status = commit_works ? 200 : 503;
    return answer;
  });
  const std::string& t = db.table();
  const Spec yes{"restart-yes", {ship.BranchJson("ship"), PostgresBranch(t, "r-yes", 1)}};
  const Spec no{"restart-no", {ship.BranchJson("ship"), MysqlBranch(t, "r-no", 2)}};
  const Reply committed = txc().Submit(yes);
  ASSERT_EQ(committed.status, 200) << committed;
  ASSERT_EQ(Text(committed.json(), "outcome"), "committed");
  const Reply aborted = txc().Submit(no);
  ASSERT_EQ(aborted.status, 200) << aborted;
  ASSERT_EQ(Text(aborted.json(), "outcome"), "aborted");
  // One still in phase 2 when txcoord stops: its commit decision is carried out after the restart.
  commit_works = false;
  Spec pending{
      "restart-pending",
      {ship.BranchJson("ship"), PostgresBranch(t, "r-pending", 5), MysqlBranch(t, "r-pending", 6)}};
  pending.wait = false;
  ASSERT_EQ(txc().Submit(pending).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "restart-pending",
      [](const Json& d) {
        return Text(d, "state") == "committing" && Number(Branch(d, "ship"), "attempts") >= 2;
      },
      "retried its commit"));

  RestartTxcoord();
  commit_works = true;

  const Reply read_yes = txc().Document("restart-yes");
  ASSERT_EQ(read_yes.status, 200) << read_yes;
  EXPECT_EQ(Text(read_yes.json(), "state"), "committed");
  EXPECT_EQ(Text(read_yes.json(), "outcome"), "committed");
  EXPECT_EQ(Text(read_yes.json(), "protocol"), "2pc");
  EXPECT_EQ(Text(read_yes.json(), "created_at"), Text(committed.json(), "created_at"));
  EXPECT_THAT(BranchStates(read_yes.json()), ElementsAre("committed", "committed"));
  EXPECT_FALSE(Flag(read_yes.json(), "stuck"));
  const Reply read_no = txc().Document("restart-no");
  ASSERT_EQ(read_no.status, 200) << read_no;
  EXPECT_EQ(Text(read_no.json(), "outcome"), "aborted");
  EXPECT_THAT(Text(Branch(read_no.json(), "ship"), "last_error"), HasSubstr("409"));

  // Resubmitted: recognised, not run again; another body with its gid is still a conflict.
  const Reply again = txc().Submit(yes);
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(Text(again.json(), "outcome"), "committed");
  EXPECT_EQ(Text(again.json(), "created_at"), Text(committed.json(), "created_at"));
  const Reply again_no = txc().Submit(no);
  EXPECT_EQ(again_no.status, 200) << again_no;
  EXPECT_EQ(Text(again_no.json(), "outcome"), "aborted");
  Spec changed = yes;
  changed.timeout_ms = 7'000;
  const Reply conflict = txc().Submit(changed);
  EXPECT_EQ(conflict.status, 409) << conflict;
  EXPECT_EQ(ship.Count("restart-yes", "prepare"), 1u);
  EXPECT_EQ(ship.Count("restart-no", "prepare"), 1u);

  // The one in flight finishes its commit.
  const Json finished = txc().WaitFinal("restart-pending");
  ASSERT_TRUE(finished);
  EXPECT_EQ(Text(finished, "outcome"), "committed");
  EXPECT_THAT(BranchStates(finished), ElementsAre("committed", "committed", "committed"));
  EXPECT_EQ(ship.Count("restart-pending", "prepare"), 1u);
  EXPECT_EQ(ship.Count("restart-pending", "abort"), 0u);
  EXPECT_EQ(db.PostgresValue("r-pending"), 6);
  EXPECT_EQ(db.MysqlValue("r-pending"), 6);
  EXPECT_EQ(db.PostgresValue("r-yes"), 2);
  EXPECT_EQ(db.MysqlValue("r-no"), std::nullopt);
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_recovered_transactions_total", {{"protocol", "2pc"}}),
            1);

  const Reply listed = txc().Get("/v1/transactions?state=committed");
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr("\"restart-yes\""));
  EXPECT_THAT(listed.body, HasSubstr("\"restart-pending\""));
  EXPECT_THAT(db.PreparedLeft(), IsEmpty());
}

}  // namespace
}  // namespace txc::testing
