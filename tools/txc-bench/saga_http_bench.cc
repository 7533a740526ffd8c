#include "tools/txc-bench/saga_http_bench.h"

#include <string>

#include "tools/txc-bench/participant_http_comparison.h"

namespace txc::bench {
namespace {

const char* const kStepNames[] = {"s1", "s2"};
constexpr const char* kStepBody = R"({"amount":1})";

ParticipantHttpScenario Scenario() {
  ParticipantHttpScenario scenario;
  scenario.name = "saga-http";
  scenario.baseline_description = "2 actions by the client, in order";
  scenario.txcoord_description = "POST /v1/transactions saga, wait";
  for (const char* step : kStepNames)
    scenario.baseline_calls.push_back({step, "action", kStepBody});
  scenario.submission_after_gid = [](const std::string& participant,
                                     std::chrono::milliseconds timeout) {
    std::string body =
        "\",\"protocol\":\"saga\",\"wait\":true,\"timeout_ms\":" + std::to_string(timeout.count()) +
        ",\"branches\":[";
    const char* previous = nullptr;
    for (const char* step : kStepNames) {
      const std::string base = participant + "/" + step + "/";
      if (previous != nullptr) body += ",";
      body += "{\"name\":\"" + std::string(step) + "\",\"action\":{\"url\":\"" + base +
              "action\",\"body\":" + kStepBody + "},\"compensate\":{\"url\":\"" + base +
              "compensate\",\"body\":" + kStepBody + "}";
      // Step 2 after step 1 (the default order too; written out so the submission says it).
      if (previous != nullptr) body += ",\"after\":[\"" + std::string(previous) + "\"]";
      body += "}";
      previous = step;
    }
    return body + "]}";
  };
  // Every saga of either side ran both actions, and every action succeeded, so nothing was
  // compensated.
  scenario.check_counts = [](const TrivialParticipantServer::Counts& counts, std::string* verdict) {
    const bool balanced = counts.action % 2 == 0 && counts.compensate == 0 && counts.prepare == 0 &&
                          counts.commit == 0 && counts.abort == 0 && counts.tcc_try == 0 &&
                          counts.confirm == 0 && counts.cancel == 0 && counts.other == 0;
    *verdict = balanced ? "OK (two actions per saga, nothing compensated)" : "MISMATCH";
    return balanced;
  };
  return scenario;
}

}  // namespace

const char* SagaHttpUsage() {
  static const std::string usage =
      std::string(
          "  saga-http 2-step sagas (step 2 after step 1) over HTTP participants (the same\n"
          "        trivial server) through txcoord (POST /v1/transactions, protocol saga, wait\n"
          "        true; the action calls go to the server, compensate is never needed), beside\n"
          "        a baseline where each client thread calls the two actions itself, one after\n"
          "        the other, same concurrency, alternately over several rounds; medians and\n"
          "        the ratio.\n") +
      kParticipantHttpOptionsUsage;
  return usage.c_str();
}

int RunSagaHttpBench(const std::vector<std::string>& args) {
  return RunParticipantHttpComparison(Scenario(), SagaHttpUsage(), args);
}

}  // namespace txc::bench
