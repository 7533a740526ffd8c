// FileLog: appends, recovery, group commit, poisoning, power loss, compaction, retention, the lock.
// Damage to files on disk has its own file: log_corruption_test.cc.
#include "coordinator/log/file_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "coordinator/log/fault_injection_file_system.h"
#include "tests/support/test_env.h"
#include "tests/unit/log/log_test_util.h"

namespace txc::log {
namespace {

using testing::TempDir;

class FileLogTest : public ::testing::Test {
 protected:
  FileLogOptions Options() {
    FileLogOptions options;
    options.dir = dir_.path() + "/log";
    options.clock = &clock_;
    return options;
  }

  std::unique_ptr<FileLog> OpenOrDie(const FileLogOptions& options, RecoveredLog* recovered) {
    auto log = FileLog::Open(options, recovered);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  TempDir dir_;
  ManualClock clock_;
};

TEST_F(FileLogTest, EmptyDirectoryOpensEmpty) {
  RecoveredLog recovered;
  auto log = OpenOrDie(Options(), &recovered);
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(recovered.unfinished.empty());
  EXPECT_TRUE(recovered.finished.empty());
  EXPECT_EQ(recovered.torn_tail_bytes, 0u);
  EXPECT_TRUE(log->Healthy());
  EXPECT_EQ(log->Kind(), "file");
}

TEST_F(FileLogTest, ForcedAndLazyRecordsSurviveReopenInOrder) {
  {
    auto log = OpenOrDie(Options(), nullptr);
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "a", "branches:2"), Durability::kForced).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "b", "branches:1"), Durability::kForced).ok());
    ASSERT_TRUE(
        log->Append(Rec(RecordType::kProgress, "a", "b0 prepared"), Durability::kLazy).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kDecision, "a", "commit"), Durability::kForced).ok());
    ASSERT_TRUE(
        log->Append(Rec(RecordType::kEnd, "b", "aborted", clock_.NowUnixMs()), Durability::kLazy)
            .ok());
    log->Close();
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 1u);
  EXPECT_EQ(recovered.unfinished[0].gid, "a");
  ASSERT_EQ(recovered.unfinished[0].records.size(), 3u);
  EXPECT_EQ(recovered.unfinished[0].records[0], Rec(RecordType::kBegin, "a", "branches:2"));
  EXPECT_EQ(recovered.unfinished[0].records[1], Rec(RecordType::kProgress, "a", "b0 prepared"));
  EXPECT_EQ(recovered.unfinished[0].records[2], Rec(RecordType::kDecision, "a", "commit"));
  ASSERT_EQ(recovered.finished.size(), 1u);
  EXPECT_EQ(recovered.finished[0], Rec(RecordType::kEnd, "b", "aborted", clock_.NowUnixMs()));
}

TEST_F(FileLogTest, UnfinishedComeBackInBeginOrderAcrossReopens) {
  for (int round = 0; round < 3; ++round) {
    auto log = OpenOrDie(Options(), nullptr);
    for (int i = 0; i < 5; ++i) {
      const std::string gid = "g" + std::to_string(round * 5 + i);
      ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, gid, "x"), Durability::kForced).ok());
    }
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 15u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(recovered.unfinished[i].gid, "g" + std::to_string(i));
}

