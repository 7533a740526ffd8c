// Chaos with the shop example: txcoord killed (SIGKILL, by its own crash points) at every named
// point of a saga and of a TCC transaction over the real order (PostgreSQL), payment (MariaDB)
// and inventory (PostgreSQL) services, then restarted on the same log without the point (some
// cases die a second time while recovering). Whatever the point:
//   - a saga ends succeeded with every step applied once, or compensated with every step that ran
//     undone (the order cancelled, the charge refunded, the stock released; nothing both charged
//     and cancelled);
//   - a TCC transaction ends all confirmed or all cancelled, with nothing left frozen or reserved;
//   - money and stock are neither created nor lost (balances + frozen + net charged = what was
//     seeded; stock + reserved + net taken likewise), and the orders that stand are exactly what
//     the sagas charged and took.
// Then a randomized run: concurrent clients submit sagas (some refused for funds or stock) while
// txcoord is SIGKILLed at random moments, and the same invariants hold over every saga.
//
// Needs TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/test.sh sets them).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/common/crash_point.h"
#include "tests/chaos/chaos_support.h"
#include "tests/support/process.h"
#include "tests/support/shop_env.h"
#include "tests/support/test_env.h"

namespace txc::chaos {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using testing::Purchase;
using testing::ShopEnv;
using testing::SubmitOptions;

constexpr milliseconds kReadyTimeout{15'000};
// A crash point the scenario passes is reached by then; one that is not fails the case.
constexpr milliseconds kCrashTimeout{15'000};
constexpr milliseconds kFinalTimeout{30'000};

// One coordinator's configuration: its node, port and log, and the services it may call.
void WriteShopConfig(const std::string& path, const std::string& node_id, uint16_t port,
                     const std::string& log_dir) {
  std::ofstream out(path);
  out << "node_id: " << node_id << "\n"
      << "listen: 127.0.0.1:" << port << "\n"
      << "log: {kind: file, dir: " << JsonString(log_dir) << "}\n"
      << "shutdown_grace_ms: 2000\n"
      << "participants: {allow: [\"http://127.0.0.1:*\"]}\n";
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Polls GET /v1/transactions/{gid} until the document is final; the last answer in *last.
DocumentView WaitFinal(uint16_t port, const std::string& gid, milliseconds timeout,
                       std::string* last) {
  const auto deadline = Clock::now() + timeout;
  DocumentView document;
  while (Clock::now() < deadline) {
    const HttpResult got = HttpCall(port, "GET", "/v1/transactions/" + gid, "", seconds(5));
    *last = got.answered ? std::to_string(got.status) + " " + got.body : got.error;
    if (got.answered && got.status == 200) {
      document = ParseDocument(got.body);
      if (document.outcome.has_value()) return document;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return document;
}

// Waits for `dying` to end at `point`, and says so loudly if it does not.
::testing::AssertionResult ExpectCrash(Coordinator& dying, const char* point, int after) {
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
  if (dying.Stderr().find(std::string("crash point ") + point + " reached") == std::string::npos) {
    return ::testing::AssertionFailure()
           << dying.name() << " was SIGKILLed, but not by crash point " << point << "\n"
           << dying.StderrTail();
  }
  return ::testing::AssertionSuccess();
}

// ---- the crash cases ----------------------------------------------------------------------------

enum class Scenario {
  kSagaOk,        // order → payment → inventory, all accepted: succeeds
  kSagaParallel,  // order, then payment and inventory at once: succeeds
  kSagaPoor,      // the payment is refused (insufficient funds): compensated after one step
  kSagaSoldOut,   // the stock is refused at the last step: compensated after two steps
  kTccOk,         // payment freezes, inventory reserves: confirmed once the decision is durable
  kTccRefused,    // inventory's try is refused (out of stock): cancelled
};

bool IsTcc(Scenario scenario) {
  return scenario == Scenario::kTccOk || scenario == Scenario::kTccRefused;
}

const char* ScenarioName(Scenario scenario) {
  switch (scenario) {
    case Scenario::kSagaOk:
      return "saga_ok";
    case Scenario::kSagaParallel:
      return "saga_parallel";
    case Scenario::kSagaPoor:
      return "saga_poor";
    case Scenario::kSagaSoldOut:
      return "saga_sold_out";
    case Scenario::kTccOk:
      return "tcc_ok";
    case Scenario::kTccRefused:
      return "tcc_refused";
  }
  return "?";
}

const char* ScenarioShortName(Scenario scenario) {
  switch (scenario) {
    case Scenario::kSagaOk:
      return "ok";
    case Scenario::kSagaParallel:
      return "par";
    case Scenario::kSagaPoor:
      return "poor";
    case Scenario::kSagaSoldOut:
      return "sold";
    case Scenario::kTccOk:
      return "tok";
    case Scenario::kTccRefused:
      return "tref";
  }
  return "?";
}

// What a scenario seeds and buys.
struct Stakes {
  int64_t balance;
  int64_t stock;
  int64_t amount;
  int64_t qty;
};

Stakes StakesOf(Scenario scenario) {
  switch (scenario) {
    case Scenario::kSagaPoor:
      return {10, 10, 500, 1};
    case Scenario::kSagaSoldOut:
      return {100, 1, 45, 3};
    case Scenario::kTccRefused:
      return {100, 2, 40, 3};
    default:
      return {100, 10, 30, 2};
  }
}

struct ShopCrashCase {
  Scenario scenario;
  const char* point;
  int after;             // TXC_CRASH_AFTER: the point's n-th passage
  const char* expected;  // the outcome recovery must reach: "committed" | "aborted"
  // A second crash, of the restarted coordinator while it recovers (nullptr: none).
  const char* then_point = nullptr;
  int then_after = 1;
};

// For the test's name: saga_sold_out_after_compensate_reply_2[_then_...].
std::string CaseName(const ShopCrashCase& c) {
  std::string name =
      std::string(ScenarioName(c.scenario)) + "_" + c.point + "_" + std::to_string(c.after);
  if (c.then_point != nullptr) {
    name += std::string("_then_") + c.then_point + "_" + std::to_string(c.then_after);
  }
  return name;
}

void PrintTo(const ShopCrashCase& c, std::ostream* out) { *out << CaseName(c); }

// For the gid, order id, account and item (a gid is at most 56 characters): abbreviated.
std::string ShortName(const ShopCrashCase& c) {
  const auto abbreviation = [](const std::string& point) {
    const std::string rest = point.starts_with("after_") ? point.substr(6) : point;
    return rest.substr(0, rest.find('_'));
  };
  std::string name = std::string(ScenarioShortName(c.scenario)) + "-" + abbreviation(c.point) +
                     std::to_string(c.after);
  if (c.then_point != nullptr) {
    name += "-" + abbreviation(c.then_point) + std::to_string(c.then_after);
  }
  return name;
}

// Every crash point each scenario passes, with the outcome recovery must reach from it, and
// every passage that differs (the 2nd and 3rd action replies, the 2nd compensation, the last
// try). A saga goes on forward after a restart unless COMPENSATE is durable; a TCC transaction is
// cancelled unless CONFIRM is durable. A succeeding saga makes no decision (after_decision_durable
// is the COMPENSATE decision), a refused action passes no reply point, a confirmed TCC no cancel
// reply and a cancelled one no confirm reply: those points are not in their lists.
std::vector<ShopCrashCase> AllCases() {
  using S = Scenario;
  return {
      {S::kSagaOk, "after_begin_durable", 1, "committed"},
      {S::kSagaOk, "after_action_reply", 1, "committed"},
      {S::kSagaOk, "after_action_reply", 2, "committed"},
      {S::kSagaOk, "after_action_reply", 3, "committed"},
      {S::kSagaOk, "before_end", 1, "committed"},
      {S::kSagaParallel, "after_action_reply", 2, "committed"},
      {S::kSagaParallel, "before_end", 1, "committed"},
      {S::kSagaPoor, "after_begin_durable", 1, "aborted"},
      {S::kSagaPoor, "after_action_reply", 1, "aborted"},
      {S::kSagaPoor, "after_decision_durable", 1, "aborted"},
      {S::kSagaPoor, "after_compensate_reply", 1, "aborted"},
      {S::kSagaPoor, "before_end", 1, "aborted"},
      {S::kSagaSoldOut, "after_begin_durable", 1, "aborted"},
      {S::kSagaSoldOut, "after_action_reply", 2, "aborted"},
      {S::kSagaSoldOut, "after_decision_durable", 1, "aborted"},
      {S::kSagaSoldOut, "after_compensate_reply", 1, "aborted"},
      {S::kSagaSoldOut, "after_compensate_reply", 2, "aborted"},
      {S::kSagaSoldOut, "before_end", 1, "aborted"},
      // Crashes during recovery itself.
      {S::kSagaOk, "after_action_reply", 2, "committed", "before_end", 1},
      {S::kSagaPoor, "after_action_reply", 1, "aborted", "after_decision_durable", 1},
      {S::kSagaSoldOut, "after_decision_durable", 1, "aborted", "after_compensate_reply", 1},

      {S::kTccOk, "after_begin_durable", 1, "aborted"},
      {S::kTccOk, "after_try_reply", 1, "aborted"},
      {S::kTccOk, "after_try_reply", 2, "aborted"},  // every try answered, no decision yet
      {S::kTccOk, "after_decision_durable", 1, "committed"},
      {S::kTccOk, "after_confirm_reply", 1, "committed"},
      {S::kTccOk, "after_confirm_reply", 2, "committed"},
      {S::kTccOk, "before_end", 1, "committed"},
      {S::kTccRefused, "after_begin_durable", 1, "aborted"},
      {S::kTccRefused, "after_try_reply", 2, "aborted"},
      {S::kTccRefused, "after_decision_durable", 1, "aborted"},
      {S::kTccRefused, "after_cancel_reply", 1, "aborted"},
      {S::kTccRefused, "after_cancel_reply", 2, "aborted"},
      {S::kTccRefused, "before_end", 1, "aborted"},
      {S::kTccOk, "after_try_reply", 2, "aborted", "after_cancel_reply", 1},
      {S::kTccOk, "after_decision_durable", 1, "committed", "after_confirm_reply", 1},
  };
}

template <size_t N>
bool Names(const char* const (&points)[N], const char* point) {
  return std::any_of(std::begin(points), std::end(points),
                     [&](const char* known) { return std::string(known) == point; });
}

TEST(ShopCrashCoverageTest, EveryCrashPointIsExercised) {
  const std::vector<ShopCrashCase> cases = AllCases();
  for (const char* point : kSagaCrashPoints) {
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(),
                            [&](const ShopCrashCase& c) {
                              return !IsTcc(c.scenario) && std::string(c.point) == point;
                            }))
        << "saga crash point " << point << " (txc::kSagaCrashPoints) has no case in "
        << "shop_crash_test";
  }
  for (const char* point : kTccCrashPoints) {
    EXPECT_TRUE(std::any_of(
        cases.begin(), cases.end(),
        [&](const ShopCrashCase& c) { return IsTcc(c.scenario) && std::string(c.point) == point; }))
        << "TCC crash point " << point << " (txc::kTccCrashPoints) has no case in "
        << "shop_crash_test";
  }
  std::set<std::string> names;
  for (const ShopCrashCase& c : cases) {
    for (const char* used : {c.point, c.then_point}) {
      if (used == nullptr) continue;
      EXPECT_TRUE(IsTcc(c.scenario) ? Names(kTccCrashPoints, used) : Names(kSagaCrashPoints, used))
          << CaseName(c) << " names a crash point its protocol does not have";
    }
    EXPECT_TRUE(names.insert(ShortName(c)).second) << "two cases are called " << ShortName(c);
    EXPECT_LE(ShortName(c).size(), 56u) << ShortName(c);
  }
}

class ShopCrashTest : public ::testing::TestWithParam<ShopCrashCase> {
 protected:
  // One set of services for every case: each case buys with an account and item of its own, and
  // the sums over all of them are checked after each case. Started by the first case rather than
  // in SetUpTestSuite, so that missing servers fail that case (gtest skips the cases of a suite
  // whose SetUpTestSuite failed).
  void SetUp() override {
    if (shop_ == nullptr) {
      scratch_ = new testing::TempDir();
      shop_ = new ShopEnv(scratch_->path());
      started_ = shop_->Start();
    }
    ASSERT_TRUE(started_) << "the shop services did not start";
  }
  static void TearDownTestSuite() {
    if (started_) {
      EXPECT_TRUE(shop_->Stop());
    }
    delete shop_;
    delete scratch_;
    shop_ = nullptr;
    scratch_ = nullptr;
  }

  static testing::TempDir* scratch_;
  static ShopEnv* shop_;
  static ::testing::AssertionResult started_;
};

testing::TempDir* ShopCrashTest::scratch_ = nullptr;
ShopEnv* ShopCrashTest::shop_ = nullptr;
::testing::AssertionResult ShopCrashTest::started_ = ::testing::AssertionFailure();

TEST_P(ShopCrashTest, RecoveryFinishesTheTransactionAndNothingIsCreatedOrLost) {
  const ShopCrashCase& c = GetParam();
  const bool tcc = IsTcc(c.scenario);
  const std::string name = ShortName(c);
  const Stakes stakes = StakesOf(c.scenario);
  const Purchase purchase{name, name, "acct-" + name, "item-" + name, stakes.qty, stakes.amount};
  ASSERT_TRUE(shop_->SeedAccount(purchase.customer, stakes.balance));
  ASSERT_TRUE(shop_->SeedItem(purchase.item, stakes.stock));
  SubmitOptions options;
  options.wait = false;
  options.parallel = c.scenario == Scenario::kSagaParallel;
  const std::string body =
      tcc ? shop_->TccBody(purchase, options) : shop_->SagaBody(purchase, options);
  SCOPED_TRACE("gid " + purchase.gid + ", crash point " + c.point +
               " (TXC_CRASH_AFTER=" + std::to_string(c.after) + ")" +
               (c.then_point == nullptr
                    ? std::string()
                    : std::string(", then in recovery ") + c.then_point +
                          " (TXC_CRASH_AFTER=" + std::to_string(c.then_after) + ")"));

  testing::TempDir scratch;
  const uint16_t port = testing::FreeLoopbackPort();
  const std::string config_file = scratch.File("txcoord.yaml");
  WriteShopConfig(config_file, "shop-crash", port, scratch.File("log"));

  // 1. The coordinator that dies at the point.
  Coordinator first(TXCOORD_PATH, config_file, scratch.path(), "first", port,
                    {{"TXC_CRASH_AT", c.point}, {"TXC_CRASH_AFTER", std::to_string(c.after)}});
  ASSERT_TRUE(first.WaitReady(kReadyTimeout));
  const HttpResult submitted = HttpCall(port, "POST", "/v1/transactions", body, seconds(10));
  // 202 once BEGIN is durable; the connection may also drop when the point comes first.
  if (submitted.answered) {
    ASSERT_EQ(submitted.status, 202) << submitted.body << "\n" << first.StderrTail();
  }
  ASSERT_TRUE(ExpectCrash(first, c.point, c.after)) << shop_->LogTails();

  // 1b. A restart that dies again, while it recovers the transaction.
  std::unique_ptr<Coordinator> recovering;
  std::string recovering_tail;
  if (c.then_point != nullptr) {
    recovering = std::make_unique<Coordinator>(
        TXCOORD_PATH, config_file, scratch.path(), "recovering", port,
        std::map<std::string, std::string>{{"TXC_CRASH_AT", c.then_point},
                                           {"TXC_CRASH_AFTER", std::to_string(c.then_after)}});
    ASSERT_TRUE(ExpectCrash(*recovering, c.then_point, c.then_after)) << first.StderrTail();
    recovering_tail = recovering->StderrTail();
  }

  // 2. The restart, on the same log, without a crash point.
  Coordinator second(TXCOORD_PATH, config_file, scratch.path(), "second", port, {});
  ASSERT_TRUE(second.WaitReady(kReadyTimeout)) << first.StderrTail() << recovering_tail;
  std::string last_answer;
  const DocumentView document = WaitFinal(port, purchase.gid, kFinalTimeout, &last_answer);
  const std::string context = "document: " + last_answer + "\n" + first.StderrTail() +
                              recovering_tail + second.StderrTail() + shop_->LogTails(10);
  ASSERT_TRUE(document.outcome.has_value())
      << "the transaction is not final " << kFinalTimeout.count()
      << " ms after the restart (its BEGIN was durable before the crash, so the restarted "
         "coordinator must know it and finish it)\n"
      << context;
  const std::string outcome = *document.outcome;
  // Every crash point comes before END: the restart had the transaction to recover.
  EXPECT_THAT(second.Stderr(), HasSubstr("event=recovery_resumed transactions=1"))
      << second.StderrTail();

  // 3. The invariants: the document...
  const bool applied = outcome == "committed";
  EXPECT_EQ(outcome, c.expected) << context;
  ASSERT_EQ(document.branches.size(), tcc ? 2u : 3u) << context;
  if (tcc) {
    const std::string state = applied ? "confirmed" : "cancelled";
    EXPECT_EQ(document.state, state) << context;
    for (const auto& [branch, branch_state] : document.branches) {
      EXPECT_EQ(branch_state, state) << "branch " << branch << "\n" << context;
    }
  } else {
    EXPECT_EQ(document.state, applied ? "succeeded" : "compensated") << context;
    for (const auto& [branch, branch_state] : document.branches) {
      if (applied) {
        EXPECT_EQ(branch_state, "done") << "branch " << branch << "\n" << context;
      } else {
        // The order always ran; a step that was refused or never started is not compensated.
        EXPECT_TRUE(branch_state == "compensated" ||
                    (branch != "order" && (branch_state == "refused" || branch_state == "skipped")))
            << "branch " << branch << " is " << branch_state << "\n"
            << context;
      }
    }
  }
  // ... and the data: what this purchase did, exactly once or not at all, nothing held.
  const testing::HoldingView account = shop_->Account(purchase.customer);
  const testing::HoldingView item = shop_->Item(purchase.item);
  EXPECT_EQ(account.available, stakes.balance - (applied ? stakes.amount : 0)) << context;
  EXPECT_EQ(account.held, 0) << "funds left frozen\n" << context;
  EXPECT_EQ(item.available, stakes.stock - (applied ? stakes.qty : 0)) << context;
  EXPECT_EQ(item.held, 0) << "stock left reserved\n" << context;
  if (tcc) {
    EXPECT_TRUE(shop_->CheckTccPurchase(purchase, applied)) << context;
  } else {
    EXPECT_TRUE(shop_->CheckSagaPurchase(purchase, applied)) << context;
  }
  EXPECT_TRUE(shop_->CheckConservation(/*settled=*/true)) << context;

  // An identical resubmission answers the same transaction, final.
  const HttpResult again = HttpCall(port, "POST", "/v1/transactions", body, seconds(10));
  ASSERT_TRUE(again.answered) << again.error << "\n" << second.StderrTail();
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(ParseDocument(again.body).outcome.value_or("null"), outcome) << again.body;

  EXPECT_EQ(second.Terminate(seconds(10)), 0) << second.StderrTail();
}

INSTANTIATE_TEST_SUITE_P(EveryPoint, ShopCrashTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<ShopCrashCase>& param_info) {
                           return CaseName(param_info.param);
                         });

// ---- the randomized run -------------------------------------------------------------------------

constexpr milliseconds kChaosTime{30'000};  // the kills happen during this long
constexpr int kClients = 4;
constexpr int kMinimumKills = 6;
constexpr int kAccounts = 4;
constexpr int kItems = 3;
constexpr int64_t kBalance = 20'000;
constexpr int64_t kStock = 5'000;
constexpr int64_t kPoorBalance = 5;  // "poor" pays nothing: every saga of its is refused
constexpr int64_t kRareStock = 4;    // "rare" runs out after two sagas: later ones are refused
constexpr milliseconds kSagaGiveUp{60'000};
constexpr milliseconds kClientsJoinTimeout{60'000};
constexpr milliseconds kQuietTimeout{30'000};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One saga as one client lived it.
struct SagaRun {
  Purchase purchase;
  std::string seen;     // "committed" | "aborted" | "" (no final document)
  std::string problem;  // an answer no correct coordinator gives (409, 400, 500, ...)
  int submissions = 0;
  int no_reply = 0;
  std::vector<std::string> trace;
};

struct Shared {
  Clock::time_point start;
  uint16_t port = 0;
  const ShopEnv* shop = nullptr;
  std::atomic<bool> stop_new{false};
  std::atomic<bool> abandon{false};
  std::mutex mu;
  std::vector<SagaRun> runs;
};

// Submits the same body until a final document (or a problem, or giving up).
SagaRun RunSaga(Shared& shared, const Purchase& purchase, bool parallel, std::mt19937_64& random) {
  SagaRun run;
  run.purchase = purchase;
  SubmitOptions options;
  options.wait = true;
  options.timeout_ms = 20'000;
  options.retry_max_ms = 300;
  options.parallel = parallel;
  const std::string body = shared.shop->SagaBody(purchase, options);
  const auto pause = [&random](int low_ms, int high_ms) {
    std::this_thread::sleep_for(
        milliseconds(low_ms + static_cast<int>(random() % (high_ms - low_ms + 1))));
  };
  const auto give_up = Clock::now() + kSagaGiveUp;
  while (Clock::now() < give_up && !shared.abandon.load()) {
    ++run.submissions;
    const HttpResult reply =
        HttpCall(shared.port, "POST", "/v1/transactions", body, milliseconds(25'000));
    char when[32];
    std::snprintf(when, sizeof when, "+%.3fs ", SecondsSince(shared.start));
    if (!reply.answered) {
      ++run.no_reply;
      run.trace.push_back(when + std::string("no reply: ") + reply.error);
      pause(20, 120);
      continue;
    }
    if (reply.status == 503) {
      run.trace.push_back(when + std::string("503"));
      pause(50, 150);
      continue;
    }
    if (reply.status == 200 || reply.status == 202) {
      const DocumentView document = ParseDocument(reply.body);
      if (!document.parsed) {
        run.problem = "unreadable document (" + document.parse_error + "): " + reply.body;
        return run;
      }
      run.trace.push_back(when + std::to_string(reply.status) + " " + document.state);
      if (document.outcome.has_value()) {
        run.seen = *document.outcome;
        return run;
      }
      pause(30, 100);  // answered at its timeout, still in flight: ask again
      continue;
    }
    run.problem = "answered " + std::to_string(reply.status) + ": " + reply.body;
    return run;
  }
  run.problem = "no final document after " + std::to_string(run.submissions) + " submissions";
  return run;
}

void RunClient(Shared& shared, int client, uint64_t seed) {
  std::mt19937_64 random(seed);
  for (int sequence = 0; !shared.stop_new.load(); ++sequence) {
    Purchase purchase;
    purchase.gid = "rnd-" + std::to_string(client) + "-" + std::to_string(sequence);
    purchase.order_id = purchase.gid;
    const uint64_t kind = random() % 100;
    purchase.customer = "acct" + std::to_string(random() % kAccounts);
    purchase.item = "item" + std::to_string(random() % kItems);
    purchase.qty = 1 + static_cast<int64_t>(random() % 3);
    purchase.amount = 1 + static_cast<int64_t>(random() % 40);
    if (kind < 12) {
      purchase.customer = "poor";
      purchase.amount = 50;
    } else if (kind < 24) {
      purchase.item = "rare";
      purchase.qty = 2;
    }
    SagaRun run = RunSaga(shared, purchase, random() % 4 == 0, random);
    {
      std::lock_guard lock(shared.mu);
      shared.runs.push_back(std::move(run));
    }
    std::this_thread::sleep_for(milliseconds(10 + static_cast<int>(random() % 50)));
  }
}

// The client threads, joined however the test ends (an ASSERT midway included).
class Clients {
 public:
  explicit Clients(Shared& shared) : shared_(shared) {}
  ~Clients() { Finish(Clock::now()); }
  void Start(int client, uint64_t seed) {
    ++running_;
    threads_.emplace_back([this, client, seed] {
      RunClient(shared_, client, seed);
      --running_;
    });
  }
  // No new sagas; those in flight may finish until `deadline`, then they give up.
  void Finish(Clock::time_point deadline) {
    shared_.stop_new = true;
    while (running_.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    shared_.abandon = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  Shared& shared_;
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

TEST(ShopChaosTest, SagasStayConsistentWhileTheCoordinatorIsKilledAtRandom) {
  testing::TempDir scratch;
  ShopEnv shop(scratch.path());
  ASSERT_TRUE(shop.Start());
  for (int i = 0; i < kAccounts; ++i) {
    ASSERT_TRUE(shop.SeedAccount("acct" + std::to_string(i), kBalance));
  }
  ASSERT_TRUE(shop.SeedAccount("poor", kPoorBalance));
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(shop.SeedItem("item" + std::to_string(i), kStock));
  ASSERT_TRUE(shop.SeedItem("rare", kRareStock));

  std::random_device device;
  const uint64_t seed = (static_cast<uint64_t>(device()) << 32) | device();
  std::mt19937_64 random(seed);
  std::printf("shop_crash_test: random run, seed %llu\n", static_cast<unsigned long long>(seed));

  const uint16_t port = testing::FreeLoopbackPort();
  const std::string config_file = scratch.File("txcoord.yaml");
  WriteShopConfig(config_file, "shop-chaos", port, scratch.File("log"));
  std::vector<std::unique_ptr<Coordinator>> incarnations;
  std::vector<std::string> history;
  const Clock::time_point start = Clock::now();
  bool armed = false;  // the current incarnation has a crash point armed
  const auto start_coordinator = [&](const std::string& crash_at, int crash_after) -> Coordinator& {
    std::string name = "random-" + std::to_string(incarnations.size());
    std::map<std::string, std::string> env;
    armed = !crash_at.empty();
    if (armed) {
      env = {{"TXC_CRASH_AT", crash_at}, {"TXC_CRASH_AFTER", std::to_string(crash_after)}};
    }
    incarnations.push_back(
        std::make_unique<Coordinator>(TXCOORD_PATH, config_file, scratch.path(), name, port, env));
    char line[64];
    std::snprintf(line, sizeof line, "+%.3fs started ", SecondsSince(start));
    history.push_back(
        line + name +
        (armed ? " (armed " + crash_at + " #" + std::to_string(crash_after) + ")" : std::string()));
    return *incarnations.back();
  };
  const auto history_text = [&] {
    std::string text = "---- coordinator history ----\n";
    for (const std::string& event : history) text += "  " + event + "\n";
    return text + incarnations.back()->StderrTail(20);
  };
  ASSERT_TRUE(start_coordinator("", 0).WaitReady(kReadyTimeout));

  Shared shared;
  shared.start = start;
  shared.port = port;
  shared.shop = &shop;
  Clients clients(shared);
  for (int client = 0; client < kClients; ++client) clients.Start(client, random());

  // The killer: SIGKILL after a random life (sometimes short, to land in start-up and
  // recovery), then a restart at once, sometimes with a saga crash point armed.
  int kills = 0;
  int crash_point_deaths = 0;
  std::vector<std::string> killer_problems;
  const auto chaos_end = start + kChaosTime;
  const auto note = [&](const char* what, const std::string& name) {
    char line[64];
    std::snprintf(line, sizeof line, "+%.3fs %s ", SecondsSince(start), what);
    history.push_back(line + name);
  };
  while (Clock::now() < chaos_end) {
    Coordinator& current = *incarnations.back();
    const int life_ms = random() % 100 < 15 ? 300 + static_cast<int>(random() % 500)
                                            : 2'000 + static_cast<int>(random() % 2'500);
    const auto kill_at = std::min(Clock::now() + milliseconds(life_ms), chaos_end);
    while (Clock::now() < kill_at && current.process().Running()) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    if (!current.process().Running()) {
      const int status = current.process().WaitForExit(milliseconds(0)).value_or(-1);
      if (armed && status == 128 + SIGKILL &&
          current.Stderr().find("crash point ") != std::string::npos) {
        ++crash_point_deaths;
        note("died at its crash point:", current.name());
      } else {
        // Not our kill and not a crash point: a failed start-up or recovery, a TXC_CHECK, ...
        killer_problems.push_back(current.name() + " ended by itself with status " +
                                  std::to_string(status) + "\n" + current.StderrTail(30));
        note("ENDED BY ITSELF:", current.name());
      }
    } else if (Clock::now() < chaos_end) {
      current.Kill();
      ++kills;
      note("SIGKILL", current.name());
    } else {
      break;
    }
    if (random() % 100 < 25) {
      start_coordinator(kSagaCrashPoints[random() % std::size(kSagaCrashPoints)],
                        1 + static_cast<int>(random() % 30));
    } else {
      start_coordinator("", 0);
    }
  }
  // The one that lives on must not die at an armed point.
  if (armed || !incarnations.back()->process().Running()) {
    incarnations.back()->Kill();
    note("SIGKILL (armed, the chaos is over)", incarnations.back()->name());
    start_coordinator("", 0);
  }

  // The end: a coordinator that lives, the clients' last sagas, then quiet.
  shared.stop_new = true;
  Coordinator& final_coordinator = *incarnations.back();
  ASSERT_TRUE(final_coordinator.WaitReady(kReadyTimeout)) << history_text();
  clients.Finish(Clock::now() + kClientsJoinTimeout);
  const double chaos_seconds = SecondsSince(start);
  std::string quiet_problem;
  for (const auto quiet_end = Clock::now() + kQuietTimeout;;) {
    size_t unfinished = 0;
    quiet_problem.clear();
    for (const char* state : {"running", "compensating"}) {
      const Listing listing = ListTransactions(port, std::string("state=") + state);
      if (!listing.error.empty()) quiet_problem = listing.error;
      unfinished += listing.documents.size();
    }
    if (unfinished == 0 && quiet_problem.empty()) break;
    if (Clock::now() >= quiet_end) {
      if (quiet_problem.empty()) quiet_problem = std::to_string(unfinished) + " sagas unfinished";
      break;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(quiet_problem.empty())
      << "not quiet after " << kQuietTimeout.count() << " ms: " << quiet_problem << "\n"
      << history_text();
  const Listing stuck = ListTransactions(port, "stuck=true");
  EXPECT_TRUE(stuck.error.empty() && stuck.documents.empty())
      << stuck.error << stuck.documents.size() << " stuck transactions";

  // ---- the invariants ----
  std::map<std::string, DocumentView> documents;
  const Listing listing = ListTransactions(port, "");
  EXPECT_TRUE(listing.error.empty()) << listing.error;
  for (const DocumentView& document : listing.documents) documents[document.gid] = document;
  const auto orders = shop.AllOrders();
  const auto payments = shop.PaymentLedgersByGid();
  const auto inventory = shop.InventoryLedgersByGid();

  std::set<std::string> known;
  int committed = 0;
  int aborted = 0;
  int resubmissions = 0;
  int violations = 0;
  for (const SagaRun& run : shared.runs) {
    const std::string& gid = run.purchase.gid;
    known.insert(gid);
    resubmissions += run.submissions - 1;
    const auto document = documents.find(gid);
    const std::string document_outcome = document == documents.end()
                                             ? "(no document)"
                                             : document->second.outcome.value_or("(in flight)");
    std::string wrong;
    if (!run.problem.empty()) wrong += "the client got " + run.problem + "; ";
    if (run.seen.empty() && run.problem.empty()) wrong += "never final for the client; ";
    if (!run.seen.empty() && document_outcome != run.seen) {
      wrong += "the coordinator's document says " + document_outcome + "; ";
    }
    // The data must match what the coordinator says, final or not seen by the client.
    const std::string outcome = run.seen.empty() ? document_outcome : run.seen;
    const ::testing::AssertionResult data = ShopEnv::CheckSagaPurchase(
        run.purchase, outcome == "committed", orders, payments, inventory);
    if (!data) wrong += data.message();
    if (!wrong.empty()) {
      if (++violations <= 10) {
        std::string trace;
        for (const std::string& line : run.trace) trace += "    " + line + "\n";
        ADD_FAILURE() << "saga " << gid << ": " << wrong << "\n  submissions:\n" << trace;
      }
    }
    if (run.seen == "committed") ++committed;
    if (run.seen == "aborted") ++aborted;
  }
  EXPECT_EQ(violations, 0) << violations << " sagas broke an invariant (the first 10 above)\n"
                           << history_text();
  for (const auto& [order_id, order] : orders) {
    EXPECT_TRUE(known.contains(order.gid)) << "an order no client made: " << order_id;
  }
  for (const auto* ledgers : {&payments, &inventory}) {
    for (const auto& [gid, totals] : *ledgers) {
      EXPECT_TRUE(known.contains(gid)) << "a movement no client made: " << gid;
    }
  }
  EXPECT_TRUE(shop.CheckConservation(/*settled=*/true)) << history_text();
  for (const std::string& problem : killer_problems) ADD_FAILURE() << problem;

  // How many sagas the restarts found unfinished in the log: the kills landed mid-saga.
  int recovered = 0;
  for (const auto& incarnation : incarnations) {
    const std::string err = incarnation->Stderr();
    const std::string needle = "event=recovery_resumed transactions=";
    const size_t at = err.find(needle);
    if (at != std::string::npos) recovered += std::atoi(err.c_str() + at + needle.size());
  }
  std::printf(
      "shop_crash_test: %.1f s, %zu sagas (%d succeeded, %d compensated), %d resubmissions, "
      "%d SIGKILLs + %d crash-point deaths, %zu coordinator starts, %d sagas recovered "
      "unfinished\n",
      chaos_seconds, shared.runs.size(), committed, aborted, resubmissions, kills,
      crash_point_deaths, incarnations.size(), recovered);
  EXPECT_GE(kills + crash_point_deaths, kMinimumKills) << history_text();
  EXPECT_GT(recovered, 0) << "no kill caught a saga in flight\n" << history_text();
  EXPECT_GT(committed, 0);
  EXPECT_GT(aborted, 0);
  EXPECT_EQ(final_coordinator.Terminate(seconds(10)), 0) << final_coordinator.StderrTail();
  EXPECT_TRUE(shop.Stop());
}

}  // namespace
}  // namespace txc::chaos
