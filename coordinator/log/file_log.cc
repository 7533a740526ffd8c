#include "coordinator/log/file_log.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/common/check.h"
#include "coordinator/log/log_format.h"
#include "coordinator/log/log_reader.h"
#include "coordinator/log/log_writer.h"
#include "coordinator/log/record_codec.h"

namespace txc::log {
namespace {

using Frames = std::vector<std::shared_ptr<const std::string>>;

std::string FileName(std::string_view prefix, uint64_t number, std::string_view suffix) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%016llu", static_cast<unsigned long long>(number));
  return std::string(prefix) + digits + std::string(suffix);
}

// "seg-0000000000000007.log" with prefix "seg-" and suffix ".log" → 7.
bool ParseFileName(const std::string& name, std::string_view prefix, std::string_view suffix,
                   uint64_t* number) {
  if (name.size() != prefix.size() + 16 + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  uint64_t value = 0;
  for (size_t i = prefix.size(); i < prefix.size() + 16; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    value = value * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *number = value;
  return true;
}

double SecondsBetween(int64_t start_ns, int64_t end_ns) {
  return static_cast<double>(end_ns - start_ns) / 1e9;
}

std::string_view PayloadOf(const std::string& frame) {
  return std::string_view(frame).substr(format::kFrameHeaderBytes);
}

RecordType TypeOf(const std::string& frame) {
  return static_cast<RecordType>(static_cast<uint8_t>(frame[8]));
}

struct PendingAppend {
  RecordType type;
  std::string gid;
  int64_t time_unix_ms;
  std::shared_ptr<const std::string> frame;
  Durability durability;
  AppendCallback done;
  Status result;  // set by the writer: validation failure, write failure, or OK
};

// One transaction as the log knows it.
struct TxnEntry {
  uint64_t begin_sequence = 0;
  Frames frames;  // unfinished: every frame in order; finished: its END frame only
  bool finished = false;
  int64_t finished_unix_ms = 0;
};

// Everything a compaction writes, captured by the writer thread at a segment boundary.
struct SnapshotJob {
  uint64_t covers_through_segment = 0;  // the snapshot replaces segments <= this number
  Frames frames;
};

}  // namespace

class FileLog::Impl {
 public:
  explicit Impl(const FileLogOptions& options)
      : options_(options),
        file_system_(options.file_system != nullptr ? *options.file_system : DefaultFileSystem()),
        clock_(options.clock != nullptr ? *options.clock : SystemClock()) {
    while (options_.dir.size() > 1 && options_.dir.back() == '/') options_.dir.pop_back();
  }

  ~Impl() { Close(); }

  Status Recover(RecoveredLog* recovered);
  void Start() {
    writer_ = std::thread([this] { WriterLoop(); });
  }

  // `wake`: wake the writer now (a forced record, or a caller blocked on this append).
  void AppendAsync(LogRecord record, Durability durability, AppendCallback done, bool wake);
  Status Compact();
  Status Health() const {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) return poison_;
    if (closing_) return Status::FailedPrecondition("the decision log is closed");
    return Status::Ok();
  }
  void Close();
  Stats GetStats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  std::string PathOf(const std::string& name) const { return options_.dir + "/" + name; }
  std::string SegmentPath(uint64_t n) const {
    return PathOf(FileName(format::kSegmentPrefix, n, format::kLogSuffix));
  }
  std::string SnapshotPath(uint64_t n, std::string_view suffix) const {
    return PathOf(FileName(format::kSnapshotPrefix, n, suffix));
  }

  // Reads one file into the index. `newest_segment`: damage may be a torn tail there.
  Status ReadFile(const std::string& path, uint8_t kind, uint64_t number, bool newest_segment,
                  uint64_t* torn_tail_bytes);
  // Adds one frame to the index. `in_snapshot`: a lone END is a retained summary there.
  Status Apply(std::shared_ptr<const std::string> frame, RecordType type, const std::string& gid,
               int64_t time_unix_ms, bool in_snapshot);
  // Whether the record may be appended now, given the index.
  Status Validate(RecordType type, const std::string& gid) const;
  void DropExpiredSummaries();

  void WriterLoop();
  void ProcessBatch(std::vector<PendingAppend>& batch);
  Status SyncSegment(size_t records);
  Status OpenNewSegment(uint64_t number);
  void MaybeRotateAndCompact();
  void RunCompaction(SnapshotJob job);
  void Poison(const Status& cause);

  FileLogOptions options_;
  FileSystem& file_system_;
  Clock& clock_;
  std::unique_ptr<FileLock> lock_;

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;
  std::condition_variable compaction_cv_;
  std::deque<PendingAppend> queue_;  // bounded by options_.queue_records_max
  bool closing_ = false;
  bool writer_done_ = false;
  Status poison_;
  bool compact_requested_ = false;
  bool compaction_running_ = false;
  uint64_t compactions_finished_ = 0;
  Status last_compaction_status_;
  Stats stats_;

  // Owned by the writer thread once started (by Recover before that).
  std::unique_ptr<LogFileWriter> segment_;
  uint64_t bytes_since_snapshot_ = 0;
  size_t unsynced_records_ = 0;
  int64_t last_sync_ns_ = 0;
  uint64_t next_sequence_ = 1;
  std::unordered_map<std::string, TxnEntry> entries_;
  std::map<uint64_t, std::string> live_order_;  // begin sequence → gid, unfinished only
  std::deque<std::pair<int64_t, std::string>> finished_order_;  // (finished at, gid), oldest first
  size_t retained_finished_ = 0;

  std::thread writer_;
  std::thread compactor_;
};

// ---------------------------------------------------------------------------------------------
// Opening

Status FileLog::Impl::Recover(RecoveredLog* recovered) {
  TXC_RETURN_IF_ERROR(file_system_.CreateDirectories(options_.dir));
  auto lock = file_system_.LockFile(PathOf(std::string(format::kLockFileName)));
  if (!lock.ok()) return lock.status();
  lock_ = std::move(lock).value();

  auto names = file_system_.ListDirectory(options_.dir);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> segments;
  std::vector<uint64_t> snapshots;
  for (const auto& name : *names) {
    uint64_t n = 0;
    if (ParseFileName(name, format::kSegmentPrefix, format::kLogSuffix, &n)) {
      segments.push_back(n);
    } else if (ParseFileName(name, format::kSnapshotPrefix, format::kLogSuffix, &n)) {
      snapshots.push_back(n);
    } else if (ParseFileName(name, format::kSnapshotPrefix, format::kTempSuffix, &n)) {
      // A compaction that crashed before its rename: the segments it read are all still here.
      TXC_RETURN_IF_ERROR(file_system_.RemoveFile(PathOf(name)));
    }
  }
  std::sort(segments.begin(), segments.end());
  std::sort(snapshots.begin(), snapshots.end());

  uint64_t covered = 0;  // segments <= covered are in the snapshot
  if (!snapshots.empty()) {
    covered = snapshots.back();
    TXC_RETURN_IF_ERROR(ReadFile(SnapshotPath(covered, format::kLogSuffix),
                                 format::kFileKindSnapshot, covered, false, nullptr));
    // Left over by a compaction that crashed after its rename: superseded, safe to drop.
    for (size_t i = 0; i + 1 < snapshots.size(); ++i) {
      TXC_RETURN_IF_ERROR(file_system_.RemoveFile(SnapshotPath(snapshots[i], format::kLogSuffix)));
    }
  }
  std::vector<uint64_t> to_read;
  for (uint64_t n : segments) {
    if (n <= covered) {
      TXC_RETURN_IF_ERROR(file_system_.RemoveFile(SegmentPath(n)));
    } else {
      to_read.push_back(n);
    }
  }
  uint64_t torn_tail_bytes = 0;
  for (size_t i = 0; i < to_read.size(); ++i) {
    const uint64_t expected =
        i == 0 ? (covered == 0 ? to_read[0] : covered + 1) : to_read[i - 1] + 1;
    if (to_read[i] != expected) {
      return Status::Corruption(
          "decision log " + options_.dir + ": segment " +
          FileName(format::kSegmentPrefix, expected, format::kLogSuffix) + " is missing (found " +
          FileName(format::kSegmentPrefix, to_read[i], format::kLogSuffix) + ")");
    }
    const bool newest = i + 1 == to_read.size();
    TXC_RETURN_IF_ERROR(ReadFile(SegmentPath(to_read[i]), format::kFileKindSegment, to_read[i],
                                 newest, newest ? &torn_tail_bytes : nullptr));
  }
  DropExpiredSummaries();

  // Hand back what recovery needs.
  recovered->unfinished.clear();
  recovered->finished.clear();
  recovered->torn_tail_bytes = torn_tail_bytes;
  for (const auto& [sequence, gid] : live_order_) {
    RecoveredTransaction txn;
    txn.gid = gid;
    for (const auto& frame : entries_.at(gid).frames) {
      auto record = DecodeRecordPayload(TypeOf(*frame), PayloadOf(*frame));
      TXC_CHECK(record.ok(), "a frame accepted into the index decodes");
      txn.records.push_back(std::move(record).value());
    }
    recovered->unfinished.push_back(std::move(txn));
  }
  for (const auto& [finished_at, gid] : finished_order_) {
    auto it = entries_.find(gid);
    if (it == entries_.end() || !it->second.finished ||
        it->second.finished_unix_ms != finished_at) {
      continue;  // superseded by a later transaction with the same gid
    }
    auto record = DecodeRecordPayload(RecordType::kEnd, PayloadOf(*it->second.frames.front()));
    TXC_CHECK(record.ok(), "a frame accepted into the index decodes");
    recovered->finished.push_back(std::move(record).value());
  }
  if (torn_tail_bytes > 0 && options_.observer != nullptr) {
    options_.observer->OnTornTail(torn_tail_bytes);
  }

  uint64_t next_segment = to_read.empty() ? covered + 1 : to_read.back() + 1;
  if (!to_read.empty() && !file_system_.FileExists(SegmentPath(to_read.back()))) {
    next_segment = to_read.back();  // it held no header and was removed: take its number again
  }
  TXC_RETURN_IF_ERROR(OpenNewSegment(next_segment));
  last_sync_ns_ = clock_.MonotonicNs();
  std::lock_guard guard(mu_);
  stats_.live_transactions = live_order_.size();
  stats_.retained_finished = retained_finished_;
  stats_.segment_bytes = bytes_since_snapshot_;
  return Status::Ok();
}

Status FileLog::Impl::ReadFile(const std::string& path, uint8_t kind, uint64_t number,
                               bool newest_segment, uint64_t* torn_tail_bytes) {
  auto file = file_system_.NewSequentialFile(path);
  if (!file.ok()) return file.status();
  auto file_size = file_system_.FileSize(path);
  if (!file_size.ok()) return file_size.status();
  LogFileReader reader(std::move(file).value(), path, format::kPayloadBytesLimit);
  auto corruption = [&](uint64_t offset, const std::string& why) {
    return Status::Corruption("decision log file " + path + " at offset " + std::to_string(offset) +
                              ": " + why +
                              "; refusing to open (a skipped record could be a COMMIT decision)");
  };

  bool saw_header = false;
  Frame frame;
  for (;;) {
    const auto next = reader.ReadNext(&frame);
    if (next == LogFileReader::Next::kIoError) return reader.io_status();
    if (next == LogFileReader::Next::kEnd) break;
    if (next == LogFileReader::Next::kDamaged) {
      if (!newest_segment) return corruption(reader.damage_offset(), reader.damage_reason());
      auto more = reader.RestHasValidFrame();
      if (!more.ok()) return more.status();
      if (*more) {
        return corruption(reader.damage_offset(),
                          reader.damage_reason() + ", with valid records after it");
      }
      // A torn tail: the end of a write that never completed, so never acknowledged. Cut it.
      const uint64_t cut = reader.damage_offset();
      *torn_tail_bytes = *file_size - cut;
      std::fprintf(stderr,
                   "txc: decision log: cut a torn tail of %llu bytes off %s at offset %llu (%s)\n",
                   static_cast<unsigned long long>(*torn_tail_bytes), path.c_str(),
                   static_cast<unsigned long long>(cut), reader.damage_reason().c_str());
      TXC_RETURN_IF_ERROR(file_system_.Truncate(path, cut));
      break;
    }
    if (!saw_header) {
      if (frame.type != format::kFileHeaderType) {
        return corruption(frame.offset, "the file does not start with a txc file header");
      }
      auto header = DecodeFileHeaderPayload(frame.payload());
      if (!header.ok()) return corruption(frame.offset, header.status().message());
      if (header->kind != kind || header->number != number) {
        return corruption(frame.offset, "the file header names another file (kind " +
                                            std::to_string(header->kind) + ", number " +
                                            std::to_string(header->number) + ")");
      }
      saw_header = true;
      continue;
    }
    if (frame.type == format::kFileHeaderType) {
      return corruption(frame.offset, "a file header in the middle of the file");
    }
    const auto type = static_cast<RecordType>(frame.type);
    auto record = DecodeRecordHeader(frame.payload());
    if (!record.ok()) return corruption(frame.offset, record.status().message());
    const std::string gid(record->gid);
    const int64_t time_unix_ms = record->time_unix_ms;
    Status applied = Apply(std::make_shared<const std::string>(std::move(frame.bytes)), type, gid,
                           time_unix_ms, kind == format::kFileKindSnapshot);
    if (!applied.ok()) return corruption(frame.offset, applied.message());
  }
  if (kind == format::kFileKindSegment) {
    auto size = file_system_.FileSize(path);
    if (!size.ok()) return size.status();
    bytes_since_snapshot_ += *size;
    if (!saw_header) {
      // Only the newest segment can get here (anything else was refused above): it was created
      // and the crash came before its header was durable. It holds nothing; replace it.
      TXC_RETURN_IF_ERROR(file_system_.RemoveFile(path));
    }
  } else if (!saw_header) {
    return corruption(0, "the snapshot is empty");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The index: which transactions are unfinished, which finished ones are retained.

Status FileLog::Impl::Validate(RecordType type, const std::string& gid) const {
  auto it = entries_.find(gid);
  const bool live = it != entries_.end() && !it->second.finished;
  if (type == RecordType::kBegin) {
    if (live) return Status::AlreadyExists("gid " + gid + " already has an unfinished transaction");
    return Status::Ok();
  }
  if (!live) {
    return Status::FailedPrecondition(std::string(RecordTypeName(type)) + " record for gid " + gid +
                                      ", which has no unfinished transaction");
  }
  return Status::Ok();
}

Status FileLog::Impl::Apply(std::shared_ptr<const std::string> frame, RecordType type,
                            const std::string& gid, int64_t time_unix_ms, bool in_snapshot) {
  if (in_snapshot && type == RecordType::kEnd && !entries_.contains(gid)) {
    TxnEntry entry;
    entry.begin_sequence = next_sequence_++;
    entry.frames.push_back(std::move(frame));
    entry.finished = true;
    entry.finished_unix_ms = time_unix_ms;
    entries_.emplace(gid, std::move(entry));
    finished_order_.emplace_back(time_unix_ms, gid);
    ++retained_finished_;
    return Status::Ok();
  }
  TXC_RETURN_IF_ERROR(Validate(type, gid));
  if (type == RecordType::kBegin) {
    auto it = entries_.find(gid);
    if (it != entries_.end()) {  // a retained summary of an earlier transaction with this gid
      TXC_CHECK(it->second.finished, "Validate refused a BEGIN for a live gid");
      --retained_finished_;
      entries_.erase(it);
    }
    TxnEntry entry;
    entry.begin_sequence = next_sequence_++;
    entry.frames.push_back(std::move(frame));
    live_order_.emplace(entry.begin_sequence, gid);
    entries_.emplace(gid, std::move(entry));
    return Status::Ok();
  }
  TxnEntry& entry = entries_.at(gid);
  if (type != RecordType::kEnd) {
    entry.frames.push_back(std::move(frame));
    return Status::Ok();
  }
  live_order_.erase(entry.begin_sequence);
  entry.frames.clear();
  entry.frames.push_back(std::move(frame));
  entry.finished = true;
  entry.finished_unix_ms = time_unix_ms;
  finished_order_.emplace_back(time_unix_ms, gid);
  ++retained_finished_;
  DropExpiredSummaries();
  return Status::Ok();
}

void FileLog::Impl::DropExpiredSummaries() {
  const int64_t expire_before = clock_.NowUnixMs() - options_.retention_finished_ms;
  while (!finished_order_.empty()) {
    const auto& [finished_at, gid] = finished_order_.front();
    auto it = entries_.find(gid);
    const bool current =
        it != entries_.end() && it->second.finished && it->second.finished_unix_ms == finished_at;
    if (current) {
      // Summaries are ordered by when they finished, so the first one kept ends the sweep.
      if (finished_at >= expire_before && retained_finished_ <= options_.finished_retained_max) {
        break;
      }
      entries_.erase(it);
      --retained_finished_;
    }
    finished_order_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------------
// Appending

void FileLog::Impl::AppendAsync(LogRecord record, Durability durability, AppendCallback done,
                                bool wake) {
  if (record.gid.empty() || record.gid.size() > format::kGidBytesMax) {
    done(Status::InvalidArgument("gid: must be 1 to " + std::to_string(format::kGidBytesMax) +
                                 " bytes"));
    return;
  }
  if (record.body.size() > options_.record_bytes_max) {
    done(Status::InvalidArgument("record body of " + std::to_string(record.body.size()) +
                                 " bytes is over the limit of " +
                                 std::to_string(options_.record_bytes_max)));
    return;
  }
  auto frame = std::make_shared<std::string>();
  AppendFrame(static_cast<uint8_t>(record.type), EncodeRecordPayload(record), frame.get());

  Status refused;
  {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) {
      refused = poison_;
    } else if (closing_) {
      refused = Status::FailedPrecondition("the decision log is closed");
    } else if (queue_.size() >= options_.queue_records_max) {
      refused = Status::ResourceExhausted("decision log queue is full (" +
                                          std::to_string(options_.queue_records_max) +
                                          " records waiting)");
    } else {
      queue_.push_back(PendingAppend{record.type, std::move(record.gid), record.time_unix_ms,
                                     std::move(frame), durability, std::move(done), Status()});
    }
  }
  if (!refused.ok()) {
    done(refused);
    return;
  }
  // Lazy records appended asynchronously do not wake the writer: they go with the next forced
  // record's batch, or at the latest after lazy_sync_interval_ms, when the writer looks by
  // itself. That saves a wake-up (two context switches) per lazy record.
  if (wake) writer_cv_.notify_one();
}

void FileLog::Impl::WriterLoop() {
  std::vector<PendingAppend> batch;
  const auto lazy_interval = std::chrono::milliseconds(options_.lazy_sync_interval_ms);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto has_work = [&] {
        return !queue_.empty() || closing_ ||
               (compact_requested_ && !compaction_running_ && poison_.ok());
      };
      if (poison_.ok()) {
        // Bounded: queued lazy records and unsynced bytes are handled within the interval.
        writer_cv_.wait_for(lock, lazy_interval, has_work);
      } else {
        writer_cv_.wait(lock, has_work);
      }
      if (queue_.empty() && closing_) break;
      size_t bytes = 0;
      while (!queue_.empty() && (batch.empty() || bytes < options_.batch_bytes_max)) {
        bytes += queue_.front().frame->size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool poisoned = false;
    {
      std::lock_guard lock(mu_);
      poisoned = !poison_.ok();
    }
    if (poisoned) {
      // Everything queued was failed by Poison; these raced in before it. Fail them too.
      for (auto& item : batch) item.done(Health());
      batch.clear();
      continue;
    }
    if (!batch.empty()) {
      ProcessBatch(batch);
      batch.clear();
    } else if (unsynced_records_ > 0 && clock_.MonotonicNs() - last_sync_ns_ >=
                                            std::chrono::nanoseconds(lazy_interval).count()) {
      Status synced = SyncSegment(unsynced_records_);
      if (!synced.ok()) Poison(synced);
    }
    MaybeRotateAndCompact();
  }
  // Closing: make the lazy tail durable too.
  bool poisoned = false;
  {
    std::lock_guard lock(mu_);
    poisoned = !poison_.ok();
  }
  if (unsynced_records_ > 0 && !poisoned) {
    Status synced = SyncSegment(unsynced_records_);
    if (!synced.ok()) Poison(synced);
  }
  if (segment_ != nullptr) (void)segment_->Close();
  std::lock_guard lock(mu_);
  writer_done_ = true;
}

void FileLog::Impl::ProcessBatch(std::vector<PendingAppend>& batch) {
  std::string buffer;
  bool forced = false;
  size_t accepted = 0;
  for (auto& item : batch) {
    item.result = Validate(item.type, item.gid);
    if (!item.result.ok()) continue;
    // The index moves ahead of the disk here; if the write fails the log is poisoned and the
    // index is never used again.
    Status applied = Apply(item.frame, item.type, item.gid, item.time_unix_ms, false);
    TXC_CHECK(applied.ok(), "Validate passed, so Apply must");
    buffer.append(*item.frame);
    forced = forced || item.durability == Durability::kForced;
    ++accepted;
  }
  Status status;
  if (accepted > 0) {
    status = segment_->Append(buffer);
    bytes_since_snapshot_ += buffer.size();
    unsynced_records_ += accepted;
    const bool lazy_due =
        clock_.MonotonicNs() - last_sync_ns_ >= options_.lazy_sync_interval_ms * 1'000'000;
    if (status.ok() && (forced || lazy_due)) status = SyncSegment(unsynced_records_);
  }
  if (!status.ok()) Poison(status);
  const Status failure = status.ok() ? Status() : Health();
  {
    std::lock_guard lock(mu_);
    if (status.ok()) stats_.records_appended += accepted;
    stats_.live_transactions = live_order_.size();
    stats_.retained_finished = retained_finished_;
    stats_.segment_bytes = bytes_since_snapshot_;
  }
  for (auto& item : batch) {
    if (item.result.ok() && options_.observer != nullptr && status.ok()) {
      options_.observer->OnAppend(item.durability);
    }
    item.done(item.result.ok() ? failure : item.result);
  }
}

Status FileLog::Impl::SyncSegment(size_t records) {
  const int64_t start = clock_.MonotonicNs();
  Status status = segment_->Sync();
  const int64_t end = clock_.MonotonicNs();
  last_sync_ns_ = end;
  if (!status.ok()) return status;
  unsynced_records_ = 0;
  if (options_.observer != nullptr) options_.observer->OnSync(SecondsBetween(start, end), records);
  std::lock_guard lock(mu_);
  ++stats_.syncs;
  return Status::Ok();
}

Status FileLog::Impl::OpenNewSegment(uint64_t number) {
  auto writer = LogFileWriter::Create(file_system_, SegmentPath(number),
                                      FileHeader{format::kFileKindSegment, number});
  if (!writer.ok()) return writer.status();
  // The header and the directory entry are durable before any record goes in, so a segment
  // that exists after a crash always names itself.
  TXC_RETURN_IF_ERROR((*writer)->Sync());
  TXC_RETURN_IF_ERROR(file_system_.SyncDirectory(options_.dir));
  bytes_since_snapshot_ += (*writer)->size();
  segment_ = std::move(writer).value();
  return Status::Ok();
}

void FileLog::Impl::Poison(const Status& cause) {
  std::deque<PendingAppend> failed;
  Status poison;
  {
    std::lock_guard lock(mu_);
    if (poison_.ok()) {
      poison_ = Status::IoError("decision log poisoned, nothing more is acknowledged: " +
                                cause.ToString());
      std::fprintf(stderr, "txc: %s\n", poison_.message().c_str());
    }
    poison = poison_;
    failed.swap(queue_);
  }
  for (auto& item : failed) item.done(poison);
  compaction_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Segments and compaction

void FileLog::Impl::MaybeRotateAndCompact() {
  if (!Health().ok()) return;
  bool compact = false;
  {
    std::lock_guard lock(mu_);
    compact = !compaction_running_ &&
              (compact_requested_ || bytes_since_snapshot_ >= options_.compact_after_bytes);
  }
  const bool rotate = compact || segment_->size() >= options_.segment_bytes_max;
  if (!rotate) return;

  // Seal the current segment: everything in it durable before anything goes to the next one.
  if (unsynced_records_ > 0) {
    Status synced = SyncSegment(unsynced_records_);
    if (!synced.ok()) return Poison(synced);
  }
  const uint64_t sealed = segment_->number();
  Status closed = segment_->Close();
  if (!closed.ok()) return Poison(closed);
  Status opened = OpenNewSegment(sealed + 1);
  if (!opened.ok()) return Poison(opened);
  if (!compact) return;

  SnapshotJob job;
  job.covers_through_segment = sealed;
  DropExpiredSummaries();
  job.frames.reserve(retained_finished_ + live_order_.size());
  for (const auto& [finished_at, gid] : finished_order_) {
    auto it = entries_.find(gid);
    if (it != entries_.end() && it->second.finished && it->second.finished_unix_ms == finished_at) {
      job.frames.push_back(it->second.frames.front());
    }
  }
  for (const auto& [sequence, gid] : live_order_) {
    for (const auto& frame : entries_.at(gid).frames) job.frames.push_back(frame);
  }
  bytes_since_snapshot_ = segment_->size();
  {
    std::lock_guard lock(mu_);
    compact_requested_ = false;
    compaction_running_ = true;
  }
  if (compactor_.joinable()) compactor_.join();
  compactor_ =
      std::thread([this, job = std::move(job)]() mutable { RunCompaction(std::move(job)); });
}

void FileLog::Impl::RunCompaction(SnapshotJob job) {
  const int64_t start = clock_.MonotonicNs();
  const uint64_t n = job.covers_through_segment;
  const std::string temp = SnapshotPath(n, format::kTempSuffix);
  const std::string final_path = SnapshotPath(n, format::kLogSuffix);
  auto write_snapshot = [&]() -> Status {
    auto writer =
        LogFileWriter::Create(file_system_, temp, FileHeader{format::kFileKindSnapshot, n});
    if (!writer.ok()) return writer.status();
    std::string buffer;
    for (const auto& frame : job.frames) {
      buffer.append(*frame);
      if (buffer.size() >= (1u << 20)) {
        TXC_RETURN_IF_ERROR((*writer)->Append(buffer));
        buffer.clear();
      }
    }
    TXC_RETURN_IF_ERROR((*writer)->Append(buffer));
    TXC_RETURN_IF_ERROR((*writer)->Sync());
    TXC_RETURN_IF_ERROR((*writer)->Close());
    TXC_RETURN_IF_ERROR(file_system_.RenameFile(temp, final_path));
    TXC_RETURN_IF_ERROR(file_system_.SyncDirectory(options_.dir));
    // The snapshot is durable: what it replaces can go. A crash from here on leaves files that
    // the next open recognises as superseded and removes.
    auto names = file_system_.ListDirectory(options_.dir);
    if (!names.ok()) return names.status();
    for (const auto& name : *names) {
      uint64_t k = 0;
      const bool old_segment =
          ParseFileName(name, format::kSegmentPrefix, format::kLogSuffix, &k) && k <= n;
      const bool old_snapshot =
          ParseFileName(name, format::kSnapshotPrefix, format::kLogSuffix, &k) && k < n;
      if (old_segment || old_snapshot) TXC_RETURN_IF_ERROR(file_system_.RemoveFile(PathOf(name)));
    }
    return file_system_.SyncDirectory(options_.dir);
  };
  Status status = write_snapshot();
  if (!status.ok() && file_system_.FileExists(temp)) (void)file_system_.RemoveFile(temp);
  if (status.ok() && options_.observer != nullptr) {
    options_.observer->OnCompaction(SecondsBetween(start, clock_.MonotonicNs()), job.frames.size());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "txc: decision log compaction failed (the log stays as it was): %s\n",
                 status.ToString().c_str());
  }
  {
    std::lock_guard lock(mu_);
    compaction_running_ = false;
    ++compactions_finished_;
    if (status.ok()) ++stats_.compactions;
    last_compaction_status_ = status;
  }
  compaction_cv_.notify_all();
  writer_cv_.notify_one();  // a request that arrived meanwhile can start now
}

Status FileLog::Impl::Compact() {
  std::unique_lock lock(mu_);
  if (!poison_.ok()) return poison_;
  if (closing_) return Status::FailedPrecondition("the decision log is closed");
  // A compaction already running may have captured the index before the caller's last appends.
  const uint64_t target = compactions_finished_ + (compaction_running_ ? 2 : 1);
  compact_requested_ = true;
  writer_cv_.notify_one();
  compaction_cv_.wait(
      lock, [&] { return compactions_finished_ >= target || !poison_.ok() || writer_done_; });
  if (!poison_.ok()) return poison_;
  if (compactions_finished_ < target) return Status::FailedPrecondition("the decision log closed");
  return last_compaction_status_;
}

void FileLog::Impl::Close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (compactor_.joinable()) compactor_.join();
  {
    std::lock_guard lock(mu_);
    writer_done_ = true;
  }
  compaction_cv_.notify_all();
  lock_.reset();
}

// ---------------------------------------------------------------------------------------------
// FileLog

Result<std::unique_ptr<FileLog>> FileLog::Open(const FileLogOptions& options,
                                               RecoveredLog* recovered) {
  if (options.dir.empty()) return Status::InvalidArgument("log.dir: must not be empty");
  if (options.queue_records_max == 0 || options.batch_bytes_max == 0 ||
      options.record_bytes_max == 0 || options.record_bytes_max > format::kPayloadBytesLimit / 2) {
    return Status::InvalidArgument("decision log limits must be positive and within the format");
  }
  auto impl = std::make_unique<Impl>(options);
  RecoveredLog local;
  TXC_RETURN_IF_ERROR(impl->Recover(recovered != nullptr ? recovered : &local));
  impl->Start();
  return std::unique_ptr<FileLog>(new FileLog(std::move(impl)));
}

FileLog::FileLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileLog::~FileLog() = default;

Status FileLog::Append(const LogRecord& record, Durability durability) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  impl_->AppendAsync(
      record, durability, [&promise](const Status& s) { promise.set_value(s); }, true);
  return future.get();
}

void FileLog::AppendAsync(LogRecord record, Durability durability, AppendCallback done) {
  impl_->AppendAsync(std::move(record), durability, std::move(done),
                     durability == Durability::kForced);
}

Status FileLog::Compact() { return impl_->Compact(); }
bool FileLog::Healthy() const { return impl_->Health().ok(); }
Status FileLog::Health() const { return impl_->Health(); }
void FileLog::Close() { impl_->Close(); }
FileLog::Stats FileLog::GetStats() const { return impl_->GetStats(); }

}  // namespace txc::log
