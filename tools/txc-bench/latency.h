// Latency samples and the figures every txc-bench scenario prints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace txc::bench {

class Latencies {
 public:
  void Add(int64_t nanoseconds) { samples_.push_back(nanoseconds); }
  void Merge(const Latencies& other);
  size_t count() const { return samples_.size(); }
  // The q-quantile (0..1) in microseconds; sorts the samples.
  double QuantileMicros(double q);

 private:
  std::vector<int64_t> samples_;
  bool sorted_ = false;
};

int64_t NowNs();
// 12345.6 → "12,346"
std::string Thousands(double value);

}  // namespace txc::bench
