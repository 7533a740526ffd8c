#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench tcc-http`: 2-branch TCC transactions whose try, confirm and cancel calls go to HTTP
// participants served by the bench itself (a trivial in-process server), through txcoord, beside
// a baseline where each client thread makes the same four calls (try, try, confirm, confirm)
// itself.
int RunTccHttpBench(const std::vector<std::string>& args);

// The scenario's usage text (txc-bench --help, txc-bench tcc-http --help).
const char* TccHttpUsage();

}  // namespace txc::bench
