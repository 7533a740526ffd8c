#include "tools/txc-bench/two_phase_http_bench.h"

#include <Poco/Exception.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "tools/txc-bench/bench_http.h"
#include "tools/txc-bench/comparison.h"
#include "tools/txc-bench/latency.h"
#include "tools/txc-bench/trivial_participant_server.h"

namespace txc::bench {
namespace {

constexpr const char* kScenario = "2pc-http";
constexpr int kBranches = 2;
const char* const kBranchNames[kBranches] = {"b0", "b1"};
constexpr const char* kPrepareBody = R"({"amount":1})";

struct Settings {
  std::string url;
  ComparisonOptions comparison;
  int64_t timeout_ms = 30'000;
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
    if (option == "--url") {
      settings->url = value;
    } else if (const auto shared = ParseComparisonOption(
                   kScenario, option, value, &settings->comparison, &settings->timeout_ms);
               shared != OptionParse::kNotMine) {
      if (shared == OptionParse::kError) return false;
    } else {
      std::fprintf(stderr, "txc-bench %s: unknown option %s\n", kScenario, option.c_str());
      return false;
    }
  }
  if (settings->url.empty()) {
    std::fprintf(stderr,
                 "txc-bench %s: --url is required (txcoord's address, e.g. "
                 "http://127.0.0.1:8080)\n",
                 kScenario);
    return false;
  }
  return true;
}

// "<prefix>-<tag>-<worker>-": each worker numbers its transactions after it.
std::string GidBase(const std::string& prefix, const std::string& tag, int index) {
  return prefix + "-" + tag + "-" + std::to_string(index) + "-";
}

// The baseline: the client is its own coordinator. Prepare both branches, then commit both, on
// one keep-alive connection, with the headers txcoord would send (no decision log: nothing
// survives a crash of this client; that is what the coordinator adds).
class DirectWorker final : public LoadWorker {
 public:
  DirectWorker(const HttpEndpoint& participant, std::chrono::milliseconds timeout,
               std::string gid_base)
      : client_(participant, timeout), gid_base_(std::move(gid_base)) {}

  bool RunOnce(std::string* error) override {
    const std::string gid = gid_base_ + std::to_string(++n_);
    for (const char* op : {"prepare", "commit"}) {
      for (const char* branch : kBranchNames) {
        const std::string path = std::string("/") + branch + "/" + op;
        const std::string body = op[0] == 'p' ? kPrepareBody : "";
        auto reply = client_.Send("POST", path, body,
                                  {{"Txc-Gid", gid},
                                   {"Txc-Branch", branch},
                                   {"Txc-Op", op},
                                   {"Idempotency-Key", gid + "/" + branch + "/" + op}});
        if (!reply.ok()) {
          *error = reply.status().message();
          return false;
        }
        if (reply->status < 200 || reply->status > 299) {
          *error = "POST " + path + ": " + DescribeReply(*reply);
          return false;
        }
      }
    }
    return true;
  }

 private:
  KeepAliveClient client_;
  std::string gid_base_;
  uint64_t n_ = 0;
};

// Through txcoord: one POST /v1/transactions with wait true per transaction.
class CoordinatorWorker final : public LoadWorker {
 public:
  CoordinatorWorker(const HttpEndpoint& txcoord, const HttpEndpoint& participant,
                    std::chrono::milliseconds timeout, std::string gid_base)
      : client_(txcoord, timeout), gid_base_(std::move(gid_base)) {
    // Everything after the gid is the same for every transaction.
    const std::string base = participant.ToString();
    body_tail_ =
        "\",\"protocol\":\"2pc\",\"wait\":true,\"timeout_ms\":" + std::to_string(timeout.count()) +
        ",\"branches\":[";
    for (int b = 0; b < kBranches; ++b) {
      const std::string name = kBranchNames[b];
      if (b > 0) body_tail_ += ",";
      body_tail_ += "{\"name\":\"" + name + "\",\"prepare\":{\"url\":\"" + base + "/" + name +
                    "/prepare\",\"body\":" + kPrepareBody + "},\"commit\":{\"url\":\"" + base +
                    "/" + name + "/commit\"},\"abort\":{\"url\":\"" + base + "/" + name +
                    "/abort\"}}";
    }
    body_tail_ += "]}";
  }

  bool RunOnce(std::string* error) override {
    const std::string body = "{\"gid\":\"" + gid_base_ + std::to_string(++n_) + body_tail_;
    auto reply = client_.Send("POST", "/v1/transactions", body);
    if (!reply.ok()) {
      *error = reply.status().message();
      return false;
    }
    if (reply->status != 200) {
      *error = "POST /v1/transactions: " + DescribeReply(*reply);
      return false;
    }
    const auto outcome = JsonStringField(reply->body, "outcome");
    if (!outcome || *outcome != "committed") {
      *error = "transaction not committed: outcome " + outcome.value_or("(none)") + ", " +
               reply->body.substr(0, 400);
      return false;
    }
    return true;
  }

