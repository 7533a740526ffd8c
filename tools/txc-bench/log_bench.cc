#include "tools/txc-bench/log_bench.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "coordinator/log/file_log.h"
#include "tools/txc-bench/latency.h"

namespace txc::bench {
namespace {

// About what a 2PC BEGIN with two branches weighs once encoded.
constexpr size_t kRecordBodyBytes = 200;

struct Settings {
  double seconds = 3;
  std::string dir;
  std::vector<int> writers = {1, 16, 256};
  int finished = 1'000'000;
  int live = 10'000;
  bool skip_open = false;
};

bool Parse(const std::vector<std::string>& args, Settings* settings) {
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "txc-bench log: %s needs a value\n", args[i].c_str());
        std::exit(2);
      }
      return args[++i];
    };
    if (args[i] == "--seconds") {
      settings->seconds = std::stod(value());
    } else if (args[i] == "--dir") {
      settings->dir = value();
    } else if (args[i] == "--writers") {
      settings->writers.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');)
        settings->writers.push_back(std::stoi(item));
    } else if (args[i] == "--finished") {
      settings->finished = std::stoi(value());
    } else if (args[i] == "--live") {
      settings->live = std::stoi(value());
    } else if (args[i] == "--skip-open") {
      settings->skip_open = true;
    } else {
      std::fprintf(stderr, "txc-bench log: unknown option %s\n", args[i].c_str());
      return false;
    }
  }
  return settings->seconds > 0 && !settings->writers.empty();
}

// The disk's own rate: one record-sized write and one fdatasync in a loop, one thread.
struct RawResult {
  double syncs_per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
};

RawResult MeasureRawFdatasync(const std::string& dir, double seconds) {
  const std::string path = dir + "/raw-fdatasync.bin";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("txc-bench log: open raw file");
    std::exit(1);
  }
  const std::string record(kRecordBodyBytes + 40, 'r');
  Latencies latencies;
  const int64_t end = NowNs() + static_cast<int64_t>(seconds * 1e9);
  int64_t start = NowNs();
  const int64_t first = start;
  int64_t count = 0;
  while (start < end) {
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      std::perror("txc-bench log: raw write/fdatasync");
      std::exit(1);
    }
    const int64_t now = NowNs();
    latencies.Add(now - start);
    start = now;
    ++count;
  }
  ::close(fd);
  std::filesystem::remove(path);
  RawResult result;
  result.syncs_per_second = static_cast<double>(count) / (static_cast<double>(start - first) / 1e9);
  result.p50_us = latencies.QuantileMicros(0.5);
  result.p99_us = latencies.QuantileMicros(0.99);
  return result;
}

struct AppendResult {
  double records_per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  double records_per_sync = 0;
  uint64_t failures = 0;
};

// `writers` threads, each appending forced BEGIN and END records of its own transactions.
AppendResult MeasureForcedAppends(const std::string& dir, int writers, double seconds) {
  log::FileLogOptions options;
  options.dir = dir;
  options.retention_finished_ms = 0;  // the index stays the size of what is in flight
  auto opened = log::FileLog::Open(options, nullptr);
  if (!opened.ok()) {
    std::fprintf(stderr, "txc-bench log: %s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  auto& log = *opened.value();
  std::vector<Latencies> latencies(static_cast<size_t>(writers));
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> go{false};
  const std::string body(kRecordBodyBytes, 'b');
  const int64_t duration_ns = static_cast<int64_t>(seconds * 1e9);
  int64_t started = 0;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load()) std::this_thread::yield();
      const int64_t end = started + duration_ns;
      for (uint64_t i = 0;; ++i) {
        const std::string gid = "w" + std::to_string(w) + "-" + std::to_string(i);
        for (auto type : {log::RecordType::kBegin, log::RecordType::kEnd}) {
          const int64_t before = NowNs();
          if (before >= end) return;
          Status s = log.Append(log::LogRecord{type, gid, 0, body}, log::Durability::kForced);
          latencies[static_cast<size_t>(w)].Add(NowNs() - before);
          if (!s.ok()) ++failures;
        }
      }
    });
  }
  started = NowNs();
  go = true;
  for (auto& thread : threads) thread.join();
  const double elapsed = static_cast<double>(NowNs() - started) / 1e9;
  const auto stats = log.GetStats();
  log.Close();
  Latencies all;
  for (auto& l : latencies) all.Merge(l);
  AppendResult result;
  result.records_per_second = static_cast<double>(stats.records_appended) / elapsed;
  result.p50_us = all.QuantileMicros(0.5);
  result.p99_us = all.QuantileMicros(0.99);
  result.records_per_sync = stats.syncs == 0 ? 0
                                             : static_cast<double>(stats.records_appended) /
                                                   static_cast<double>(stats.syncs);
  result.failures = failures.load();
  return result;
}

