// CallExecutor: the threads that make blocking participant calls (HTTP, database). A fixed number
// of workers and a bounded queue: Submit refuses work beyond the bound instead of growing.
#pragma once

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
  ~CallExecutor();  // finishes queued work, then joins

  CallExecutor(const CallExecutor&) = delete;
  CallExecutor& operator=(const CallExecutor&) = delete;

  // False when the queue is full or the executor is stopping; the task did not run.
  [[nodiscard]] bool Submit(std::function<void()> task);
  void Stop();
  size_t queued() const;

 private:
  void Work();

  const size_t queue_max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace txc::engine
