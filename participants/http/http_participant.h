// HttpBranch: a branch whose operations are HTTP calls (API.md, "Participant contract").
//
// For each operation it has (2pc: prepare/commit/abort; 3pc: can_commit/pre_commit/do_commit/
// abort; tcc: try/confirm/cancel; saga: action/compensate) it holds an HttpCall, and Call()
// sends it with these headers, which the call's own headers cannot override:
//   Txc-Gid, Txc-Branch, Txc-Op (OpName), Idempotency-Key: <gid>/<branch>/<op>, traceparent
//   (the context's, or a new W3C one when the context has none or an invalid one), and
//   Content-Type: application/json when there is a body (unless the call sets its own).
// The call is bounded by min(call.timeout_ms, context.timeout_ms), waiting for a pooled
// connection included. The reply decides through MapHttpOutcome (status_mapping.h), the only
// place outcomes are chosen. No exception leaves Call().
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "participants/http/http_call.h"
#include "participants/http/http_client_pool.h"
#include "participants/participant.h"

namespace txc::participants::http {

// Of a response body, this much is kept (the start of it is quoted in last_error)...
inline constexpr size_t kResponseBodyKeptBytesMax = 64u << 10;
// ... and at most this much more is read and dropped so the connection can be reused; a longer
// body is left unread and its connection closed instead.
inline constexpr size_t kResponseBodyDrainBytesMax = 1u << 20;

class HttpBranch final : public Participant {
 public:
  // `pool` must outlive the branch.
  HttpBranch(std::map<Op, HttpCall> calls, HttpClientPool& pool);

  CallResult Call(const CallContext& context) override;

  bool HasCall(Op op) const { return calls_.contains(op); }

 private:
  const std::map<Op, HttpCall> calls_;
  HttpClientPool& pool_;
};

// W3C Trace Context, version 00: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>",
// lowercase, neither id all zeros.
bool IsValidTraceparent(std::string_view value);
// A new random traceparent, sampled.
std::string NewTraceparent();

}  // namespace txc::participants::http
