#include "tools/txc-bench/latency.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace txc::bench {

void Latencies::Merge(const Latencies& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  sorted_ = false;
}

double Latencies::QuantileMicros(double q) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  const auto index =
      static_cast<size_t>(std::min<double>(static_cast<double>(samples_.size() - 1),
                                           std::floor(q * static_cast<double>(samples_.size()))));
  return static_cast<double>(samples_[index]) / 1000.0;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Thousands(double value) {
  auto n = static_cast<long long>(std::llround(value));
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace txc::bench
