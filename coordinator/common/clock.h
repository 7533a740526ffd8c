// Time is an input: the protocols never read a clock. The engine, the log (for retention) and the
// server read time through Clock, so tests and the simulator drive it.
#pragma once

#include <atomic>
#include <cstdint>

namespace txc {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch: timestamps stored in the log and documents.
  virtual int64_t NowUnixMs() const = 0;
  // Monotonic nanoseconds: durations, deadlines, timers.
  virtual int64_t MonotonicNs() const = 0;
};

// The process's real clocks.
Clock& SystemClock();

// A clock that moves only when told to (tests, simulator). Safe to read from other threads.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t unix_ms = 1'800'000'000'000) : unix_ms_(unix_ms) {}
  int64_t NowUnixMs() const override { return unix_ms_.load(); }
  int64_t MonotonicNs() const override { return monotonic_ns_.load(); }
  void AdvanceMs(int64_t ms) {
    unix_ms_ += ms;
    monotonic_ns_ += ms * 1'000'000;
  }

 private:
  std::atomic<int64_t> unix_ms_;
  std::atomic<int64_t> monotonic_ns_{0};
};

}  // namespace txc
