// The POCO adapter over real loopback sockets: keep-alive, content lengths, 404/405 bodies, 413
// without reading the body, load shedding when the queue is full, and graceful stop.
#include "coordinator/server/http_server.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

namespace txc::server {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// Polls `condition` until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout = milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse response;
};

Reply Receive(Poco::Net::HTTPClientSession& session) {
  Reply reply;
  std::istream& in = session.receiveResponse(reply.response);
  Poco::StreamCopier::copyToString(in, reply.body);
  reply.status = reply.response.getStatus();
  return reply;
}

Reply Send(Poco::Net::HTTPClientSession& session, const std::string& method,
           const std::string& path, const std::string& body = "") {
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  session.sendRequest(request) << body;
  return Receive(session);
}

// A handler that blocks until released (or until a bound, so a failing test cannot hang).
class Gate {
 public:
  Response Pass() {
    entered_.store(true);
    released_.wait_for(std::chrono::seconds(10));
    Response response;
    response.content_type = "text/plain";
    response.body = "passed";
    return response;
  }
  void Release() {
    bool expected = false;
    if (release_once_.compare_exchange_strong(expected, true)) release_.set_value();
  }
  bool entered() const { return entered_.load(); }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> entered_{false};
  std::atomic<bool> release_once_{false};
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() : logger_(log_stream_) {
    router_.Add("GET", "/hello", [](const Request&) {
      Response response;
      response.content_type = "text/plain";
      response.body = "hello";
      return response;
    });
    router_.Add("POST", "/echo", [this](const Request& r) {
      ++echo_calls_;
      Response response;
      response.content_type = "text/plain";
      response.body = r.body;
      return response;
    });
    router_.Add("GET", "/block", [this](const Request&) { return gate_.Pass(); });
  }
  ~HttpServerTest() override {
    gate_.Release();
    if (server_) server_->Stop(milliseconds(0));
  }

  void Start(HttpServerOptions options = {}) {
    options.port = 0;
    Result<std::unique_ptr<HttpServer>> started = HttpServer::Start(options, &router_, &logger_);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    ASSERT_NE(server_->port(), 0);
  }

  std::unique_ptr<Poco::Net::HTTPClientSession> Session() {
    auto session = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", server_->port());
    session->setTimeout(Poco::Timespan(10, 0));
    session->setKeepAlive(true);
    return session;
  }

  std::ostringstream log_stream_;
  StructuredLogger logger_;
  Router router_;
  Gate gate_;
  std::atomic<int> echo_calls_{0};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesManyRequestsOnOneKeepAliveConnection) {
  Start();
  auto session_owner = Session();
  Poco::Net::HTTPClientSession& session = *session_owner;
  for (int i = 0; i < 3; ++i) {
    Reply reply = Send(session, "GET", "/hello");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, "hello");
    EXPECT_EQ(reply.response.getContentLength(), 5);
    EXPECT_TRUE(reply.response.getKeepAlive());
  }
  Reply echo = Send(session, "POST", "/echo", "{\"a\":1}");
  EXPECT_EQ(echo.body, "{\"a\":1}");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowedCarryJsonErrors) {
  Start();
  auto session_owner = Session();
  Poco::Net::HTTPClientSession& session = *session_owner;
  Reply missing = Send(session, "GET", "/nope?x=1");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.response.getContentType(), "application/json");
  EXPECT_THAT(missing.body, HasSubstr(R"({"error":{"code":"not_found","message":)"));
  Reply wrong = Send(session, "DELETE", "/hello");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.response.get("Allow"), "GET");
  EXPECT_THAT(wrong.body, HasSubstr(R"("code":"method_not_allowed")"));
  // The connection survived both errors.
  EXPECT_EQ(Send(session, "GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, OversizedContentLengthIs413WithoutReadingTheBody) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  Start(options);
  auto session_owner = Session();
  Poco::Net::HTTPClientSession& session = *session_owner;
  Poco::Net::HTTPRequest request("POST", "/echo", Poco::Net::HTTPMessage::HTTP_1_1);
  request.setContentLength(100'000'000);  // announced, never sent
  session.sendRequest(request);
  Reply reply = Receive(session);
  EXPECT_EQ(reply.status, 413);
  EXPECT_THAT(reply.body, HasSubstr(R"("code":"body_too_large")"));
  EXPECT_THAT(reply.body, HasSubstr("limits.max_body_bytes (1000 bytes)"));
  EXPECT_FALSE(reply.response.getKeepAlive());
  EXPECT_EQ(echo_calls_.load(), 0);
}

TEST_F(HttpServerTest, OversizedChunkedBodyIs413) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  Start(options);
  auto session_owner = Session();
  Poco::Net::HTTPClientSession& session = *session_owner;
  Poco::Net::HTTPRequest request("POST", "/echo", Poco::Net::HTTPMessage::HTTP_1_1);
  request.setChunkedTransferEncoding(true);
  std::ostream& body = session.sendRequest(request);
  body << std::string(5000, 'x');
  Reply reply = Receive(session);
  EXPECT_EQ(reply.status, 413);
  EXPECT_THAT(reply.body, HasSubstr(R"("code":"body_too_large")"));
  EXPECT_FALSE(reply.response.getKeepAlive());
  EXPECT_EQ(echo_calls_.load(), 0);
}

