#include "participants/database/database_branch.h"

#include <chrono>
#include <string>
#include <utility>

namespace txc::participants::database {
namespace {

std::chrono::milliseconds TimeoutOf(const CallContext& context) {
  // A non-positive timeout would make every wait fail at once; 1 ms keeps the call well-defined
  // (it then fails as Transient when nothing can be done in time).
  return std::chrono::milliseconds(context.timeout_ms > 0 ? context.timeout_ms : 1);
}

}  // namespace

DatabaseBranch::DatabaseBranch(DatabaseResource& resource, std::vector<Statement> statements)
    : resource_(resource), statements_(std::move(statements)) {}

CallResult DatabaseBranch::Call(const CallContext& context) {
  const std::chrono::milliseconds timeout = TimeoutOf(context);
  switch (context.op) {
    case Op::kPrepare:
      return resource_.Prepare(context.gid, context.branch_index, statements_, timeout);
    case Op::kCommit:
      return resource_.CommitPrepared(context.gid, context.branch_index, timeout);
    case Op::kAbort:
      return resource_.RollbackPrepared(context.gid, context.branch_index, timeout);
    case Op::kCanCommit:
    case Op::kPreCommit:
    case Op::kDoCommit:
    case Op::kTry:
    case Op::kConfirm:
    case Op::kCancel:
    case Op::kAction:
    case Op::kCompensate:
      break;
  }
  return CallResult::Permanent("database branch on resource " + resource_.name() +
                               " has no operation '" + OpName(context.op) +
                               "' (it supports prepare, commit and abort)");
}

CallResult DatabaseBranch::CommitOnePhase(const CallContext& context) {
  return resource_.CommitOnePhase(context.gid, context.branch_index, statements_,
                                  TimeoutOf(context));
}

}  // namespace txc::participants::database
