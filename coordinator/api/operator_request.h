// The bodies of the operator verbs (API.md "Operate"), parsed and checked; errors name the field.
//
//   POST /v1/transactions/{gid}/resolve  {"branch": "...", "outcome": "committed|aborted",
//                                         "reason": "..."}   all three required
//   POST /v1/transactions/{gid}/abort    empty, or {"reason": "..."}
#pragma once

#include <string>

#include "coordinator/common/status.h"
#include "coordinator/protocol/ready.h"

namespace txc::api {

// Bounds what an operator's words can add to the log and to every later read of the document.
inline constexpr size_t kOperatorReasonMaxBytes = 1000;

struct ResolveRequest {
  std::string branch;
  protocol::Outcome outcome = protocol::Outcome::kAborted;
  std::string reason;
};
Result<ResolveRequest> ParseResolveRequest(const std::string& body);

// The abort's reason ("" when the body is empty or gives none).
Result<std::string> ParseAbortReason(const std::string& body);

}  // namespace txc::api
