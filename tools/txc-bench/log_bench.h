#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench log`: forced appends from 1, 16 and 256 writers beside the disk's raw fdatasync
// rate, and the time to open a log of 1,000,000 finished and 10,000 live transactions.
int RunLogBench(const std::vector<std::string>& args);

}  // namespace txc::bench
