// A process that appends to a decision log as fast as it can and reports, on stdout, each record
// the log acknowledged. log_crash_test kills it with SIGKILL at random moments and checks that
// every acknowledged record survived.
//
// usage: log_crash_writer DIR PREFIX THREADS
// Output lines (each one write(2), so a kill never leaves half a line): "B gid", "D gid".
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/log/file_log.h"

namespace {

void Report(char kind, const std::string& gid) {
  const std::string line = std::string(1, kind) + " " + gid + "\n";
  if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::_Exit(3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log_crash_writer DIR PREFIX THREADS\n");
    return 2;
  }
  txc::log::FileLogOptions options;
  options.dir = argv[1];
  options.segment_bytes_max = 16 << 10;    // rotations all the time
  options.compact_after_bytes = 64 << 10;  // and compactions
  options.retention_finished_ms = 3'600'000;
  auto log = txc::log::FileLog::Open(options, nullptr);
  if (!log.ok()) {
    std::fprintf(stderr, "log_crash_writer: %s\n", log.status().ToString().c_str());
    return 1;
  }
  const std::string prefix = argv[2];
  const int threads = std::atoi(argv[3]);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string gid = prefix + "-" + std::to_string(t) + "-" + std::to_string(i);
        using txc::log::Durability;
        using txc::log::RecordType;
        const int64_t now = txc::SystemClock().NowUnixMs();
        if (!(*log)->Append({RecordType::kBegin, gid, now, "branches"}, Durability::kForced).ok()) {
          std::_Exit(4);
        }
        Report('B', gid);
        if (!(*log)
                 ->Append({RecordType::kDecision, gid, now, "commit"}, Durability::kForced)
                 .ok()) {
          std::_Exit(4);
        }
        Report('D', gid);
        if (i % 2 == 0) {
          if (!(*log)->Append({RecordType::kEnd, gid, now, "committed"}, Durability::kLazy).ok()) {
            std::_Exit(4);
          }
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return 0;
}