TEST_F(FileLogTest, RefusesRecordsThatBreakTheTransactionOrder) {
  auto log = OpenOrDie(Options(), nullptr);
  EXPECT_EQ(log->Append(Rec(RecordType::kDecision, "nope", "commit"), Durability::kForced).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "a", ""), Durability::kForced).ok());
  EXPECT_EQ(log->Append(Rec(RecordType::kBegin, "a", ""), Durability::kForced).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(
      log->Append(Rec(RecordType::kEnd, "a", "", clock_.NowUnixMs()), Durability::kForced).ok());
  EXPECT_EQ(log->Append(Rec(RecordType::kProgress, "a", ""), Durability::kForced).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(log->Append(Rec(RecordType::kBegin, "", ""), Durability::kForced).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      log->Append(Rec(RecordType::kBegin, std::string(256, 'g'), ""), Durability::kForced).code(),
      StatusCode::kInvalidArgument);
  // Refusals leave the log healthy and the refused records out of it.
  EXPECT_TRUE(log->Healthy());
  log->Close();
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  EXPECT_TRUE(recovered.unfinished.empty());
  EXPECT_EQ(recovered.finished.size(), 1u);
}

TEST_F(FileLogTest, RecordOverTheBodyLimitIsRefused) {
  FileLogOptions options = Options();
  options.record_bytes_max = 100;
  auto log = OpenOrDie(options, nullptr);
  EXPECT_EQ(
      log->Append(Rec(RecordType::kBegin, "a", std::string(101, 'x')), Durability::kForced).code(),
      StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      log->Append(Rec(RecordType::kBegin, "a", std::string(100, 'x')), Durability::kForced).ok());
}

TEST_F(FileLogTest, ConcurrentForcedAppendsShareSyncs) {
  auto log = OpenOrDie(Options(), nullptr);
  constexpr int kThreads = 32;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string gid = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!log->Append(Rec(RecordType::kBegin, gid, "payload"), Durability::kForced).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const auto stats = log->GetStats();
  EXPECT_EQ(stats.records_appended, static_cast<uint64_t>(kThreads * kPerThread));
  // Group commit: with 32 writers waiting, syncs are shared.
  EXPECT_LT(stats.syncs, stats.records_appended);
  log->Close();
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  EXPECT_EQ(recovered.unfinished.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(FileLogTest, AppendAsyncReportsDurabilityThroughTheCallback) {
  auto log = OpenOrDie(Options(), nullptr);
  std::mutex mu;
  std::vector<Status> results;
  constexpr int kRecords = 200;
  std::atomic<int> done{0};
  for (int i = 0; i < kRecords; ++i) {
    log->AppendAsync(Rec(RecordType::kBegin, "g" + std::to_string(i), ""), Durability::kForced,
                     [&](const Status& s) {
                       std::lock_guard lock(mu);
                       results.push_back(s);
                       ++done;
                     });
  }
  log->Close();  // flushes the queue before it returns
  EXPECT_EQ(done.load(), kRecords);
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(FileLogTest, FailedSyncPoisonsTheLog) {
  FaultInjectionFileSystem fs(DefaultFileSystem());
  FileLogOptions options = Options();
  options.file_system = &fs;
  auto log = OpenOrDie(options, nullptr);
  ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "before", ""), Durability::kForced).ok());
  fs.FailSyncs(1);
  const Status failed = log->Append(Rec(RecordType::kBegin, "during", ""), Durability::kForced);
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_NE(failed.message().find("poisoned"), std::string::npos) << failed.message();
  EXPECT_FALSE(log->Healthy());
  EXPECT_EQ(log->Health().code(), StatusCode::kIoError);
  // The next sync would succeed, but the state of the failed bytes is unknown: nothing more is
  // acknowledged.
  EXPECT_FALSE(log->Append(Rec(RecordType::kBegin, "after", ""), Durability::kForced).ok());
  EXPECT_FALSE(log->Append(Rec(RecordType::kBegin, "lazy", ""), Durability::kLazy).ok());
  EXPECT_FALSE(log->Compact().ok());
  log->Close();
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  std::set<std::string> gids;
  for (const auto& txn : recovered.unfinished) gids.insert(txn.gid);
  EXPECT_TRUE(gids.contains("before"));
  EXPECT_FALSE(gids.contains("after"));
}

TEST_F(FileLogTest, ShortWritePoisonsAndTheTornTailIsCutAtReopen) {
  FaultInjectionFileSystem fs(DefaultFileSystem());
  FileLogOptions options = Options();
  options.file_system = &fs;
  {
    auto log = OpenOrDie(options, nullptr);
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "kept", "x"), Durability::kForced).ok());
    fs.LimitAppendBytes(7);  // the next frame is cut inside its header
    EXPECT_EQ(log->Append(Rec(RecordType::kBegin, "torn", "y"), Durability::kForced).code(),
              StatusCode::kIoError);
    EXPECT_FALSE(log->Healthy());
    fs.LimitAppendBytes(-1);
  }
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 1u);
  EXPECT_EQ(recovered.unfinished[0].gid, "kept");
  EXPECT_EQ(recovered.torn_tail_bytes, 7u);
}

// Power loss: whatever was acknowledged as forced is there after the unsynced bytes vanish.
TEST_F(FileLogTest, PowerLossKeepsEveryAcknowledgedForcedRecord) {
  FaultInjectionFileSystem fs(DefaultFileSystem());
  FileLogOptions options = Options();
  options.file_system = &fs;
  options.lazy_sync_interval_ms = 60'000;  // lazy records stay unsynced until a forced one
  auto log = OpenOrDie(options, nullptr);
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string gid = "t" + std::to_string(t) + "-" + std::to_string(i);
        const auto durability = i % 3 == 2 ? Durability::kLazy : Durability::kForced;
        Status s = log->Append(Rec(RecordType::kBegin, gid, std::string(50, 'p')), durability);
        if (!s.ok()) return;
        if (durability == Durability::kForced) {
          std::lock_guard lock(mu);
          acknowledged.insert(gid);
        }
      }
    });
  }
  while (true) {
    std::lock_guard lock(mu);
    if (acknowledged.size() >= 2000) break;
  }
  // The crash: from here nothing reaches the disk, and what was not synced is gone.
  std::set<std::string> acknowledged_before_crash;
  {
    std::lock_guard lock(mu);
    ASSERT_TRUE(fs.SimulateCrash().ok());
    acknowledged_before_crash = acknowledged;
  }
  stop = true;
  for (auto& thread : threads) thread.join();
  log.reset();

  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  std::set<std::string> present;
  for (const auto& txn : recovered.unfinished) present.insert(txn.gid);
  for (const auto& gid : acknowledged_before_crash) {
    ASSERT_TRUE(present.contains(gid)) << "acknowledged forced record lost: " << gid;
  }
}

