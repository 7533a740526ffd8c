// TimerService: one thread that runs callbacks at their time (engine time: monotonic ms from the
// Clock). Timers are never cancelled: the engine ignores a stale one by its token, which keeps
// this small. The number pending is bounded by the engine's (in-flight transactions x (branches
// + 1)), since each branch has at most one retry armed and each transaction one deadline.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "coordinator/common/clock.h"

namespace txc::engine {

class TimerService {
 public:
  explicit TimerService(Clock& clock);
  ~TimerService();

  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  void At(int64_t at_ms, std::function<void()> callback);
  void Stop();
  size_t pending() const;

 private:
  struct Timer {
    int64_t at_ms;
    uint64_t sequence;
    std::function<void()> callback;
    bool operator>(const Timer& other) const {
      return at_ms != other.at_ms ? at_ms > other.at_ms : sequence > other.sequence;
    }
  };
  int64_t NowMs() const { return clock_.MonotonicNs() / 1'000'000; }
  void Run();

  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  uint64_t sequence_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace txc::engine
