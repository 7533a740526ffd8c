// DatabaseResource: one configured database (API.md `resources:`) as the 2PC engine uses it.
// Implementations: postgres/postgres_resource.h (PREPARE TRANSACTION) and mysql/mysql_resource.h
// (XA). Every method is blocking, bounded by its timeout (waiting for a pooled connection
// included), thread-safe, and returns errors as values: no exception leaves an implementation.
//
// A branch is named by (gid, branch_index); the resource derives its xid (database/xid.h) from
// those and the coordinator's node_id, given at construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"
#include "participants/database/statement.h"
#include "participants/participant.h"

namespace txc::participants::database {

// A prepared branch of this coordinator found by the in-doubt scan.
struct InDoubtXid {
  std::string gid;
  uint32_t branch_index = 0;
  std::string xid;  // as the database shows it, for logs and operators

  bool operator==(const InDoubtXid&) const = default;
};

class DatabaseResource {
 public:
  virtual ~DatabaseResource() = default;

  // The resource's name in the configuration ("orders"); used in every message.
  virtual const std::string& name() const = 0;

  // Connects and checks that the database can take part in 2PC: for PostgreSQL that
  // max_prepared_transactions > 0 (else FailedPrecondition saying how to fix it), for MySQL a
  // server that keeps prepared XA branches across disconnects. Unavailable when it cannot connect.
  virtual Status CheckReady(std::chrono::milliseconds timeout) = 0;

  // Phase 1. Runs `statements` in order in one local transaction and prepares it under the
  // branch's xid. Ok: prepared (also when an earlier attempt already prepared this xid). Refused:
  // a statement failed (the database's message is in the reason); the local transaction was
  // rolled back and nothing is prepared. Transient: nothing is prepared, try again later.
  // Unknown: the prepare was sent but its answer was lost; the branch may be prepared, and a
  // commit or rollback by xid settles it either way.
  virtual CallResult Prepare(std::string_view gid, uint32_t branch_index,
                             std::span<const Statement> statements,
                             std::chrono::milliseconds timeout) = 0;

  // Phase 2, by xid, from any connection. Idempotent: a branch already resolved, or never
  // prepared, counts as done (Ok). Transient / Unknown: retry.
  virtual CallResult CommitPrepared(std::string_view gid, uint32_t branch_index,
                                    std::chrono::milliseconds timeout) = 0;
  virtual CallResult RollbackPrepared(std::string_view gid, uint32_t branch_index,
                                      std::chrono::milliseconds timeout) = 0;

  // A transaction with this one branch only: runs `statements` and commits them locally, with no
  // prepare (nothing is left to recover). Refused: a statement (or a deferred constraint at
  // COMMIT) failed and nothing was applied. Unknown: the COMMIT was sent and its answer was lost,
  // so the writes may or may not be applied; unlike phase 2 this is NOT idempotent: running it
  // again may apply the writes twice.
  virtual CallResult CommitOnePhase(std::string_view gid, uint32_t branch_index,
                                    std::span<const Statement> statements,
                                    std::chrono::milliseconds timeout) = 0;

  // The branches prepared under this coordinator's node_id and not yet resolved (PostgreSQL:
  // pg_prepared_xacts of this database; MySQL: XA RECOVER). Others' xids are never listed. At
  // most the configured in_doubt_max entries per call; resolve them and call again for more.
  virtual Result<std::vector<InDoubtXid>> ListInDoubt(std::chrono::milliseconds timeout) = 0;
};

}  // namespace txc::participants::database
