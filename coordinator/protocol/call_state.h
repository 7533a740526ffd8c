// CallState: what every protocol machine keeps about the calls to one of its branches — at most
// one call out at a time, attempts counted per operation, and a retry token that makes an
// earlier retry stale. The machines' per-branch progress extends it with their own states.
#pragma once

#include <cstdint>

#include "coordinator/protocol/ready.h"
#include "participants/participant.h"

namespace txc::protocol {

struct CallState {
  bool in_flight = false;                                      // a call is out
  participants::Op in_flight_op = participants::Op::kPrepare;  // the last operation called
  uint64_t retry_token = 0;     // OnRetryDue with another token is stale
  bool awaiting_retry = false;  // a retry is armed: nothing is sent before it fires
  uint32_t attempts = 0;        // calls made for the current operation

  // Sends `op` to branch `index` (added to `ready`); attempts restart at a new operation.
  void Call(uint32_t index, participants::Op op, Ready* ready);
  // Arms a retry of `op` under a new token (`longest`: at the longest backoff).
  void ScheduleRetry(uint32_t index, participants::Op op, bool longest, Ready* ready);
};

}  // namespace txc::protocol
