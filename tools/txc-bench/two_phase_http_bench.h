#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench 2pc-http`: 2-branch 2PC transactions over HTTP participants served by the bench
// itself (a trivial in-process server), through txcoord, beside a baseline where each client
// thread makes the same four participant calls (prepare, prepare, commit, commit) itself.
int RunTwoPhaseHttpBench(const std::vector<std::string>& args);

// The scenario's usage text (txc-bench --help, txc-bench 2pc-http --help).
const char* TwoPhaseHttpUsage();

}  // namespace txc::bench
