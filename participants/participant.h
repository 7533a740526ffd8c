// Participant: one branch of a transaction, as the engine sees it. The engine calls an operation
// (prepare, commit, try, compensate, ...) and gets back a CallResult: a value, never an exception.
// Adapters live beside this file: http/ (the participant contract over HTTP), postgres/ and
// mysql/ (database branches through prepared transactions / XA).
//
// Every failure of every adapter maps through one function per adapter into the five outcomes
// below, because what the engine does next depends only on them.
#pragma once

#include <cstdint>
#include <string>

namespace txc::participants {

// The operations of all four protocols (API.md, Txc-Op header values).
enum class Op : uint8_t {
  kPrepare,     // 2pc phase 1
  kCommit,      // 2pc phase 2
  kAbort,       // 2pc/3pc phase 2
  kCanCommit,   // 3pc
  kPreCommit,   // 3pc
  kDoCommit,    // 3pc
  kTry,         // tcc
  kConfirm,     // tcc
  kCancel,      // tcc
  kAction,      // saga
  kCompensate,  // saga
};
const char* OpName(Op op);  // "prepare", "do_commit", ... as in the Txc-Op header

enum class CallOutcome : uint8_t {
  kOk,         // done / vote yes
  kRefused,    // vote no, try failed, action rejected: nothing was done; never retried
  kTransient,  // did not happen, may work later: retry with backoff
  kUnknown,    // may or may not have happened (timeout after sending, lost connection after
               // COMMIT was sent): retry; the operation is idempotent
  kPermanent,  // will not work by retrying (bad request, missing endpoint): phase 1 treats it as
               // refused; phase 2 waits for an operator, retrying at the longest backoff
};
const char* CallOutcomeName(CallOutcome outcome);  // "ok", "refused", "transient", ...

struct [[nodiscard]] CallResult {
  CallOutcome outcome = CallOutcome::kOk;
  std::string reason;  // for the branch's last_error, in words; empty when ok

  static CallResult Ok() { return {}; }
  static CallResult Refused(std::string why) { return {CallOutcome::kRefused, std::move(why)}; }
  static CallResult Transient(std::string why) { return {CallOutcome::kTransient, std::move(why)}; }
  static CallResult Unknown(std::string why) { return {CallOutcome::kUnknown, std::move(why)}; }
  static CallResult Permanent(std::string why) { return {CallOutcome::kPermanent, std::move(why)}; }
  bool ok() const { return outcome == CallOutcome::kOk; }
};

// What identifies one call.
struct CallContext {
  std::string gid;
  std::string branch;         // the branch's name
  uint32_t branch_index = 0;  // its position in the transaction, `b` in database XIDs
  Op op = Op::kPrepare;
  std::string traceparent;    // W3C trace context passed on to HTTP participants
  int64_t timeout_ms = 5000;  // this call's own bound
};

// The Idempotency-Key of a call: "<gid>/<branch>/<op>".
std::string IdempotencyKey(const CallContext& context);

class Participant {
 public:
  virtual ~Participant() = default;
  // Performs context.op for this branch. Blocking, bounded by context.timeout_ms; thread-safe.
  // An operation this branch does not have (a saga branch asked to prepare) is kPermanent.
  virtual CallResult Call(const CallContext& context) = 0;
};

}  // namespace txc::participants
