#include "tools/txc-bench/load_runner.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tools/txc-bench/latency.h"

namespace txc::bench {

LoadResult RunLoad(int concurrency, double seconds, const LoadWorkerFactory& factory) {
  struct PerThread {
    Latencies latencies;
    uint64_t ok = 0;
    uint64_t errors = 0;
    std::string first_error;
    std::string setup_error;
    int64_t finished_ns = 0;  // when its last operation ended
  };
  std::vector<PerThread> per_thread(static_cast<size_t>(concurrency));
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  bool abandon = false;
  int64_t end_ns = 0;

  std::vector<std::thread> threads;
  threads.reserve(per_thread.size());
  for (int i = 0; i < concurrency; ++i) {
    threads.emplace_back([&, i] {
      PerThread& mine = per_thread[static_cast<size_t>(i)];
      std::unique_ptr<LoadWorker> worker = factory(i, &mine.setup_error);
      if (worker == nullptr && mine.setup_error.empty()) mine.setup_error = "worker not created";
      int64_t end = 0;
      {
        std::unique_lock lock(mu);
        ++ready;
        if (worker == nullptr) abandon = true;
        cv.notify_all();
        cv.wait(lock, [&] { return go || abandon; });
        if (abandon) return;
        end = end_ns;
      }
      for (;;) {
        const int64_t before = NowNs();
        if (before >= end) {
          mine.finished_ns = before;
          break;
        }
        std::string error;
        if (worker->RunOnce(&error)) {
          mine.latencies.Add(NowNs() - before);
          ++mine.ok;
        } else {
          ++mine.errors;
          if (mine.first_error.empty()) mine.first_error = error.empty() ? "(no message)" : error;
        }
      }
      worker.reset();  // its connections close on this thread
    });
  }

  int64_t started = 0;
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return ready == concurrency || abandon; });
    if (!abandon) {
      started = NowNs();
      end_ns = started + static_cast<int64_t>(seconds * 1e9);
      go = true;
    }
    cv.notify_all();
  }
  // A failed worker abandons the run only after every other worker has finished setting up.
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return ready == concurrency; });
  }
  for (auto& thread : threads) thread.join();

  LoadResult result;
  for (const PerThread& mine : per_thread) {
    if (!mine.setup_error.empty() && result.setup_error.empty()) {
      result.setup_error = mine.setup_error;
    }
  }
  if (!result.setup_error.empty()) return result;
  int64_t finished = started;
  Latencies all;
  for (const PerThread& mine : per_thread) {
    finished = std::max(finished, mine.finished_ns);
    all.Merge(mine.latencies);
    result.ok += mine.ok;
    result.errors += mine.errors;
    if (result.first_error.empty()) result.first_error = mine.first_error;
  }
  result.seconds = static_cast<double>(finished - started) / 1e9;
  result.per_second = result.seconds > 0 ? static_cast<double>(result.ok) / result.seconds : 0;
  result.p50_us = all.QuantileMicros(0.5);
  result.p99_us = all.QuantileMicros(0.99);
  return result;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2;
}

}  // namespace txc::bench
