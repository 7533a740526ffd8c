#include "participants/http/status_mapping.h"

namespace txc::participants::http {
namespace {

// The length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one
// (overlong forms, surrogates and code points over U+10FFFF are invalid, RFC 3629 §4).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xbf;
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) second_min = 0xa0;
    if (lead == 0xed) second_max = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) second_min = 0x90;
    if (lead == 0xf4) second_max = 0x8f;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < second_min || byte(i + 1) > second_max) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return length;
}

std::string StatusReason(const HttpOutcome& outcome, std::string_view note) {
  std::string reason = "HTTP " + std::to_string(outcome.status) + " from " + outcome.url;
  reason.append(note);
  const std::string excerpt = BodyExcerpt(outcome.body);
  if (!excerpt.empty()) reason += ": " + excerpt;
  return reason;
}

CallResult MapStatus(const HttpOutcome& outcome) {
  const int status = outcome.status;
  if (status >= 200 && status <= 299) return CallResult::Ok();
  // 409 is the participant's "no" (vote no, try failed, action rejected): it did nothing, and
  // asking again would get the same answer.
  if (status == 409) return CallResult::Refused(StatusReason(outcome, ""));
  // 408 Request Timeout, 425 Too Early, 429 Too Many Requests and every 5xx ask to be retried.
  if (status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599)) {
    return CallResult::Transient(StatusReason(outcome, ""));
  }
  // A redirect would need a second allowlist check and a new Idempotency-Key decision; a
  // participant URL that redirects is a configuration mistake for an operator to fix.
  if (status >= 300 && status <= 399) {
    return CallResult::Permanent(StatusReason(outcome, " (redirects are not followed)"));
  }
  if (status >= 400 && status <= 499) return CallResult::Permanent(StatusReason(outcome, ""));
  return CallResult::Permanent(StatusReason(outcome, " (not a final HTTP status)"));
}

}  // namespace

std::string BodyExcerpt(std::string_view body, size_t bytes_max) {
  constexpr std::string_view kCut = "...";
  std::string excerpt;
  bool pending_space = false;
  size_t i = 0;
  while (i < body.size()) {
    std::string_view piece;
    size_t consumed = 1;
    const auto byte = static_cast<unsigned char>(body[i]);
    if (byte < 0x20 || byte == 0x7f || byte == ' ') {
      // Newlines, tabs and other controls would break a one-line last_error or a log line.
      pending_space = !excerpt.empty();
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(body, i);
    if (length == 0) {
      piece = "?";  // a byte that is not UTF-8: last_error must stay valid UTF-8 for JSON
    } else {
      piece = body.substr(i, length);
      consumed = length;
    }
    const size_t needed = piece.size() + (pending_space ? 1 : 0);
    if (excerpt.size() + needed > bytes_max) {
      excerpt.append(kCut);
      return excerpt;
    }
    if (pending_space) excerpt.push_back(' ');
    pending_space = false;
    excerpt.append(piece);
    i += consumed;
  }
  return excerpt;
}

CallResult MapHttpOutcome(const HttpOutcome& outcome) {
  switch (outcome.delivery) {
    case Delivery::kAnswered:
      return MapStatus(outcome);
    case Delivery::kNotSent:
      return CallResult::Transient("not sent to " + outcome.url + ": " + outcome.detail);
    case Delivery::kTimedOutAfterSend:
      return CallResult::Unknown("no reply from " + outcome.url + ": " + outcome.detail +
                                 " (the request was sent; it may have taken effect)");
    case Delivery::kLostAfterSend:
      return CallResult::Unknown("connection to " + outcome.url +
                                 " lost after the request was sent: " + outcome.detail +
                                 " (it may have taken effect)");
    case Delivery::kNoCallForOp:
      return CallResult::Permanent(outcome.detail);
    case Delivery::kInvalidRequest:
      return CallResult::Permanent("not sent to " + outcome.url + ": " + outcome.detail);
  }
  // An enum value without a row: the request may have gone out, so claim nothing about it.
  return CallResult::Unknown("unclassified outcome of the call to " + outcome.url);
}

}  // namespace txc::participants::http
