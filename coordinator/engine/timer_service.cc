#include "coordinator/engine/timer_service.h"

#include <chrono>

namespace txc::engine {

TimerService::TimerService(Clock& clock) : clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

TimerService::~TimerService() { Stop(); }

void TimerService::At(int64_t at_ms, std::function<void()> callback) {
  bool earliest = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    earliest = timers_.empty() || at_ms < timers_.top().at_ms;
    timers_.push(Timer{at_ms, sequence_++, std::move(callback)});
  }
  // Only a new earliest timer changes how long the thread must sleep.
  if (earliest) cv_.notify_one();
}

void TimerService::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t TimerService::pending() const {
  std::lock_guard lock(mu_);
  return timers_.size();
}

void TimerService::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const int64_t wait_ms = timers_.top().at_ms - NowMs();
    if (wait_ms > 0) {
      // Bounded waits: the Clock may be a test clock that does not move with real time.
      cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(wait_ms, 50)));
      continue;
    }
    Timer timer = timers_.top();
    timers_.pop();
    lock.unlock();
    timer.callback();
    lock.lock();
  }
}

}  // namespace txc::engine
