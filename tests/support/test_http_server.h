// TestHttpServer: a real POCO HTTPServer on 127.0.0.1 (a free port) inside the test process,
// standing in for a participant. Each test tells it how to answer (status, body, delay, or
// dropping the connection in one of several ways) and reads back what it received: every
// request with its headers and body, and which connection carried it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace txc::testing {

struct CapturedRequest {
  std::string method;
  std::string uri;
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  std::string body;
  uint64_t connection = 0;             // 1, 2, ...: which TCP connection carried it
  uint64_t request_on_connection = 0;  // 1 for the first request on its connection

  // The value of header `name` (case-insensitive), "" when absent; `count` how often it came.
  std::string Header(std::string_view name) const;
  size_t HeaderCount(std::string_view name) const;
};

struct Answer {
  enum class Kind {
    kRespond,             // status, headers, body
    kCloseWithoutAnswer,  // read the request, then shut the connection down (FIN)
    kResetWithoutAnswer,  // read the request, then reset the connection (RST)
    kPartialStatusLine,   // send "HTTP/1.1 20" and shut down: a reply that breaks off
    kRespondThenClose,    // answer with keep-alive headers, then shut the connection down
  };
  Kind kind = Kind::kRespond;
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay{0};  // before answering; cut short when the server stops
};

class TestHttpServer {
 public:
  using Handler = std::function<Answer(const CapturedRequest&)>;

  struct Options {
    std::chrono::milliseconds keep_alive_timeout{30'000};  // the server closes idle connections
    int threads = 16;                                      // connections served at once
  };

  TestHttpServer();
  explicit TestHttpServer(Options options);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  // Replaces how requests are answered (default: 200 with body "ok").
  void SetHandler(Handler handler);

  uint16_t port() const;
  // "http://127.0.0.1:<port><path>"
  std::string Url(std::string_view path) const;

  std::vector<CapturedRequest> requests() const;
  size_t request_count() const;
  size_t connection_count() const;  // connections that carried at least one request
  size_t handled_count() const;     // requests whose handler has finished
  size_t peak_concurrency() const;  // most requests in handlers at once

  struct State;

 private:
  std::shared_ptr<State> state_;
  struct Server;
  std::unique_ptr<Server> server_;
};

// Polls `condition` every 2 ms until it holds or `timeout` passes; returns whether it held.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// A port on 127.0.0.1 where nothing listens (bound to find a free one, then closed).
uint16_t ClosedPort();

}  // namespace txc::testing
