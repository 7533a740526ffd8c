#include "participants/participant.h"

namespace txc::participants {

const char* OpName(Op op) {
  switch (op) {
    case Op::kPrepare:
      return "prepare";
    case Op::kCommit:
      return "commit";
    case Op::kAbort:
      return "abort";
    case Op::kCanCommit:
      return "can_commit";
    case Op::kPreCommit:
      return "pre_commit";
    case Op::kDoCommit:
      return "do_commit";
    case Op::kTry:
      return "try";
    case Op::kConfirm:
      return "confirm";
    case Op::kCancel:
      return "cancel";
    case Op::kAction:
      return "action";
    case Op::kCompensate:
      return "compensate";
  }
  return "unknown";
}

const char* CallOutcomeName(CallOutcome outcome) {
  switch (outcome) {
    case CallOutcome::kOk:
      return "ok";
    case CallOutcome::kRefused:
      return "refused";
    case CallOutcome::kTransient:
      return "transient";
    case CallOutcome::kUnknown:
      return "unknown";
    case CallOutcome::kPermanent:
      return "permanent";
  }
  return "unknown";
}

std::string IdempotencyKey(const CallContext& context) {
  return context.gid + "/" + context.branch + "/" + OpName(context.op);
}

}  // namespace txc::participants