TEST_F(HttpServerTest, ChunkedBodyWithinTheLimitIsServed) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  Start(options);
  auto session_owner = Session();
  Poco::Net::HTTPClientSession& session = *session_owner;
  Poco::Net::HTTPRequest request("POST", "/echo", Poco::Net::HTTPMessage::HTTP_1_1);
  request.setChunkedTransferEncoding(true);
  session.sendRequest(request) << std::string(1000, 'y');
  Reply reply = Receive(session);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, std::string(1000, 'y'));
  EXPECT_TRUE(reply.response.getKeepAlive());
}

TEST_F(HttpServerTest, ARequestWithoutLengthOrChunkingHasAnEmptyBody) {
  Start();
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", server_->port()));
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  const std::string request = "POST /echo HTTP/1.1\r\nHost: test\r\n\r\n";
  socket.sendBytes(request.data(), static_cast<int>(request.size()));
  // The answer comes without the server waiting for a body that was never announced.
  std::string answer;
  char buffer[1024];
  while (answer.find("\r\n\r\n") == std::string::npos) {
    int got = socket.receiveBytes(buffer, sizeof buffer);
    ASSERT_GT(got, 0) << answer;
    answer.append(buffer, static_cast<size_t>(got));
  }
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: 0\r\n"));
  EXPECT_EQ(echo_calls_.load(), 1);
}

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinish) {
  Start();
  auto client = std::async(std::launch::async, [this] {
    auto session_owner = Session();
    Poco::Net::HTTPClientSession& session = *session_owner;
    return Send(session, "GET", "/block");
  });
  ASSERT_TRUE(WaitUntil([this] { return gate_.entered(); }));
  auto stopped =
      std::async(std::launch::async, [this] { return server_->Stop(milliseconds(10'000)); });
  // Stop is waiting for the request, not cutting it.
  EXPECT_EQ(stopped.wait_for(milliseconds(100)), std::future_status::timeout);
  gate_.Release();
  EXPECT_TRUE(stopped.get());
  Reply reply = client.get();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "passed");
  EXPECT_FALSE(reply.response.getKeepAlive());  // draining: the connection is closed after it
}

TEST_F(HttpServerTest, StopCutsARequestThatOutlivesTheGrace) {
  Start();
  auto client = std::async(std::launch::async, [this] {
    auto session_owner = Session();
    Poco::Net::HTTPClientSession& session = *session_owner;
    try {
      Send(session, "GET", "/block");
    } catch (const Poco::Exception&) {
      gate_.Release();  // the connection was cut: let the handler end so the threads can join
      return true;
    }
    return false;
  });
  ASSERT_TRUE(WaitUntil([this] { return gate_.entered(); }));
  EXPECT_FALSE(server_->Stop(milliseconds(50)));
  EXPECT_TRUE(client.get());
}

TEST_F(HttpServerTest, ConnectionsBeyondTheQueueAreRefusedAndCounted) {
  HttpServerOptions options;
  options.threads = 1;
  options.queue_max = 1;
  Start(options);
  auto busy = std::async(std::launch::async, [this] {
    auto session_owner = Session();
    Poco::Net::HTTPClientSession& session = *session_owner;
    return Send(session, "GET", "/block").status;
  });
  ASSERT_TRUE(WaitUntil([this] { return gate_.entered(); }));
  // The only thread is busy: one connection waits in the queue, the next ones are refused.
  Poco::Net::SocketAddress address("127.0.0.1", server_->port());
  Poco::Net::StreamSocket queued(address);
  std::vector<Poco::Net::StreamSocket> extra;
  for (int i = 0; i < 3; ++i) extra.emplace_back(address);
  EXPECT_TRUE(WaitUntil([this] { return server_->refused_connections() >= 2; }))
      << server_->refused_connections();
  gate_.Release();
  EXPECT_EQ(busy.get(), 200);
}

TEST_F(HttpServerTest, APortInUseIsAnErrorNamingTheAddress) {
  Start();
  HttpServerOptions options;
  options.port = server_->port();
  Result<std::unique_ptr<HttpServer>> second = HttpServer::Start(options, &router_, &logger_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(),
              HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(server_->port())));
}

}  // namespace
}  // namespace txc::server
