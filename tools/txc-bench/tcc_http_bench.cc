#include "tools/txc-bench/tcc_http_bench.h"

#include <string>

#include "tools/txc-bench/participant_http_comparison.h"

namespace txc::bench {
namespace {

const char* const kBranchNames[] = {"b0", "b1"};
// Every call carries the amount: a TCC participant confirms or cancels what its try reserved.
constexpr const char* kCallBody = R"({"amount":1})";

ParticipantHttpScenario Scenario() {
  ParticipantHttpScenario scenario;
  scenario.name = "tcc-http";
  scenario.baseline_description = "try x2, confirm x2 by the client";
  scenario.txcoord_description = "POST /v1/transactions tcc, wait";
  for (const char* op : {"try", "confirm"}) {
    for (const char* branch : kBranchNames)
      scenario.baseline_calls.push_back({branch, op, kCallBody});
  }
  scenario.submission_after_gid = [](const std::string& participant,
                                     std::chrono::milliseconds timeout) {
    std::string body =
        "\",\"protocol\":\"tcc\",\"wait\":true,\"timeout_ms\":" + std::to_string(timeout.count()) +
        ",\"branches\":[";
    for (const char* branch : kBranchNames) {
      const std::string base = participant + "/" + branch + "/";
      if (branch != kBranchNames[0]) body += ",";
      body += "{\"name\":\"" + std::string(branch) + "\"";
      for (const char* op : {"try", "confirm", "cancel"}) {
        body += ",\"" + std::string(op) + "\":{\"url\":\"" + base + op +
                "\",\"body\":" + kCallBody + "}";
      }
      body += "}";
    }
    return body + "]}";
  };
  // Every transaction of either side tried both branches and confirmed both; the server answers
  // 200 to every try, so nothing was cancelled.
  scenario.check_counts = [](const TrivialParticipantServer::Counts& counts, std::string* verdict) {
    const bool balanced = counts.tcc_try == counts.confirm && counts.tcc_try % 2 == 0 &&
                          counts.cancel == 0 && counts.prepare == 0 && counts.commit == 0 &&
                          counts.abort == 0 && counts.action == 0 && counts.compensate == 0 &&
                          counts.other == 0;
    *verdict = balanced ? "OK (every try got its confirm, nothing cancelled)" : "MISMATCH";
    return balanced;
  };
  return scenario;
}

}  // namespace

const char* TccHttpUsage() {
  static const std::string usage =
      std::string(
          "  tcc-http  2-branch TCC transactions over HTTP participants (the same trivial\n"
          "        server) through txcoord (POST /v1/transactions, protocol tcc, wait true; try,\n"
          "        confirm and cancel go to the server, cancel is never needed), beside a\n"
          "        baseline where each client thread calls try x2 then confirm x2 itself, same\n"
          "        concurrency, alternately over several rounds; medians and the ratio.\n") +
      kParticipantHttpOptionsUsage;
  return usage.c_str();
}

int RunTccHttpBench(const std::vector<std::string>& args) {
  return RunParticipantHttpComparison(Scenario(), TccHttpUsage(), args);
}

}  // namespace txc::bench
