#include "coordinator/engine/call_executor.h"

#include "coordinator/common/check.h"

namespace txc::engine {

CallExecutor::CallExecutor(size_t threads, size_t queue_max) : queue_max_(queue_max) {
  TXC_CHECK(threads > 0 && queue_max > 0, "an executor has threads and room");
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

CallExecutor::~CallExecutor() { Stop(); }

bool CallExecutor::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= queue_max_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

bool CallExecutor::Stop(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    queue_.clear();
    cv_.notify_all();
    const auto idle = [&] { return running_ == 0; };
    if (grace == std::chrono::milliseconds::max()) {
      idle_cv_.wait(lock, idle);
    } else if (!idle_cv_.wait_for(lock, grace, idle)) {
      for (auto& worker : workers_) {
        if (worker.joinable()) worker.detach();
      }
      return false;
    }
  }
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  return true;
}

size_t CallExecutor::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void CallExecutor::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    std::lock_guard lock(mu_);
    --running_;
    if (running_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace txc::engine
