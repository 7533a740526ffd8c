// CallExecutor: the threads that make blocking participant calls (HTTP, database). A fixed number
// of workers and a bounded queue: Submit refuses work beyond the bound instead of growing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace txc::engine {

class CallExecutor {
 public:
  CallExecutor(size_t threads, size_t queue_max);
  ~CallExecutor();  // Stop() without a deadline

  CallExecutor(const CallExecutor&) = delete;
  CallExecutor& operator=(const CallExecutor&) = delete;

  // False when the queue is full or the executor is stopping; the task did not run.
  [[nodiscard]] bool Submit(std::function<void()> task);
  // Drops what is queued (those calls never started; recovery drives them again) and waits for
  // the calls in progress, at most `grace`. True when every worker has ended; false when some
  // call is still running at the deadline: its thread is detached, and the owner must end the
  // process before destroying what those calls use.
  bool Stop(std::chrono::milliseconds grace = std::chrono::milliseconds::max());
  size_t queued() const;

 private:
  void Work();

  const size_t queue_max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  size_t running_ = 0;  // tasks executing now
  std::condition_variable idle_cv_;
  std::vector<std::thread> workers_;
};

}  // namespace txc::engine
