// txctl's HTTP to txcoord: one request per call on a fresh connection (the CLI makes one or two
// requests per run), and the reading of txcoord's error bodies
// (`{"error": {"code": ..., "message": ...}}`, API.md).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace txc::txctl {

struct Reply {
  int status = 0;
  std::string body;
  bool ok() const { return status >= 200 && status <= 299; }
};

// No answer came: the coordinator is not reachable, or did not answer in time.
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CoordinatorClient {
 public:
  // `url` is http://HOST[:PORT]; std::invalid_argument, naming it, for anything else. A non-empty
  // `token` goes with every request as `Authorization: Bearer <token>`; it is never put in a
  // message (std::invalid_argument, without it, when it could not go in a header).
  explicit CoordinatorClient(const std::string& url, const std::string& token = "");

  // `method path`, with `body` as application/json when not empty; the whole reply. Throws
  // TransportError, saying what failed and where, when no reply came within `timeout`.
  Reply Send(const std::string& method, const std::string& path, const std::string& body,
             std::chrono::milliseconds timeout) const;

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string token_;
  std::string host_;
  unsigned short port_ = 0;
};

// One line for an answer that is not a success: "not_found (HTTP 404): <message>" when the body
// is txcoord's error object, else the status and the start of the body.
std::string DescribeError(const Reply& reply);

// `text` with every character outside [A-Za-z0-9._~-] percent-encoded, for one path segment.
std::string EncodePathSegment(const std::string& text);

}  // namespace txc::txctl