// Writes `finished` finished and `live` unfinished transactions, then times opening the log.
void MeasureOpen(const std::string& dir, const Settings& settings, int64_t retention_ms,
                 bool compact_first, const char* label) {
  std::filesystem::remove_all(dir);
  log::FileLogOptions options;
  options.dir = dir;
  options.retention_finished_ms = retention_ms;
  options.compact_after_bytes = compact_first ? options.compact_after_bytes : UINT64_MAX;
  const std::string body(kRecordBodyBytes, 'b');
  const std::string summary(60, 's');  // a final summary: outcome, times, branch states
  {
    auto opened = log::FileLog::Open(options, nullptr);
    if (!opened.ok()) {
      std::fprintf(stderr, "txc-bench log: %s\n", opened.status().ToString().c_str());
      std::exit(1);
    }
    auto& log = *opened.value();
    const int64_t now_ms = SystemClock().NowUnixMs();
    std::atomic<int> pending{0};
    auto done = [&](const Status& s) {
      if (!s.ok()) {
        std::fprintf(stderr, "txc-bench log: append failed: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      --pending;
    };
    auto append = [&](log::RecordType type, const std::string& gid, const std::string& b) {
      while (pending.load() > 50'000) std::this_thread::yield();
      ++pending;
      log.AppendAsync(log::LogRecord{type, gid, now_ms, b}, log::Durability::kLazy, done);
    };
    for (int i = 0; i < settings.finished; ++i) {
      const std::string gid = "f-" + std::to_string(i);
      append(log::RecordType::kBegin, gid, body);
      append(log::RecordType::kDecision, gid, "commit");
      append(log::RecordType::kEnd, gid, summary);
    }
    for (int i = 0; i < settings.live; ++i) {
      const std::string gid = "l-" + std::to_string(i);
      append(log::RecordType::kBegin, gid, body);
      append(log::RecordType::kDecision, gid, "commit");
    }
    if (compact_first) {
      Status compacted = log.Compact();
      if (!compacted.ok()) {
        std::fprintf(stderr, "txc-bench log: compaction: %s\n", compacted.ToString().c_str());
        std::exit(1);
      }
    }
    log.Close();
  }
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  log::RecoveredLog recovered;
  const int64_t start = NowNs();
  auto reopened = log::FileLog::Open(options, &recovered);
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  if (!reopened.ok()) {
    std::fprintf(stderr, "txc-bench log: reopen: %s\n", reopened.status().ToString().c_str());
    std::exit(1);
  }
  (*reopened)->Close();
  std::printf("open  %-44s %6.3f s  (%s MB on disk, %s unfinished, %s summaries)\n", label, seconds,
              Thousands(static_cast<double>(bytes) / 1e6).c_str(),
              Thousands(static_cast<double>(recovered.unfinished.size())).c_str(),
              Thousands(static_cast<double>(recovered.finished.size())).c_str());
}

}  // namespace

int RunLogBench(const std::vector<std::string>& args) {
  Settings settings;
  if (!Parse(args, &settings)) return 2;
  const bool own_dir = settings.dir.empty();
  if (own_dir) {
    settings.dir = "./var/bench/log-" + std::to_string(::getpid());
  }
  std::filesystem::create_directories(settings.dir);
  std::printf("txc-bench log: %.1f s per run, %zu-byte record bodies, directory %s\n",
              settings.seconds, kRecordBodyBytes, settings.dir.c_str());

  const RawResult raw = MeasureRawFdatasync(settings.dir, settings.seconds);
  std::printf(
      "baseline  raw write+fdatasync, 1 thread     %10s syncs/s    p50 %7.1f us  p99 %7.1f us\n",
      Thousands(raw.syncs_per_second).c_str(), raw.p50_us, raw.p99_us);
  for (int writers : settings.writers) {
    const std::string dir = settings.dir + "/appends-" + std::to_string(writers);
    std::filesystem::remove_all(dir);
    const AppendResult r = MeasureForcedAppends(dir, writers, settings.seconds);
    std::printf(
        "forced appends, %3d writers               %10s records/s  p50 %7.1f us  p99 %7.1f us  "
        "%6.1f records/fsync  %6.2fx raw fsync rate%s\n",
        writers, Thousands(r.records_per_second).c_str(), r.p50_us, r.p99_us, r.records_per_sync,
        r.records_per_second / raw.syncs_per_second, r.failures > 0 ? "  (FAILURES)" : "");
    std::filesystem::remove_all(dir);
  }
  if (!settings.skip_open) {
    const std::string dir = settings.dir + "/open";
    const std::string shape =
        Thousands(settings.finished) + " finished + " + Thousands(settings.live) + " live";
    MeasureOpen(dir, settings, 0, true, (shape + ", compacted, retention 0").c_str());
    MeasureOpen(dir, settings, 86'400'000, true, (shape + ", compacted, retention 1 d").c_str());
    MeasureOpen(dir, settings, 0, false, (shape + ", never compacted").c_str());
    std::filesystem::remove_all(dir);
  }
  if (own_dir) std::filesystem::remove_all(settings.dir);
  return 0;
}

}  // namespace txc::bench
