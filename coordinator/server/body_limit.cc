#include "coordinator/server/body_limit.h"

#include <algorithm>

namespace txc::server {

bool DeclaredLengthTooLarge(std::optional<uint64_t> content_length, uint64_t max_bytes) {
  return content_length.has_value() && *content_length > max_bytes;
}

BodyReadOutcome ReadBodyBounded(std::istream& in, uint64_t max_bytes, std::string* body) {
  constexpr uint64_t kChunkBytes = 64 * 1024;
  body->clear();
  const uint64_t want = max_bytes + 1;
  char chunk[kChunkBytes];
  while (body->size() < want) {
    const uint64_t ask = std::min<uint64_t>(kChunkBytes, want - body->size());
    in.read(chunk, static_cast<std::streamsize>(ask));
    const std::streamsize got = in.gcount();
    body->append(chunk, static_cast<size_t>(got));
    if (in.bad()) return BodyReadOutcome::kBroken;
    if (in.eof()) break;
    if (got == 0) return BodyReadOutcome::kBroken;  // neither data nor end: treat as broken
  }
  return body->size() > max_bytes ? BodyReadOutcome::kTooLarge : BodyReadOutcome::kComplete;
}

std::string BodyTooLargeMessage(uint64_t max_bytes) {
  return "the request body is larger than limits.max_body_bytes (" + std::to_string(max_bytes) +
         " bytes)";
}

}  // namespace txc::server
