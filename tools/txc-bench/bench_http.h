// HTTP for the comparison scenarios: one keep-alive connection per client thread (POCO), and
// just enough JSON reading to tell a committed transaction from a failed one without parsing
// whole documents on a machine the coordinator shares.
#pragma once

#include <Poco/Net/HTTPClientSession.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::bench {

// host and port of an "http://host:port[/]" URL; InvalidArgument for anything else (the bench
// talks plain HTTP to a coordinator on this machine).
struct HttpEndpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // http://host:port
};
Result<HttpEndpoint> ParseHttpUrl(const std::string& url);

struct HttpReply {
  int status = 0;
  std::string body;
};

// One keep-alive connection to one server, used by one thread. After any I/O error the
// connection is closed, and the next request opens a new one.
class KeepAliveClient {
 public:
  KeepAliveClient(const HttpEndpoint& endpoint, std::chrono::milliseconds timeout);

  // Sends `method path` with `body` (Content-Type application/json when not empty) and reads
  // the whole reply. Unavailable, with what failed, when no reply came.
  Result<HttpReply> Send(const std::string& method, const std::string& path,
                         const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  HttpEndpoint endpoint_;
  Poco::Net::HTTPClientSession session_;
};

// The value of the first `"key": ...` member in `json`: the text of a string value (escapes
// kept as written), "null" for null, nullopt when the key is absent or its value is something
// else. Enough for the flat fields of txcoord's documents and errors ("outcome", "message").
std::optional<std::string> JsonStringField(std::string_view json, std::string_view key);

// A one-line description of a reply that is not what was expected: status, and the error
// message of a txcoord error body (or the start of the body).
std::string DescribeReply(const HttpReply& reply);

// Submits a transaction (`wait: true` in `body`) and checks that it committed; otherwise false
// with *error saying what came back ("<what> not committed: ..."). `what` names it in errors.
bool SubmitExpectingCommit(KeepAliveClient& client, const std::string& body,
                           const std::string& what, std::string* error);

// Whether txcoord at `txcoord` answers GET /readyz with 200 (it serves transactions); false
// after saying on stderr, as `txc-bench <scenario>: ...`, why not.
bool CheckCoordinatorReady(const char* scenario, const HttpEndpoint& txcoord);

}  // namespace txc::bench
