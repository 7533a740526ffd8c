// Closed-loop load for the comparison scenarios: `concurrency` threads, each with its own
// connections, run one operation after another for a fixed time; then transfers/s, latency
// quantiles and errors. Used for both sides of a comparison (the baseline and txcoord), so the
// two are measured by the same code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace txc::bench {

// One client: its connections and what one operation does. Created, used and destroyed on its
// own thread (some client libraries register threads).
class LoadWorker {
 public:
  virtual ~LoadWorker() = default;
  // One operation (one transfer, one transaction). False, with *error set, when it failed.
  virtual bool RunOnce(std::string* error) = 0;
};

// Makes worker `index` (0..concurrency-1) on its own thread; nullptr with *error set when its
// connections cannot be opened.
using LoadWorkerFactory = std::function<std::unique_ptr<LoadWorker>(int index, std::string* error)>;

struct LoadResult {
  double seconds = 0;  // from the start signal until the last operation ended
  uint64_t ok = 0;
  uint64_t errors = 0;
  double per_second = 0;  // successful operations per second
  double p50_us = 0;      // of the successful operations
  double p99_us = 0;
  std::string first_error;  // empty without errors
  std::string setup_error;  // a worker could not be created: nothing was measured
};

// Creates every worker first, then starts them together; each runs operations until `seconds`
// have passed since the start (an operation under way then is finished and counted).
LoadResult RunLoad(int concurrency, double seconds, const LoadWorkerFactory& factory);

// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
double Median(std::vector<double> values);

}  // namespace txc::bench
