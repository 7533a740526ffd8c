// The participant-side barrier: what a service calls at the top of a saga or TCC handler, inside
// the database transaction that will also hold its business changes. It records (gid, branch, op)
// in the barrier table of that transaction and says whether the handler runs its business logic:
//
//   a duplicate of an op that already committed      -> kDuplicate: answer success, run nothing
//   a cancel/compensate with no try/action before it -> kEmptyCompensation: recorded, answer
//                                                       success, run nothing
//   a try/action after its cancel/compensate         -> kRefusedAfterCancel: answer 409, run
//   nothing otherwise                                        -> kRun: run the business logic
//
// Whatever the verdict, the caller commits its transaction (the barrier's rows must survive), and
// rolls it back only when its own business logic fails (then the op did not happen, and a retry
// runs it again). Two concurrent requests with the same key serialise on the table's primary key:
// the second waits for the first to commit, then sees it as a duplicate.
//
// Database-specific entry points: postgres_barrier.h (libpqxx) and mysql_barrier.h (Connector/C++).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"

namespace txc::barrier {

enum class BarrierOp : uint8_t { kAction, kCompensate, kTry, kConfirm, kCancel };
const char* BarrierOpName(BarrierOp op);  // "action", "compensate", "try", "confirm", "cancel"

// One call as the coordinator identifies it (API.md: the Txc-Gid, Txc-Branch and Txc-Op headers).
struct BarrierKey {
  std::string gid;
  std::string branch;
  BarrierOp op = BarrierOp::kAction;
};

// From the three header values; InvalidArgument naming the header (`Txc-Op: ...`) when one is
// missing, malformed (gid 1-56, branch 1-64 of [A-Za-z0-9._-]) or not a saga/TCC op.
Result<BarrierKey> ParseBarrierKey(std::string_view gid, std::string_view branch,
                                   std::string_view op);

// OK when `key` is one that ParseBarrierKey could have returned; otherwise InvalidArgument naming
// the header, as ParseBarrierKey says it. EnterPostgres and EnterMysql check every key with it, so
// a key built by hand cannot reach the table with values its columns do not hold.
Status CheckBarrierKey(const BarrierKey& key);

enum class Verdict : uint8_t { kRun, kDuplicate, kEmptyCompensation, kRefusedAfterCancel };
const char* VerdictName(Verdict verdict);  // "run", "duplicate", ...

}  // namespace txc::barrier
