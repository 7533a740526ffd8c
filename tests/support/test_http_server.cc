#include "tests/support/test_http_server.h"

#include <Poco/Any.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace txc::testing {

namespace {
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

std::string CapturedRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

size_t CapturedRequest::HeaderCount(std::string_view name) const {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(), [&](const auto& h) {
    return EqualsIgnoreCase(h.first, name);
  }));
}

// Shared by the server object and POCO's handler threads, so a handler still running while the
// test tears the server down never touches freed memory.
struct TestHttpServer::State {
  mutable std::mutex mutex;
  std::condition_variable stop_signal;
  bool stopping = false;
  Handler handler;
  std::vector<CapturedRequest> requests;
  uint64_t connections = 0;
  size_t handled = 0;
  size_t active = 0;
  size_t peak = 0;
};

namespace {

using State = TestHttpServer::State;

class RecordingHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RecordingHandler(std::shared_ptr<State> state) : state_(std::move(state)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    auto& request_impl = static_cast<Poco::Net::HTTPServerRequestImpl&>(request);
    CapturedRequest captured;
    captured.method = request.getMethod();
    captured.uri = request.getURI();
    for (const auto& [name, value] : request) captured.headers.emplace_back(name, value);
    Poco::StreamCopier::copyToString(request.stream(), captured.body);

    // The session lives as long as its connection: numbering it on its first request counts
    // connections exactly (client port numbers can be reused).
    Poco::Net::HTTPServerSession& session = request_impl.session();
    TestHttpServer::Handler handler;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (session.sessionData().empty()) {
        session.attachSessionData(Poco::Any(std::make_shared<uint64_t>(++state_->connections)));
      }
      const auto counter = Poco::AnyCast<std::shared_ptr<uint64_t>>(session.sessionData());
      captured.connection = *counter;
      captured.request_on_connection = static_cast<uint64_t>(
          std::count_if(state_->requests.begin(), state_->requests.end(),
                        [&](const CapturedRequest& r) { return r.connection == *counter; }) +
          1);
      state_->requests.push_back(captured);
      handler = state_->handler;
      state_->peak = std::max(state_->peak, ++state_->active);
    }

    Answer answer = handler ? handler(captured) : Answer{};
    if (answer.delay.count() > 0) {
      std::unique_lock<std::mutex> lock(state_->mutex);
      state_->stop_signal.wait_for(lock, answer.delay, [&] { return state_->stopping; });
    }
    Deliver(request_impl, response, answer);

    std::lock_guard<std::mutex> lock(state_->mutex);
    --state_->active;
    ++state_->handled;
  }

 private:
  static void Deliver(Poco::Net::HTTPServerRequestImpl& request,
                      Poco::Net::HTTPServerResponse& response, const Answer& answer) {
    Poco::Net::StreamSocket& socket = request.socket();
    switch (answer.kind) {
      case Answer::Kind::kCloseWithoutAnswer:
        response.setKeepAlive(false);
        socket.shutdown();
        return;
      case Answer::Kind::kResetWithoutAnswer:
        response.setKeepAlive(false);
        socket.setLinger(true, 0);  // close() now sends RST instead of FIN
        socket.close();
        return;
      case Answer::Kind::kPartialStatusLine: {
        response.setKeepAlive(false);
        constexpr std::string_view kPartial = "HTTP/1.1 20";
        socket.sendBytes(kPartial.data(), static_cast<int>(kPartial.size()));
        socket.shutdown();
        return;
      }
      case Answer::Kind::kRespond:
      case Answer::Kind::kRespondThenClose:
        break;
    }
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status),
                                "Test");
    for (const auto& [name, value] : answer.headers) response.set(name, value);
    // 204 and 304 carry no body and no Content-Length (RFC 9110 §8.6); POCO frames them so.
    const bool bodyless = answer.status == 204 || answer.status == 304;
    if (!bodyless) {
      if (!answer.body.empty()) response.setContentType("text/plain");
      response.setContentLength(static_cast<std::streamsize>(answer.body.size()));
    }
    std::ostream& out = response.send();
    if (!bodyless) out.write(answer.body.data(), static_cast<std::streamsize>(answer.body.size()));
    out.flush();  // before a shutdown below: POCO would flush only after the handler returns
    if (answer.kind == Answer::Kind::kRespondThenClose) {
      response.setKeepAlive(false);  // what the server does; the client was told keep-alive
      socket.shutdown();
    }
  }

  std::shared_ptr<State> state_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(std::shared_ptr<State> state) : state_(std::move(state)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RecordingHandler(state_);
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

struct TestHttpServer::Server {
  std::unique_ptr<Poco::ThreadPool> threads;
  std::unique_ptr<Poco::Net::HTTPServer> http;
  uint16_t port = 0;
};

TestHttpServer::TestHttpServer() : TestHttpServer(Options{}) {}

TestHttpServer::TestHttpServer(Options options)
    : state_(std::make_shared<State>()), server_(std::make_unique<Server>()) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  server_->port = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(0);  // unlimited (NOTES.md)
  params->setKeepAliveTimeout(Poco::Timespan(options.keep_alive_timeout.count() * 1000));
  params->setMaxThreads(options.threads);
  params->setMaxQueued(256);
  server_->threads = std::make_unique<Poco::ThreadPool>(2, options.threads + 2);
  server_->http = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(state_),
                                                          *server_->threads, socket, params);
  server_->http->start();
}

TestHttpServer::~TestHttpServer() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->stop_signal.notify_all();
  server_->http->stopAll(/*abortCurrent=*/true);
  server_->threads->joinAll();
}

void TestHttpServer::SetHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->handler = std::move(handler);
}

uint16_t TestHttpServer::port() const { return server_->port; }

std::string TestHttpServer::Url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(server_->port) + std::string(path);
}

std::vector<CapturedRequest> TestHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->requests;
}

size_t TestHttpServer::request_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->requests.size();
}

size_t TestHttpServer::connection_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return static_cast<size_t>(state_->connections);
}

size_t TestHttpServer::handled_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->handled;
}

size_t TestHttpServer::peak_concurrency() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->peak;
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

uint16_t ClosedPort() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  const uint16_t port = socket.address().port();
  socket.close();
  return port;
}

}  // namespace txc::testing
