// MapHttpOutcome: the ONE place where what happened to an HTTP call becomes a CallOutcome
// (API.md, "Participant contract"). Every CallResult the HTTP adapter returns is made here, so
// the table below is the whole policy:
//
//   what happened                                             outcome     why
//   2xx                                                       ok          done / vote yes
//   409                                                       refused     the participant said no
//   408, 425, 429, 5xx                                        transient   it asks to come back
//   other 4xx, 3xx (redirects are not followed), 1xx, other   permanent   retrying cannot help
//   not sent: pool exhausted, DNS, refused, connect timeout,  transient   the participant cannot
//     send failed before the request was complete                         have acted
//   sent, then no reply before the deadline                   unknown     it may have acted
//   sent, then the connection broke or the reply was garbage  unknown     it may have acted
//   the branch has no call for this operation                 permanent   nothing to send
//   the request could not be built                            permanent   nothing was sent
//
// The reason says what happened in words, for the branch's last_error:
//   "HTTP 409 from http://127.0.0.1:9002/pay: insufficient funds".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "participants/participant.h"

namespace txc::participants::http {

// How far one call got, as the transport saw it.
enum class Delivery : uint8_t {
  kAnswered,           // a status line and headers arrived: `status` decides
  kNotSent,            // the participant surely did not get the whole request
  kTimedOutAfterSend,  // sent; no reply within the call's timeout
  kLostAfterSend,      // sent; then the connection closed or reset, or the reply was not HTTP
  kNoCallForOp,        // the branch has no call for this operation: nothing to send
  kInvalidRequest,     // the request could not be built (e.g. a gid unfit for a header)
};

struct HttpOutcome {
  Delivery delivery = Delivery::kNotSent;
  std::string url;     // HttpUrl::Redacted(): no query, which may carry a token
  int status = 0;      // kAnswered: the HTTP status
  std::string body;    // kAnswered: the start of the response body (an excerpt is quoted)
  std::string detail;  // in words: "Connection refused", "no reply within 200 ms", ...
};

CallResult MapHttpOutcome(const HttpOutcome& outcome);

// At most `bytes_max` bytes of `body`, fit to quote in last_error (JSON, logs): valid UTF-8 kept,
// control characters and invalid bytes replaced, runs of whitespace folded, "..." when cut.
inline constexpr size_t kBodyExcerptBytesMax = 200;
std::string BodyExcerpt(std::string_view body, size_t bytes_max = kBodyExcerptBytesMax);

}  // namespace txc::participants::http