TEST_F(FileLogTest, LazyRecordsAreSyncedByTheInterval) {
  FaultInjectionFileSystem fs(DefaultFileSystem());
  FileLogOptions options = Options();
  options.file_system = &fs;
  options.lazy_sync_interval_ms = 5;
  options.clock = nullptr;  // the real clock drives the interval
  auto log = OpenOrDie(options, nullptr);
  ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "lazy", ""), Durability::kLazy).ok());
  const int syncs_before = fs.sync_calls();
  for (int i = 0; i < 500 && log->GetStats().syncs == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GT(fs.sync_calls(), syncs_before);
  ASSERT_TRUE(fs.SimulateCrash().ok());
  log.reset();
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 1u);
}

TEST_F(FileLogTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto first = OpenOrDie(Options(), nullptr);
  auto second = FileLog::Open(Options(), nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("locked by another txcoord"), std::string::npos)
      << second.status().message();
  first->Close();
  auto third = FileLog::Open(Options(), nullptr);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(FileLogTest, QueueBoundRejectsWithResourceExhausted) {
  FileLogOptions options = Options();
  options.queue_records_max = 1;
  auto log = OpenOrDie(options, nullptr);
  // Flood the queue from many threads at once: with room for one waiting record some appends are
  // refused, and each refusal is an explicit ResourceExhausted, never a hang or a crash.
  std::atomic<int> exhausted{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Status s = log->Append(
            Rec(RecordType::kBegin, "q" + std::to_string(t) + "-" + std::to_string(i), ""),
            Durability::kForced);
        if (s.ok()) {
          ++ok;
        } else {
          EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
          ++exhausted;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok + exhausted, 16 * 200);
  EXPECT_GT(exhausted.load(), 0);
  EXPECT_TRUE(log->Healthy());
}

// ---------------------------------------------------------------------------------------------
// Compaction and retention

TEST_F(FileLogTest, CompactionKeepsUnfinishedAndDropsFinished) {
  FileLogOptions options = Options();
  options.retention_finished_ms = 0;
  options.segment_bytes_max = 64 << 10;  // several segments
  {
    auto log = OpenOrDie(options, nullptr);
    for (int i = 0; i < 3000; ++i) {
      const std::string gid = "g" + std::to_string(i);
      ASSERT_TRUE(
          log->Append(Rec(RecordType::kBegin, gid, std::string(40, 'b')), Durability::kLazy).ok());
      ASSERT_TRUE(log->Append(Rec(RecordType::kDecision, gid, "commit"), Durability::kLazy).ok());
      if (i % 100 != 0) {
        ASSERT_TRUE(log->Append(Rec(RecordType::kEnd, gid, "committed"), Durability::kLazy).ok());
      }
    }
    clock_.AdvanceMs(1);
    const uint64_t bytes_before = DirectoryBytes(options.dir);
    ASSERT_TRUE(log->Compact().ok());
    EXPECT_LT(DirectoryBytes(options.dir) * 10, bytes_before);
    EXPECT_EQ(log->GetStats().compactions, 1u);
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(options, &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 30u);
  for (size_t i = 0; i < 30; ++i) {
    EXPECT_EQ(recovered.unfinished[i].gid, "g" + std::to_string(i * 100));
    ASSERT_EQ(recovered.unfinished[i].records.size(), 2u);
    EXPECT_EQ(recovered.unfinished[i].records[1].body, "commit");
  }
  EXPECT_TRUE(recovered.finished.empty());
}

TEST_F(FileLogTest, RetainedSummariesOutliveCompactionUntilTheirRetention) {
  FileLogOptions options = Options();
  options.retention_finished_ms = 60'000;
  {
    auto log = OpenOrDie(options, nullptr);
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "old", ""), Durability::kForced).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kEnd, "old", "committed", clock_.NowUnixMs()),
                            Durability::kForced)
                    .ok());
    clock_.AdvanceMs(30'000);
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "new", ""), Durability::kForced).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kEnd, "new", "aborted", clock_.NowUnixMs()),
                            Durability::kForced)
                    .ok());
    ASSERT_TRUE(log->Compact().ok());
  }
  {
    RecoveredLog recovered;
    auto log = OpenOrDie(options, &recovered);
    ASSERT_EQ(recovered.finished.size(), 2u);
    EXPECT_EQ(recovered.finished[0].gid, "old");
    EXPECT_EQ(recovered.finished[1].gid, "new");
    EXPECT_EQ(recovered.finished[1].body, "aborted");
    clock_.AdvanceMs(30'001);  // "old" is past its retention, "new" is not
    ASSERT_TRUE(log->Compact().ok());
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(options, &recovered);
  ASSERT_EQ(recovered.finished.size(), 1u);
  EXPECT_EQ(recovered.finished[0].gid, "new");
}

TEST_F(FileLogTest, RetainedSummariesAreBoundedInNumber) {
  FileLogOptions options = Options();
  options.finished_retained_max = 10;
  {
    auto log = OpenOrDie(options, nullptr);
    for (int i = 0; i < 25; ++i) {
      const std::string gid = "f" + std::to_string(i);
      ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, gid, ""), Durability::kLazy).ok());
      ASSERT_TRUE(
          log->Append(Rec(RecordType::kEnd, gid, "", clock_.NowUnixMs()), Durability::kForced)
              .ok());
    }
    EXPECT_EQ(log->GetStats().retained_finished, 10u);
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(options, &recovered);
  ASSERT_EQ(recovered.finished.size(), 10u);
  EXPECT_EQ(recovered.finished.front().gid, "f15");  // the oldest went first
  EXPECT_EQ(recovered.finished.back().gid, "f24");
}

