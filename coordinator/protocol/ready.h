// Ready: what a protocol state machine asks the engine to do after one step, with the ordering
// rule in the type (the raft Ready idea): every record in `persist` is appended first, and the
// forced ones are durable, before any call in `calls` is made. Protocols never perform I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/log/decision_log.h"
#include "participants/participant.h"

namespace txc::protocol {

enum class Outcome : uint8_t { kCommitted, kAborted };
const char* OutcomeName(Outcome outcome);  // "committed" | "aborted"

struct Persist {
  log::RecordType type = log::RecordType::kProgress;
  // BEGIN and END bodies are the engine's (the transaction spec, the final document): the
  // protocol leaves them empty. Other bodies are the protocol's own encoding.
  std::string body;
  log::Durability durability = log::Durability::kLazy;
};

struct BranchCall {
  uint32_t branch = 0;
  participants::Op op = participants::Op::kPrepare;
};

// Call `op` on `branch` again after a backoff the engine chooses (capped exponential with
// jitter); then feed OnRetryDue(branch, token). `longest`: wait the longest backoff (a branch
// that needs an operator is still retried, slowly).
struct RetryLater {
  uint32_t branch = 0;
  participants::Op op = participants::Op::kPrepare;
  uint32_t attempt = 1;  // calls made so far for this op
  uint64_t token = 0;    // OnRetryDue with another token is stale and ignored
  bool longest = false;
};

struct Ready {
  std::vector<Persist> persist;   // first; forced records durable before anything below
  std::vector<BranchCall> calls;  // then these, in parallel
  std::vector<RetryLater> retries;
  std::optional<int64_t> deadline_at_ms;  // arm the phase-1 deadline timer (then OnDeadline)
  std::optional<Outcome> finished;        // the transaction is over (after `persist`)

  bool empty() const {
    return persist.empty() && calls.empty() && retries.empty() && !deadline_at_ms && !finished;
  }
  bool HasForced() const {
    for (const auto& p : persist) {
      if (p.durability == log::Durability::kForced) return true;
    }
    return false;
  }
};

}  // namespace txc::protocol
