#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench 2pc-db`: cross-database transfers (debit a PostgreSQL account, credit a MariaDB /
// MySQL account) as 2PC transactions through txcoord, beside a baseline that runs the same
// statements as client-side 2PC/XA with no coordinator; then checks that no money appeared or
// vanished and that nothing was left prepared.
int RunTwoPhaseDbBench(const std::vector<std::string>& args);

// The scenario's usage text (txc-bench --help, txc-bench 2pc-db --help).
const char* TwoPhaseDbUsage();

}  // namespace txc::bench
