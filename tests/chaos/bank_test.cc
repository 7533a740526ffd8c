// Chaos: a bank over two databases while the coordinator keeps dying. Accounts on PostgreSQL and
// on MariaDB; client threads move money between a PostgreSQL and a MariaDB account (both ways,
// some amounts beyond the balance, which the CHECK refuses) as 2PC transfers with wait=true,
// resubmitting the same gid and body after a dropped connection or a 503 until they see a final
// document. Meanwhile txcoord is SIGKILLed at random moments, again and again, and sometimes
// restarted with a random crash point armed.
//
// At the end, after a clean restart and a quiet period: the total never changed; each transfer
// a client saw committed is applied on both sides exactly once, each one seen aborted on neither,
// none on one side only; every account holds what the applied transfers say; the coordinator's
// documents agree with the clients and the data; nothing is left prepared.
//
// Needs TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/test.sh sets them).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/common/crash_point.h"
#include "tests/chaos/chaos_support.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::chaos {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kNode[] = "chaos-bank";
constexpr char kPrefix[] = "chaos_bank";
constexpr int kAccountsPerSide = 8;
constexpr int64_t kInitialBalance = 1000;
constexpr int kClients = 8;
constexpr milliseconds kChaosTime{50'000};           // kills happen during this long
constexpr int64_t kTransferTimeoutMs = 3'000;        // the transaction's timeout_ms
constexpr milliseconds kTransferGiveUp{60'000};      // a client stops resubmitting after this
constexpr milliseconds kClientsJoinTimeout{60'000};  // after the chaos, for the last transfers
constexpr milliseconds kReadyTimeout{20'000};
constexpr milliseconds kQuietTimeout{30'000};
constexpr int kMinimumDeaths = 6;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Seconds(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3fs", value);
  return text;
}

// One transfer as one client lived it.
struct LedgerEntry {
  Transfer transfer;
  std::string seen;     // "committed" | "aborted" | "" (no final document)
  std::string problem;  // an answer that no correct coordinator gives (409, 500, ...)
  int submissions = 0;
  int no_reply = 0;     // submissions that got no reply (the coordinator was down or died)
  int unavailable = 0;  // answered 503
  int in_flight = 0;    // answered with a document not final yet
  std::vector<std::string> trace;  // "+12.345s 503 not_ready", per submission
  double seconds = 0;              // from the first submission to the final document
};

struct SharedState {
  Clock::time_point start;
  uint16_t port = 0;
  std::atomic<bool> stop_new{false};  // no new transfers
  std::atomic<bool> abandon{false};   // stop resubmitting (the join deadline passed)
  std::mutex mu;
  std::vector<LedgerEntry> ledger;
};

std::string PgAccount(int i) { return "p" + std::to_string(i); }
std::string MyAccount(int i) { return "m" + std::to_string(i); }

// Submits until a final document (or a problem, or giving up).
LedgerEntry RunTransfer(SharedState& shared, const Transfer& transfer, std::mt19937_64& random) {
  LedgerEntry entry;
  entry.transfer = transfer;
  const std::string body = TransferBody(kPrefix, transfer, /*wait=*/true, kTransferTimeoutMs);
  const auto began = Clock::now();
  const auto give_up = began + kTransferGiveUp;
  while (Clock::now() < give_up && !shared.abandon.load()) {
    ++entry.submissions;
    const HttpResult reply =
        HttpCall(shared.port, "POST", "/v1/transactions", body, milliseconds(15'000));
    std::string note = "+" + Seconds(SecondsSince(shared.start)) + " ";
    const auto pause = [&random](int low_ms, int high_ms) {
      std::this_thread::sleep_for(
          milliseconds(low_ms + static_cast<int>(random() % (high_ms - low_ms + 1))));
    };
    if (!reply.answered) {
      ++entry.no_reply;
      entry.trace.push_back(note + "no reply: " + reply.error);
      pause(20, 120);
      continue;
    }
    note += std::to_string(reply.status);
    if (reply.status == 503) {
      ++entry.unavailable;
      entry.trace.push_back(note + " " + Tail(reply.body, 1).substr(0, 120));
      pause(50, 150);
      continue;
    }
    if (reply.status == 200 || reply.status == 202) {
      const DocumentView document = ParseDocument(reply.body);
      if (!document.parsed) {
        entry.problem = "unreadable document (" + document.parse_error + "): " + reply.body;
        entry.trace.push_back(note + " unreadable");
        return entry;
      }
      entry.trace.push_back(note + " " + document.state);
      if (document.outcome.has_value()) {
        entry.seen = *document.outcome;
        entry.seconds = SecondsSince(began);
        return entry;
      }
      ++entry.in_flight;
      pause(30, 100);  // answered at its timeout, still in flight: ask again
      continue;
    }
    // 409 (the same body refused), 400, 500: no resubmission can fix these.
    entry.problem = "answered " + std::to_string(reply.status) + ": " + reply.body;
    entry.trace.push_back(note + " " + reply.body.substr(0, 200));
    return entry;
  }
  entry.problem = "no final document after " + std::to_string(entry.submissions) + " submissions";
  return entry;
}

void RunClient(SharedState& shared, int client, uint64_t seed, const std::string& run_tag) {
  std::mt19937_64 random(seed);
  for (int sequence = 0; !shared.stop_new.load(); ++sequence) {
    Transfer transfer;
    transfer.gid =
        "bank-" + run_tag + "-" + std::to_string(client) + "-" + std::to_string(sequence);
    transfer.direction = random() % 2 == 0 ? Direction::kPgToMy : Direction::kMyToPg;
    transfer.pg_account = PgAccount(static_cast<int>(random() % kAccountsPerSide));
    transfer.my_account = MyAccount(static_cast<int>(random() % kAccountsPerSide));
    const uint64_t kind = random() % 100;
    if (kind < 8) {
      transfer.amount = 50'000;  // more than all the money there is: always refused
    } else if (kind < 18) {
      transfer.amount = 800 + static_cast<int64_t>(random() % 1200);  // refused when poor
    } else {
      transfer.amount = 1 + static_cast<int64_t>(random() % 200);
    }
    LedgerEntry entry = RunTransfer(shared, transfer, random);
    std::lock_guard lock(shared.mu);
    shared.ledger.push_back(std::move(entry));
  }
}

// The client threads, joined however the test ends (an ASSERT midway included).
class ClientThreads {
 public:
  explicit ClientThreads(SharedState& shared) : shared_(shared) {}
  ~ClientThreads() { Finish(Clock::now()); }

  void Start(int client, uint64_t seed, const std::string& run_tag) {
    ++running_;
    threads_.emplace_back([this, client, seed, run_tag] {
      RunClient(shared_, client, seed, run_tag);
      --running_;
    });
  }

  // No new transfers; those in flight may finish until `deadline`, then they give up.
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
  SharedState& shared_;
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

// Every line of `text` that mentions `needle`.
std::string LinesWith(const std::string& text, const std::string& needle) {
  std::istringstream lines(text);
  std::string line;
  std::string found;
  while (std::getline(lines, line)) {
    if (line.find(needle) != std::string::npos) found += "    " + line + "\n";
  }
  return found;
}

class BankChaosTest : public ::testing::Test {
 protected:
  // Starts the next incarnation of txcoord, with a crash point armed when `crash_at` is given.
  Coordinator& Start(const std::string& crash_at, int crash_after) {
    std::map<std::string, std::string> env;
    std::string label = "bank-" + std::to_string(incarnations_.size());
    if (!crash_at.empty()) {
      env = {{"TXC_CRASH_AT", crash_at}, {"TXC_CRASH_AFTER", std::to_string(crash_after)}};
      label += " (armed " + crash_at + " #" + std::to_string(crash_after) + ")";
    }
    incarnations_.push_back(
        std::make_unique<Coordinator>(TXCOORD_PATH, config_file_, scratch_.path(),
                                      "bank-" + std::to_string(incarnations_.size()), port_, env));
    deaths_.push_back("+" + Seconds(SecondsSince(start_)) + " started " + label);
    return *incarnations_.back();
  }

  // What happened to every incarnation, and each one's stderr lines about `gid` (empty: tails).
  std::string History(const std::string& gid) const {
    std::string text = "---- coordinator history ----\n";
    for (const std::string& event : deaths_) text += "  " + event + "\n";
    for (const auto& incarnation : incarnations_) {
      if (gid.empty()) {
        text += incarnation->StderrTail(15);
      } else {
        const std::string lines = LinesWith(incarnation->Stderr(), gid);
        if (!lines.empty())
          text += "  " + incarnation->name() + " stderr about " + gid + ":\n" + lines;
      }
    }
    return text;
  }

  testing::TempDir scratch_;
  std::string config_file_;
  uint16_t port_ = 0;
  Clock::time_point start_;
  std::vector<std::unique_ptr<Coordinator>> incarnations_;
  std::vector<std::string> deaths_;
};

TEST_F(BankChaosTest, MoneyIsNeverCreatedOrLostWhileTheCoordinatorKeepsDying) {
  TXC_REQUIRE_ENV(pg_dsn, "TXC_TEST_PG_DSN");
  TXC_REQUIRE_ENV(mysql_dsn, "TXC_TEST_MYSQL_DSN");
  Databases databases(pg_dsn, mysql_dsn);
  databases.RollbackPrepared(kNode);
  databases.CreateTables(kPrefix);
  std::map<std::string, int64_t> pg_accounts;
  std::map<std::string, int64_t> my_accounts;
  for (int i = 0; i < kAccountsPerSide; ++i) {
    pg_accounts[PgAccount(i)] = kInitialBalance;
    my_accounts[MyAccount(i)] = kInitialBalance;
  }
  databases.ResetAccounts(kPrefix, pg_accounts, my_accounts);
  const int64_t total = 2 * kAccountsPerSide * kInitialBalance;

  std::random_device device;
  const uint64_t seed = (static_cast<uint64_t>(device()) << 32) | device();
  std::mt19937_64 random(seed);
  char tag[8];
  std::snprintf(tag, sizeof tag, "%06x", static_cast<unsigned>(random() & 0xffffff));
  const std::string run_tag = tag;
  std::printf("bank_test: seed %llu, gids bank-%s-*\n", static_cast<unsigned long long>(seed), tag);

  port_ = testing::FreeLoopbackPort();
  config_file_ = scratch_.File("txcoord.yaml");
  WriteConfigFile(config_file_, {kNode, port_, scratch_.File("log"), pg_dsn, mysql_dsn});
  start_ = Clock::now();
  ASSERT_TRUE(Start("", 0).WaitReady(kReadyTimeout));

  SharedState shared;
  shared.start = start_;
  shared.port = port_;
  ClientThreads clients(shared);
  for (int client = 0; client < kClients; ++client) clients.Start(client, random(), run_tag);

  // The killer: SIGKILL after a random life (sometimes very short, to land in start-up and
  // recovery), or the armed crash point first; restart at once, sometimes armed again.
  int sigkills = 0;
  std::map<std::string, int> crash_point_deaths;
  std::vector<std::string> killer_problems;
  const auto chaos_end = start_ + kChaosTime;
  while (Clock::now() < chaos_end) {
    Coordinator& current = *incarnations_.back();
    const int life_ms = random() % 100 < 15 ? 50 + static_cast<int>(random() % 450)
                                            : 2'000 + static_cast<int>(random() % 4'000);
    const auto kill_at = std::min(Clock::now() + milliseconds(life_ms), chaos_end);
    while (Clock::now() < kill_at && current.process().Running()) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    if (current.process().Running()) {
      const std::optional<int> status = current.Kill();
      ++sigkills;
      deaths_.push_back("+" + Seconds(SecondsSince(start_)) + " SIGKILL " + current.name() +
                        " (status " + std::to_string(status.value_or(-1)) + ")");
    } else {
      const int status = current.process().WaitForExit(milliseconds(0)).value_or(-1);
      const std::string err = current.Stderr();
      const size_t at = err.find("crash point ");
      if (status == 128 + SIGKILL && at != std::string::npos) {
        const std::string point = err.substr(at + 12, err.find(' ', at + 12) - (at + 12));
        ++crash_point_deaths[point];
        deaths_.push_back("+" + Seconds(SecondsSince(start_)) + " " + current.name() +
                          " died at crash point " + point);
      } else {
        // Not our kill and not a crash point: a failed start-up or recovery, a TXC_CHECK, ...
        killer_problems.push_back(current.name() + " ended by itself with status " +
                                  std::to_string(status) + "\n" + current.StderrTail(30));
        deaths_.push_back("+" + Seconds(SecondsSince(start_)) + " " + current.name() +
                          " ENDED BY ITSELF, status " + std::to_string(status));
      }
    }
    if (Clock::now() >= chaos_end) break;
    if (random() % 100 < 30) {
      const size_t points = std::size(kCrashPoints);
      Start(kCrashPoints[random() % points], 1 + static_cast<int>(random() % 40));
    } else {
      Start("", 0);
    }
  }

  // The end of the chaos: a clean coordinator, the clients' last transfers, then quiet.
  shared.stop_new = true;
  if (incarnations_.back()->process().Running()) {
    incarnations_.back()->Kill();
    ++sigkills;
    deaths_.push_back("+" + Seconds(SecondsSince(start_)) + " SIGKILL " +
                      incarnations_.back()->name() + " (the chaos is over)");
  }
  Coordinator& final_coordinator = Start("", 0);
  ASSERT_TRUE(final_coordinator.WaitReady(kReadyTimeout)) << History("");
  // Clients finish their transfer in flight; past the deadline they are told to give up.
  clients.Finish(Clock::now() + kClientsJoinTimeout);
  const double chaos_seconds = SecondsSince(start_);

  std::string quiet_problem;
  for (const auto quiet_end = Clock::now() + kQuietTimeout;;) {
    size_t unfinished = 0;
    quiet_problem.clear();
    for (const char* state : {"preparing", "committing", "aborting"}) {
      const Listing listing = ListTransactions(port_, std::string("state=") + state);
      if (!listing.error.empty()) quiet_problem = listing.error;
      unfinished += listing.documents.size();
    }
    if (unfinished == 0 && quiet_problem.empty()) break;
    if (Clock::now() >= quiet_end) {
      if (quiet_problem.empty()) {
        quiet_problem = std::to_string(unfinished) + " transactions still unfinished";
      }
      break;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(quiet_problem.empty())
      << "not quiet after " << kQuietTimeout.count() << " ms: " << quiet_problem << "\n"
      << History("");

  // ---- the invariants ----
  std::vector<PreparedBranch> prepared = databases.Prepared(kNode);
  for (const auto grace_end = Clock::now() + seconds(5);
       !prepared.empty() && Clock::now() < grace_end; prepared = databases.Prepared(kNode)) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(prepared.empty()) << "left prepared: " << Describe(prepared) << "\n" << History("");

  const auto pg_balances = databases.PgBalances(kPrefix);
  const auto my_balances = databases.MyBalances(kPrefix);
  const std::set<std::string> pg_applied = databases.PgTransfers(kPrefix);
  const std::set<std::string> my_applied = databases.MyTransfers(kPrefix);
  std::map<std::string, DocumentView> documents;
  const Listing listing = ListTransactions(port_, "");
  EXPECT_TRUE(listing.error.empty()) << listing.error;
  for (const DocumentView& document : listing.documents) documents[document.gid] = document;

  int64_t sum = 0;
  for (const auto& [id, balance] : pg_balances) sum += balance;
  for (const auto& [id, balance] : my_balances) sum += balance;
  EXPECT_EQ(sum, total) << "money was created or destroyed";

  std::map<std::string, int64_t> expected_pg = pg_accounts;
  std::map<std::string, int64_t> expected_my = my_accounts;
  std::set<std::string> known;
  int committed = 0;
  int aborted = 0;
  int refusals = 0;
  int resubmissions = 0;
  int no_replies = 0;
  int unavailable = 0;
  int in_flight = 0;
  int violations = 0;
  for (const LedgerEntry& entry : shared.ledger) {
    const std::string& gid = entry.transfer.gid;
    known.insert(gid);
    resubmissions += entry.submissions - 1;
    no_replies += entry.no_reply;
    unavailable += entry.unavailable;
    in_flight += entry.in_flight;
    const bool in_pg = pg_applied.contains(gid);
    const bool in_my = my_applied.contains(gid);
    if (in_pg && in_my) {
      expected_pg[entry.transfer.pg_account] += entry.transfer.PgDelta();
      expected_my[entry.transfer.my_account] += entry.transfer.MyDelta();
    }
    const auto document = documents.find(gid);
    const std::string document_outcome = document == documents.end()
                                             ? "(no document)"
                                             : document->second.outcome.value_or("(in flight)");
    std::string wrong;
    if (!entry.problem.empty()) wrong += "the client got " + entry.problem + "; ";
    if (in_pg != in_my) wrong += "applied on one side only; ";
    if (entry.seen == "committed" && !(in_pg && in_my)) wrong += "seen committed, not applied; ";
    if (entry.seen == "aborted" && (in_pg || in_my)) wrong += "seen aborted, but applied; ";
    if (entry.seen.empty() && entry.problem.empty()) wrong += "never final for the client; ";
    if (!entry.seen.empty() && document_outcome != entry.seen) {
      wrong += "the coordinator's document says " + document_outcome + "; ";
    }
    if (document_outcome == "committed" && !(in_pg && in_my))
      wrong += "document committed, data not; ";
    if (document_outcome == "aborted" && (in_pg || in_my))
      wrong += "document aborted, data applied; ";
    if (!wrong.empty()) {
      ++violations;
      if (violations <= 10) {
        std::string trace;
        for (const std::string& line : entry.trace) trace += "    " + line + "\n";
        ADD_FAILURE() << "transfer " << entry.transfer.ToString() << ": " << wrong
                      << "\n  seen by the client: "
                      << (entry.seen.empty() ? "nothing final" : entry.seen) << ", postgres "
                      << (in_pg ? "applied" : "not applied") << ", mariadb "
                      << (in_my ? "applied" : "not applied") << ", document " << document_outcome
                      << "\n  submissions:\n"
                      << trace << History(gid);
      }
    }
    if (entry.seen == "committed") ++committed;
    if (entry.seen == "aborted") {
      ++aborted;
      if (entry.transfer.amount >= 800) ++refusals;
    }
  }
  EXPECT_EQ(violations, 0) << violations << " transfers broke an invariant (the first 10 above)";
  for (const auto& gids : {pg_applied, my_applied}) {
    for (const std::string& gid : gids) {
      EXPECT_TRUE(known.contains(gid)) << "a transfer no client made is applied: " << gid;
    }
  }
  EXPECT_EQ(pg_balances, expected_pg) << "the PostgreSQL accounts do not hold what the applied "
                                         "transfers say (a transfer applied twice, or in part?)";
  EXPECT_EQ(my_balances, expected_my) << "the MariaDB accounts do not hold what the applied "
                                         "transfers say (a transfer applied twice, or in part?)";
  for (const std::string& problem : killer_problems) ADD_FAILURE() << problem;

  // What the in-doubt scans settled, reported. After a restart every unfinished transaction is
  // resumed by the engine, so the scans should rarely find anything of ours: a PREPARE sent just
  // before a kill that lands after the restart aborted its transaction, or a branch the engine
  // settles while a scan is looking at it (the scan then settles it too, harmlessly).
  std::string scan_lines;
  int scan_settled = 0;
  for (const auto& incarnation : incarnations_) {
    const std::string lines = LinesWith(incarnation->Stderr(), "in-doubt scan: ");
    if (lines.empty()) continue;
    scan_lines += "  " + incarnation->name() + ":\n" + lines;
    for (const char* action : {"in-doubt scan: commit ", "in-doubt scan: rollback "}) {
      for (size_t at = lines.find(action); at != std::string::npos;
           at = lines.find(action, at + 1)) {
        ++scan_settled;
      }
    }
  }
  if (const char* artifacts = std::getenv("TXC_CHAOS_ARTIFACTS");
      artifacts != nullptr && *artifacts != '\0') {
    std::error_code error;
    std::filesystem::create_directories(artifacts, error);
    std::filesystem::copy(scratch_.path(), artifacts,
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing,
                          error);
    std::printf("bank_test: coordinator output and log copied to %s%s\n", artifacts,
                error ? (" (with an error: " + error.message() + ")").c_str() : "");
  }

  std::vector<double> latencies;
  for (const LedgerEntry& entry : shared.ledger) {
    if (!entry.seen.empty()) latencies.push_back(entry.seconds);
  }
  std::sort(latencies.begin(), latencies.end());
  const auto percentile = [&latencies](double p) {
    return latencies.empty() ? 0.0 : latencies[static_cast<size_t>(p * (latencies.size() - 1))];
  };

  int crash_points = 0;
  std::string by_point;
  for (const auto& [point, count] : crash_point_deaths) {
    crash_points += count;
    by_point += " " + point + "=" + std::to_string(count);
  }
  std::printf(
      "bank_test: %.1f s, %zu transfers (%d committed, %d aborted of which %d large), "
      "%d resubmissions (after %d dropped connections, %d 503s, %d documents still in flight); "
      "%d SIGKILLs + %d crash-point deaths (%s), %zu coordinator starts\n",
      chaos_seconds, shared.ledger.size(), committed, aborted, refusals, resubmissions, no_replies,
      unavailable, in_flight, sigkills, crash_points,
      by_point.empty() ? "none" : by_point.substr(1).c_str(), incarnations_.size());
  std::printf(
      "bank_test: time to a final document: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s\n",
      percentile(0.5), percentile(0.9), percentile(0.99), percentile(1.0));
  std::printf("bank_test: the in-doubt scans settled %d branches%s%s", scan_settled,
              scan_settled == 0 ? "" : ":\n", scan_lines.c_str());
  std::printf("\n");
  EXPECT_GE(sigkills + crash_points, kMinimumDeaths) << History("");
  EXPECT_GT(committed, 0);
  EXPECT_GT(aborted, 0);
  EXPECT_EQ(final_coordinator.Terminate(seconds(10)), 0) << final_coordinator.StderrTail();
}

}  // namespace
}  // namespace txc::chaos
