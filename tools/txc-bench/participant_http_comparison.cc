#include "tools/txc-bench/participant_http_comparison.h"

#include <Poco/Exception.h>

#include <cstdio>
#include <memory>
#include <utility>

#include "tools/txc-bench/bench_http.h"
#include "tools/txc-bench/comparison.h"
#include "tools/txc-bench/latency.h"

namespace txc::bench {

const char* const kParticipantHttpOptionsUsage =
    "        txcoord must allow http://127.0.0.1:* (participants.allow).\n"
    "        Options: --url URL (txcoord, required), --seconds N (per side and round,\n"
    "        default 10), --concurrency N (client threads, default 8), --rounds N (default\n"
    "        3), --warmup S (seconds per side, default 1), --timeout-ms N (per request and\n"
    "        transaction, default 30000), --only baseline|txcoord (run one side only, e.g.\n"
    "        under a profiler)\n";

namespace {

struct Settings {
  std::string url;
  ComparisonOptions comparison;
  int64_t timeout_ms = 30'000;
};

bool Parse(const char* scenario, const std::vector<std::string>& args, Settings* settings,
           bool* help) {
  settings->comparison.scenario = scenario;
  settings->comparison.unit = "tx/s";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& option = args[i];
    if (option == "--help" || option == "-h") {
      *help = true;
      return true;
    }
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "txc-bench %s: unknown option or missing value: %s\n", scenario,
                   option.c_str());
      return false;
    }
    const std::string& value = args[++i];
    if (option == "--url") {
      settings->url = value;
    } else if (const auto shared = ParseComparisonOption(
                   scenario, option, value, &settings->comparison, &settings->timeout_ms);
               shared != OptionParse::kNotMine) {
      if (shared == OptionParse::kError) return false;
    } else {
      std::fprintf(stderr, "txc-bench %s: unknown option %s\n", scenario, option.c_str());
      return false;
    }
  }
  if (settings->url.empty()) {
    std::fprintf(stderr,
                 "txc-bench %s: --url is required (txcoord's address, e.g. "
                 "http://127.0.0.1:8080)\n",
                 scenario);
    return false;
  }
  return true;
}

// The baseline: the client is its own coordinator and makes the scenario's calls itself, in
// order, on one keep-alive connection, with the headers txcoord would send (no decision log:
// nothing survives a crash of this client; that is what the coordinator adds).
class DirectWorker final : public LoadWorker {
 public:
  DirectWorker(const HttpEndpoint& participant, std::chrono::milliseconds timeout,
               const std::vector<ParticipantCall>* calls, std::string gid_base)
      : client_(participant, timeout), calls_(calls), gid_base_(std::move(gid_base)) {}

  bool RunOnce(std::string* error) override {
    const std::string gid = gid_base_ + std::to_string(++n_);
    for (const ParticipantCall& call : *calls_) {
      const std::string path = "/" + call.branch + "/" + call.op;
      auto reply = client_.Send("POST", path, call.body,
                                {{"Txc-Gid", gid},
                                 {"Txc-Branch", call.branch},
                                 {"Txc-Op", call.op},
                                 {"Idempotency-Key", gid + "/" + call.branch + "/" + call.op}});
      if (!reply.ok()) {
        *error = reply.status().message();
        return false;
      }
      if (reply->status < 200 || reply->status > 299) {
        *error = "POST " + path + ": " + DescribeReply(*reply);
        return false;
      }
    }
    return true;
  }

 private:
  KeepAliveClient client_;
  const std::vector<ParticipantCall>* calls_;
  std::string gid_base_;
  uint64_t n_ = 0;
};

// Through txcoord: one POST /v1/transactions with wait true per transaction; it must commit.
class CoordinatorWorker final : public LoadWorker {
 public:
  CoordinatorWorker(const HttpEndpoint& txcoord, std::chrono::milliseconds timeout,
                    const std::string* body_after_gid, std::string gid_base)
      : client_(txcoord, timeout),
        body_after_gid_(body_after_gid),
        gid_base_(std::move(gid_base)) {}

  bool RunOnce(std::string* error) override {
    const std::string body = "{\"gid\":\"" + gid_base_ + std::to_string(++n_) + *body_after_gid_;
    return SubmitExpectingCommit(client_, body, "transaction", error);
  }

