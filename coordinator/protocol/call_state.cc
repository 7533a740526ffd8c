#include "coordinator/protocol/call_state.h"

#include "coordinator/common/check.h"

namespace txc::protocol {

void CallState::Call(uint32_t index, participants::Op op, Ready* ready) {
  TXC_CHECK(!in_flight, "one call per branch at a time");
  if (in_flight_op != op) attempts = 0;
  in_flight = true;
  in_flight_op = op;
  ++attempts;
  ready->calls.push_back({index, op});
}

void CallState::ScheduleRetry(uint32_t index, participants::Op op, bool longest, Ready* ready) {
  ++retry_token;
  awaiting_retry = true;
  ready->retries.push_back({index, op, attempts, retry_token, longest});
}

}  // namespace txc::protocol
