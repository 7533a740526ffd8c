// DatabaseBranch: a 2PC branch on a configured database (API.md: a branch with `resource` and
// `sql`), as the engine sees it through the Participant interface.
//
//   prepare -> DatabaseResource::Prepare (run the statements, prepare under the xid)
//   commit  -> DatabaseResource::CommitPrepared
//   abort   -> DatabaseResource::RollbackPrepared: harmless before any prepare, or after a vote
//              no (an unknown xid counts as done)
//   others  -> Permanent: a database branch has no try/confirm/cancel, saga or 3PC operations.
//
// The branch does not own its resource: the resource (and its connection pool) is shared by all
// branches on that database and outlives them.
#pragma once

#include <vector>

#include "participants/database/database_resource.h"
#include "participants/database/statement.h"
#include "participants/participant.h"

namespace txc::participants::database {

class DatabaseBranch final : public Participant {
 public:
  DatabaseBranch(DatabaseResource& resource, std::vector<Statement> statements);

  CallResult Call(const CallContext& context) override;

  // The one-branch shortcut (no prepare): the engine calls this instead of prepare + commit when
  // the transaction has this branch only. Not idempotent when it answers Unknown.
  CallResult CommitOnePhase(const CallContext& context);

  const std::vector<Statement>& statements() const { return statements_; }

 private:
  DatabaseResource& resource_;
  const std::vector<Statement> statements_;
};

}  // namespace txc::participants::database
