// FileLog: the embedded decision log, segment files of CRC-framed records in one data directory.
//
//  - One writer thread does group commit: whatever is queued when it wakes is written with one
//    write and made durable with one fdatasync, so concurrent forced appends share a sync.
//  - A failed write or sync poisons the log (the state of those bytes is unknown): every waiting
//    and later append fails, and Healthy() turns false.
//  - Open cuts a torn tail off the newest segment and refuses any other damage, naming the file and
//    offset.
//  - Compaction writes a snapshot of the unfinished transactions and retained summaries, then
//    deletes the segments it covers, so open reads the live state, not the history.
//  - An exclusive lock on the directory keeps a second coordinator out.
// The layout on disk is described in log_format.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "coordinator/common/clock.h"
#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/log/file_system.h"

namespace txc::log {

struct FileLogOptions {
  std::string dir;                              // created when missing
  FileSystem* file_system = nullptr;            // default: the real one
  Clock* clock = nullptr;                       // default: the system clock (retention)
  LogObserver* observer = nullptr;              // optional
  int64_t retention_finished_ms = 86'400'000;   // END summaries kept this long after finishing
  size_t finished_retained_max = 1'000'000;     // and at most this many (oldest dropped first)
  uint64_t segment_bytes_max = 64ull << 20;     // a segment is sealed past this size
  uint64_t compact_after_bytes = 256ull << 20;  // compact once segments since the last one exceed
  size_t queue_records_max = 65'536;            // appends waiting for the writer; beyond: rejected
  size_t batch_bytes_max = 4u << 20;            // bytes written per write+sync round
  uint32_t record_bytes_max = 1u << 20;         // one record's payload
  int64_t lazy_sync_interval_ms = 100;          // lazy records are synced at least this often
};

class FileLog final : public DecisionLog {
 public:
  // Opens (or creates) the log in options.dir, recovers it into *recovered and starts the writer.
  static Result<std::unique_ptr<FileLog>> Open(const FileLogOptions& options,
                                               RecoveredLog* recovered);
  ~FileLog() override;

  FileLog(const FileLog&) = delete;
  FileLog& operator=(const FileLog&) = delete;

  Status Append(const LogRecord& record, Durability durability) override;
  void AppendAsync(LogRecord record, Durability durability, AppendCallback done) override;
  Status Compact() override;
  bool Healthy() const override;
  Status Health() const override;
  std::string Kind() const override { return "file"; }
  void Close() override;

  struct Stats {
    uint64_t records_appended = 0;
    uint64_t syncs = 0;
    uint64_t compactions = 0;
    uint64_t live_transactions = 0;
    uint64_t retained_finished = 0;
    uint64_t segment_bytes = 0;  // bytes in segments since the last snapshot
  };
  Stats GetStats() const;

  class Impl;

 private:
  explicit FileLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txc::log
