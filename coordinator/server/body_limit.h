// Reading request bodies within limits.max_body_bytes without ever holding more than the limit:
// a declared Content-Length over the limit is refused before a byte of the body is read, and a
// body of unknown length (chunked) is read only up to limit + 1 bytes, enough to know it is too
// large. Either way the server answers 413 body_too_large and closes the connection.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>

namespace txc::server {

enum class BodyReadOutcome {
  kComplete,  // *body holds the whole body
  kTooLarge,  // more than max_bytes: *body holds max_bytes + 1 bytes, the rest was not read
  kBroken,    // the stream failed (client gone, timeout): *body is a prefix
};

// True when a declared length (absent for chunked bodies) already exceeds the limit.
bool DeclaredLengthTooLarge(std::optional<uint64_t> content_length, uint64_t max_bytes);

// Reads `in` to its end, but never more than max_bytes + 1 bytes.
BodyReadOutcome ReadBodyBounded(std::istream& in, uint64_t max_bytes, std::string* body);

// The 413 answer's message.
std::string BodyTooLargeMessage(uint64_t max_bytes);

}  // namespace txc::server