TEST_F(FileLogTest, GidCanStartAgainAfterItFinished) {
  {
    auto log = OpenOrDie(Options(), nullptr);
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "g", "first"), Durability::kForced).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kEnd, "g", "done"), Durability::kForced).ok());
    ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "g", "second"), Durability::kForced).ok());
    ASSERT_TRUE(log->Compact().ok());
  }
  RecoveredLog recovered;
  auto log = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 1u);
  EXPECT_EQ(recovered.unfinished[0].records[0].body, "second");
  EXPECT_TRUE(recovered.finished.empty());
}

TEST_F(FileLogTest, CompactionWhileAppendingLosesNothing) {
  FileLogOptions options = Options();
  options.retention_finished_ms = 0;
  options.segment_bytes_max = 32 << 10;
  options.compact_after_bytes = 128 << 10;  // automatic compactions too
  auto log = OpenOrDie(options, nullptr);
  constexpr int kThreads = 6;
  constexpr int kPerThread = 600;
  std::atomic<bool> appending{true};
  std::thread compactor([&] {
    while (appending.load()) {
      Status s = log->Compact();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string gid = "c" + std::to_string(t) + "-" + std::to_string(i);
        ASSERT_TRUE(
            log->Append(Rec(RecordType::kBegin, gid, std::string(64, 'x')), Durability::kForced)
                .ok());
        ASSERT_TRUE(log->Append(Rec(RecordType::kProgress, gid, "p"), Durability::kLazy).ok());
        if (i % 7 != 0) {
          ASSERT_TRUE(log->Append(Rec(RecordType::kEnd, gid, "e"), Durability::kLazy).ok());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  appending = false;
  compactor.join();
  EXPECT_GT(log->GetStats().compactions, 1u);
  log->Close();
  clock_.AdvanceMs(1);

  RecoveredLog recovered;
  auto reopened = OpenOrDie(options, &recovered);
  std::set<std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; i += 7) {
      expected.insert("c" + std::to_string(t) + "-" + std::to_string(i));
    }
  }
  std::set<std::string> got;
  for (const auto& txn : recovered.unfinished) {
    got.insert(txn.gid);
    ASSERT_EQ(txn.records.size(), 2u) << txn.gid;
    EXPECT_EQ(txn.records[1].type, RecordType::kProgress);
  }
  EXPECT_EQ(got, expected);
}

TEST_F(FileLogTest, CompactionThatFailsLeavesTheLogAsItWas) {
  FaultInjectionFileSystem fs(DefaultFileSystem());
  FileLogOptions options = Options();
  options.file_system = &fs;
  auto log = OpenOrDie(options, nullptr);
  ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "a", ""), Durability::kForced).ok());
  // Rotation syncs the sealed segment's successor header (1), then the snapshot's sync fails.
  fs.FailSyncs(1, 1);
  EXPECT_FALSE(log->Compact().ok());
  EXPECT_TRUE(log->Healthy());  // the segments are intact; only the snapshot failed
  ASSERT_TRUE(log->Append(Rec(RecordType::kBegin, "b", ""), Durability::kForced).ok());
  log->Close();
  RecoveredLog recovered;
  auto reopened = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.unfinished.size(), 2u);
  for (const auto& name : ListDir(options.dir)) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace txc::log