 private:
  KeepAliveClient client_;
  std::string gid_base_;
  std::string body_tail_;
  uint64_t n_ = 0;
};

// txcoord answers /readyz with 200 once it serves transactions.
bool CheckCoordinator(const HttpEndpoint& txcoord) {
  KeepAliveClient client(txcoord, std::chrono::seconds(5));
  auto reply = client.Send("GET", "/readyz", "");
  if (!reply.ok()) {
    std::fprintf(stderr, "txc-bench %s: txcoord not reachable at %s: %s\n", kScenario,
                 txcoord.ToString().c_str(), reply.status().message().c_str());
    return false;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "txc-bench %s: txcoord at %s is not ready: %s\n", kScenario,
                 txcoord.ToString().c_str(), DescribeReply(*reply).c_str());
    return false;
  }
  return true;
}

}  // namespace

const char* TwoPhaseHttpUsage() {
  return "  2pc-http  2-branch 2PC transactions over HTTP participants (a trivial server inside\n"
         "        the bench: 200 to everything, keep-alive) through txcoord (POST\n"
         "        /v1/transactions, wait true), beside a baseline where each client thread calls\n"
         "        the same participant endpoints itself (prepare x2, commit x2), same\n"
         "        concurrency, alternately over several rounds; medians and the ratio.\n"
         "        txcoord must allow http://127.0.0.1:* (participants.allow).\n"
         "        Options: --url URL (txcoord, required), --seconds N (per side and round,\n"
         "        default 10), --concurrency N (client threads, default 8), --rounds N (default\n"
         "        3), --warmup S (seconds per side, default 1), --timeout-ms N (per request,\n"
         "        default 30000), --only baseline|txcoord (run one side only, e.g. under a\n"
         "        profiler)\n";
}

int RunTwoPhaseHttpBench(const std::vector<std::string>& args) {
  Settings settings;
  bool help = false;
  if (!Parse(args, &settings, &help)) return 2;
  if (help) {
    std::printf("usage: txc-bench 2pc-http --url URL [options]\n%s", TwoPhaseHttpUsage());
    return 0;
  }
  auto txcoord = ParseHttpUrl(settings.url);
  if (!txcoord.ok()) {
    std::fprintf(stderr, "txc-bench %s: --url: %s\n", kScenario,
                 txcoord.status().message().c_str());
    return 2;
  }
  if (!CheckCoordinator(*txcoord)) return 1;

  const ComparisonOptions& options = settings.comparison;
  // Connections: txcoord keeps up to 16 per participant host, the baseline one per thread.
  std::unique_ptr<TrivialParticipantServer> server;
  try {
    server = std::make_unique<TrivialParticipantServer>(options.concurrency + 48);
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "txc-bench %s: cannot start the participant server: %s\n", kScenario,
                 e.displayText().c_str());
    return 1;
  }
  const HttpEndpoint participant{"127.0.0.1", server->port()};
  const std::string prefix = RunGidPrefix();
  const auto timeout = std::chrono::milliseconds(settings.timeout_ms);
  std::printf(
      "txc-bench %s: %d rounds x %.1f s per side, concurrency %d, 2 branches on %s, txcoord "
      "%s, gids %s-*\n",
      kScenario, options.rounds, options.seconds, options.concurrency,
      participant.ToString().c_str(), txcoord->ToString().c_str(), prefix.c_str());
  std::fflush(stdout);

  ComparisonSide baseline{
      "baseline", "4 participant calls by the client", [&](const std::string& tag) {
        return [&, tag](int index, std::string*) -> std::unique_ptr<LoadWorker> {
          return std::make_unique<DirectWorker>(participant, timeout, GidBase(prefix, tag, index));
        };
      }};
  ComparisonSide coordinated{
      "txcoord", "POST /v1/transactions 2pc, wait", [&](const std::string& tag) {
        return [&, tag](int index, std::string*) -> std::unique_ptr<LoadWorker> {
          return std::make_unique<CoordinatorWorker>(*txcoord, participant, timeout,
                                                     GidBase(prefix, tag, index));
        };
      }};

  const double planned = (options.warmup_seconds + options.seconds * options.rounds) * 2;
  Watchdog watchdog(kScenario,
                    planned + 120 + 2.0 * static_cast<double>(settings.timeout_ms) / 1000);
  SideFigures baseline_figures, txcoord_figures;
  if (!RunComparison(options, baseline, coordinated, &baseline_figures, &txcoord_figures)) {
    return 1;
  }
  PrintComparison(options, baseline, coordinated, baseline_figures, txcoord_figures);

  // Every transaction txcoord or the baseline committed made one prepare and one commit per
  // branch; nothing was aborted.
  const TrivialParticipantServer::Counts counts = server->counts();
  const bool balanced = counts.prepare == counts.commit && counts.abort == 0 && counts.other == 0;
  std::printf("check    participant calls: prepare %s, commit %s, abort %s, other %s: %s\n",
              Thousands(static_cast<double>(counts.prepare)).c_str(),
              Thousands(static_cast<double>(counts.commit)).c_str(),
              Thousands(static_cast<double>(counts.abort)).c_str(),
              Thousands(static_cast<double>(counts.other)).c_str(),
              balanced ? "OK (every prepare got its commit)" : "MISMATCH");
  std::fflush(stdout);
  return balanced ? 0 : 1;
}

}  // namespace txc::bench
