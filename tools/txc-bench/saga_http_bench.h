#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench saga-http`: 2-step sagas (step 2 after step 1) whose action and compensate calls
// go to HTTP participants served by the bench itself (a trivial in-process server), through
// txcoord, beside a baseline where each client thread calls the two actions itself, one after
// the other.
int RunSagaHttpBench(const std::vector<std::string>& args);

// The scenario's usage text (txc-bench --help, txc-bench saga-http --help).
const char* SagaHttpUsage();

}  // namespace txc::bench