 private:
  KeepAliveClient client_;
  const std::string* body_after_gid_;
  std::string gid_base_;
  uint64_t n_ = 0;
};

}  // namespace

int RunParticipantHttpComparison(const ParticipantHttpScenario& scenario, const std::string& usage,
                                 const std::vector<std::string>& args) {
  const char* name = scenario.name;
  Settings settings;
  bool help = false;
  if (!Parse(name, args, &settings, &help)) return 2;
  if (help) {
    std::printf("usage: txc-bench %s --url URL [options]\n%s", name, usage.c_str());
    return 0;
  }
  auto txcoord = ParseHttpUrl(settings.url);
  if (!txcoord.ok()) {
    std::fprintf(stderr, "txc-bench %s: --url: %s\n", name, txcoord.status().message().c_str());
    return 2;
  }
  if (!CheckCoordinatorReady(name, *txcoord)) return 1;

  const ComparisonOptions& options = settings.comparison;
  // Connections: txcoord keeps up to 16 per participant host, the baseline one per thread.
  std::unique_ptr<TrivialParticipantServer> server;
  try {
    server = std::make_unique<TrivialParticipantServer>(options.concurrency + 48);
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "txc-bench %s: cannot start the participant server: %s\n", name,
                 e.displayText().c_str());
    return 1;
  }
  const HttpEndpoint participant{"127.0.0.1", server->port()};
  const std::string prefix = RunGidPrefix();
  const auto timeout = std::chrono::milliseconds(settings.timeout_ms);
  // The same for every transaction: built once, read by every worker.
  const std::string body_after_gid = scenario.submission_after_gid(participant.ToString(), timeout);
  std::printf(
      "txc-bench %s: %d rounds x %.1f s per side, concurrency %d, participants on %s, txcoord "
      "%s, gids %s-*\n",
      name, options.rounds, options.seconds, options.concurrency, participant.ToString().c_str(),
      txcoord->ToString().c_str(), prefix.c_str());
  std::fflush(stdout);

  ComparisonSide baseline{
      "baseline", scenario.baseline_description, [&](const std::string& tag) {
        return [&, tag](int index, std::string*) -> std::unique_ptr<LoadWorker> {
          return std::make_unique<DirectWorker>(participant, timeout, &scenario.baseline_calls,
                                                PhaseGidBase(prefix, tag, index));
        };
      }};
  ComparisonSide coordinated{
      "txcoord", scenario.txcoord_description, [&](const std::string& tag) {
        return [&, tag](int index, std::string*) -> std::unique_ptr<LoadWorker> {
          return std::make_unique<CoordinatorWorker>(*txcoord, timeout, &body_after_gid,
                                                     PhaseGidBase(prefix, tag, index));
        };
      }};

  const double planned = (options.warmup_seconds + options.seconds * options.rounds) * 2;
  Watchdog watchdog(name, planned + 120 + 2.0 * static_cast<double>(settings.timeout_ms) / 1000);
  SideFigures baseline_figures, txcoord_figures;
  if (!RunComparison(options, baseline, coordinated, &baseline_figures, &txcoord_figures)) {
    return 1;
  }
  PrintComparison(options, baseline, coordinated, baseline_figures, txcoord_figures);

  const TrivialParticipantServer::Counts counts = server->counts();
  std::string verdict;
  const bool balanced = scenario.check_counts(counts, &verdict);
  auto count = [](uint64_t n) { return Thousands(static_cast<double>(n)); };
  std::printf(
      "check    participant calls: prepare %s, commit %s, abort %s, action %s, compensate %s, "
      "try %s, confirm %s, cancel %s, other %s: %s\n",
      count(counts.prepare).c_str(), count(counts.commit).c_str(), count(counts.abort).c_str(),
      count(counts.action).c_str(), count(counts.compensate).c_str(), count(counts.tcc_try).c_str(),
      count(counts.confirm).c_str(), count(counts.cancel).c_str(), count(counts.other).c_str(),
      verdict.c_str());
  std::fflush(stdout);
  return balanced ? 0 : 1;
}

}  // namespace txc::bench
