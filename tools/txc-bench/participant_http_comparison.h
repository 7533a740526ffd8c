// The HTTP-participant scenarios (2pc-http, saga-http, tcc-http) share everything but the
// protocol: the bench serves the participants itself (TrivialParticipantServer), the txcoord side
// submits one transaction per operation (POST /v1/transactions, wait true) whose calls go to that
// server, and the baseline side makes the same participant calls from the client, in order, on
// one keep-alive connection per thread. Both sides run through RunComparison (comparison.h).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tools/txc-bench/trivial_participant_server.h"

namespace txc::bench {

// One participant call of the baseline: POST /<branch>/<op> with `body`, and the headers txcoord
// would send (Txc-Gid, Txc-Branch, Txc-Op, Idempotency-Key).
struct ParticipantCall {
  std::string branch;
  std::string op;
  std::string body;
};

struct ParticipantHttpScenario {
  const char* name = "";             // "2pc-http": the command, and the start of every message
  std::string baseline_description;  // one operation of each side, in a few words
  std::string txcoord_description;
  // What the baseline client does per operation, in order.
  std::vector<ParticipantCall> baseline_calls;
  // The submission of one transaction, after its gid: `","protocol":...,"branches":[...]}`.
  // `participant` is the server's root URL (http://127.0.0.1:PORT; branch b's calls go to
  // /<b>/<op>); `timeout` is the transaction's timeout_ms.
  std::function<std::string(const std::string& participant, std::chrono::milliseconds timeout)>
      submission_after_gid;
  // After the run: whether the participant calls add up (every prepare got its commit, no saga
  // step was compensated...); *verdict is printed either way.
  std::function<bool(const TrivialParticipantServer::Counts& counts, std::string* verdict)>
      check_counts;
};

// The options every such scenario takes, for its usage text.
extern const char* const kParticipantHttpOptionsUsage;

// Parses `args` (scenario's own options only: --url and the comparison options), runs the
// comparison and prints it, then checks the participant calls. The exit code: 0, 1 when the run
// or the check failed, 2 for a usage error.
int RunParticipantHttpComparison(const ParticipantHttpScenario& scenario, const std::string& usage,
                                 const std::vector<std::string>& args);

}  // namespace txc::bench
