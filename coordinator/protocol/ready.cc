#include "coordinator/protocol/ready.h"

namespace txc::protocol {

const char* OutcomeName(Outcome outcome) {
  return outcome == Outcome::kCommitted ? "committed" : "aborted";
}

}  // namespace txc::protocol
