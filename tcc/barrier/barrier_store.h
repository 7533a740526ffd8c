// The barrier's decision, written once for both databases: EnterPostgres and EnterMysql supply
// the two statements it needs (insert a row unless its key exists, read a row's origin) and this
// turns their answers into a Verdict. Internal to tcc/barrier; services include barrier.h and a
// database's header instead.
//
// The table holds one row per (gid, branch, op), with the op whose request wrote it (origin).
//   forward op (action, try, confirm): insert (op, origin = op).
//     inserted                                    -> kRun
//     the key exists, origin is compensate/cancel -> kRefusedAfterCancel (its backward op came
//                                                    first and wrote this row to block it)
//     the key exists, origin is the op itself     -> kDuplicate
//   backward op (compensate of action, cancel of try): first insert the forward op's row with
//   origin = this backward op, then this op's own row.
//     the forward row inserted                    -> kEmptyCompensation (its forward op never
//                                                    committed, and now never will run)
//     else the own row inserted                   -> kRun
//     else                                        -> kDuplicate
// Every insert waits while another transaction holds an uncommitted row with the same key (the
// primary key's lock), so of two concurrent requests the second decides on what the first
// committed; if the first rolled back, the second inserts and runs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"
#include "tcc/barrier/barrier.h"

namespace txc::barrier::internal {

class BarrierStore {
 public:
  virtual ~BarrierStore() = default;

  // Inserts (key.gid, key.branch, op, origin) unless a row with that (gid, branch, op) exists;
  // true when this call inserted it.
  virtual Result<bool> InsertIfAbsent(const BarrierKey& key, BarrierOp op, BarrierOp origin) = 0;

  // The origin column of the row (key.gid, key.branch, op), as stored; nullopt when there is none.
  virtual Result<std::optional<std::string>> ReadOrigin(const BarrierKey& key, BarrierOp op) = 0;
};

// Checks the key (CheckBarrierKey) and decides as above.
Result<Verdict> Enter(BarrierStore& store, const BarrierKey& key);

// "gid order-1 branch pay op try": how errors name the key.
std::string DescribeKey(const BarrierKey& key);

// A database's message on one line (runs of whitespace become one space) and at most a few
// hundred bytes: PostgreSQL's messages span lines, and errors end up in one-line logs.
std::string OneLine(std::string_view message);

}  // namespace txc::barrier::internal
