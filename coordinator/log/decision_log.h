// DecisionLog: where every coordinator decision becomes durable before it is acted on.
//
// The log knows transactions only by gid and record type: the body of a record is opaque bytes
// that the protocols encode. That is enough for it to know which transactions are finished
// (an END record), to drop them at compaction, and to hand back what recovery needs at open.
//
// Implementations: FileLog (file_log.h, the embedded default). A PostgreSQL-backed log for shared
// stores will sit beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::log {

enum class RecordType : uint8_t {
  kBegin = 1,     // a transaction and its branch list; opens the gid
  kDecision = 2,  // commit / abort / confirm / cancel / compensate, protocol-specific body
  kProgress = 3,  // a branch reply, a step result: what recovery may skip
  kOperator = 4,  // an operator settled a branch by hand (who, why)
  kEnd = 5,       // finished; the body is the final summary kept for retention
};
const char* RecordTypeName(RecordType type);
bool IsValidRecordType(uint8_t raw);

enum class Durability {
  kForced,  // Append returns only once the record is on stable storage (fdatasync)
  kLazy,    // written in order with the next batch; may be lost by a crash before the next sync
};

struct LogRecord {
  RecordType type = RecordType::kBegin;
  std::string gid;
  int64_t time_unix_ms = 0;  // when the coordinator made the record; END: when it finished
  std::string body;

  bool operator==(const LogRecord&) const = default;
};

// What Open hands back: every unfinished transaction with its records in log order, and the
// END records of finished transactions still inside their retention.
struct RecoveredTransaction {
  std::string gid;
  std::vector<LogRecord> records;  // records[0].type == kBegin
};
struct RecoveredLog {
  std::vector<RecoveredTransaction> unfinished;  // in the order their BEGIN was logged
  std::vector<LogRecord> finished;               // END records, oldest first
  uint64_t torn_tail_bytes = 0;                  // cut off the newest segment at open
};

// Called once the record is durable (forced), written (lazy), or failed.
using AppendCallback = std::function<void(const Status&)>;

class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Appends one record. For kForced, OK means durable. Thread-safe; records from one thread keep
  // their order. Fails for ever once the log is poisoned (a failed write or sync).
  virtual Status Append(const LogRecord& record, Durability durability) = 0;

  // Like Append, without blocking the caller: `done` runs on the log's writer thread, and must not
  // call back into the log. A full queue answers ResourceExhausted through `done` at once. A lazy
  // record may wait for the next forced one (or a short interval) before it is written.
  virtual void AppendAsync(LogRecord record, Durability durability, AppendCallback done) = 0;

  // Rewrites the log so that it holds only unfinished transactions and retained summaries, and
  // waits for that to be durable. Also runs by itself as the log grows.
  virtual Status Compact() = 0;

  // False once a write or sync failed: nothing more will be acknowledged (readyz turns 503).
  virtual bool Healthy() const = 0;
  // Why the log is unhealthy, or OK.
  virtual Status Health() const = 0;

  // A short name for /v1/info: "file" or "postgres".
  virtual std::string Kind() const = 0;

  // Flushes what was queued, syncs it and stops the writer. Appends after Close fail.
  virtual void Close() = 0;
};

// Observations the log reports (metrics live elsewhere; see coordinator/metrics).
class LogObserver {
 public:
  virtual ~LogObserver() = default;
  virtual void OnAppend(Durability durability) = 0;
  virtual void OnSync(double seconds, size_t records) = 0;
  virtual void OnTornTail(uint64_t bytes) = 0;
  virtual void OnCompaction(double seconds, size_t records_kept) = 0;
};

}  // namespace txc::log
