#include "tools/txc-bench/two_phase_http_bench.h"

#include <string>

#include "tools/txc-bench/participant_http_comparison.h"

namespace txc::bench {
namespace {

const char* const kBranchNames[] = {"b0", "b1"};
constexpr const char* kPrepareBody = R"({"amount":1})";

ParticipantHttpScenario Scenario() {
  ParticipantHttpScenario scenario;
  scenario.name = "2pc-http";
  scenario.baseline_description = "4 participant calls by the client";
  scenario.txcoord_description = "POST /v1/transactions 2pc, wait";
  for (const char* op : {"prepare", "commit"}) {
    for (const char* branch : kBranchNames) {
      scenario.baseline_calls.push_back(
          {branch, op, std::string(op) == "prepare" ? kPrepareBody : ""});
    }
  }
  scenario.submission_after_gid = [](const std::string& participant,
                                     std::chrono::milliseconds timeout) {
    std::string body =
        "\",\"protocol\":\"2pc\",\"wait\":true,\"timeout_ms\":" + std::to_string(timeout.count()) +
        ",\"branches\":[";
    for (const char* branch : kBranchNames) {
      const std::string base = participant + "/" + branch + "/";
      if (branch != kBranchNames[0]) body += ",";
      body += "{\"name\":\"" + std::string(branch) + "\",\"prepare\":{\"url\":\"" + base +
              "prepare\",\"body\":" + kPrepareBody + "},\"commit\":{\"url\":\"" + base +
              "commit\"},\"abort\":{\"url\":\"" + base + "abort\"}}";
    }
    return body + "]}";
  };
  // Every transaction txcoord or the baseline committed made one prepare and one commit per
  // branch; nothing was aborted.
  scenario.check_counts = [](const TrivialParticipantServer::Counts& counts, std::string* verdict) {
    const bool balanced = counts.prepare == counts.commit && counts.abort == 0 &&
                          counts.action == 0 && counts.compensate == 0 && counts.tcc_try == 0 &&
                          counts.confirm == 0 && counts.cancel == 0 && counts.other == 0;
    *verdict = balanced ? "OK (every prepare got its commit)" : "MISMATCH";
    return balanced;
  };
  return scenario;
}

}  // namespace

const char* TwoPhaseHttpUsage() {
  static const std::string usage =
      std::string(
          "  2pc-http  2-branch 2PC transactions over HTTP participants (a trivial server inside\n"
          "        the bench: 200 to everything, keep-alive) through txcoord (POST\n"
          "        /v1/transactions, wait true), beside a baseline where each client thread calls\n"
          "        the same participant endpoints itself (prepare x2, commit x2), same\n"
          "        concurrency, alternately over several rounds; medians and the ratio.\n") +
      kParticipantHttpOptionsUsage;
  return usage.c_str();
}

int RunTwoPhaseHttpBench(const std::vector<std::string>& args) {
  return RunParticipantHttpComparison(Scenario(), TwoPhaseHttpUsage(), args);
}

}  // namespace txc::bench
