#include "coordinator/server/http_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>

#include "coordinator/common/check.h"
#include "coordinator/server/body_limit.h"

namespace txc::server {
namespace {

constexpr int kListenBacklog = 128;

// After a 413 the rest of the body is still on its way. Closing a socket with unread data makes
// the kernel send RST, which can destroy the 413 in the client's buffers before it reads it; so
// the server half-closes and discards what still arrives, briefly and boundedly, before closing.
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kLingerBytesMax = 4u << 20;

void LingerThenClose(Poco::Net::HTTPServerRequest& request) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
  if (impl == nullptr) return;
  try {
    Poco::Net::StreamSocket& socket = impl->socket();
    socket.shutdownSend();
    socket.setReceiveTimeout(Poco::Timespan(0, 100'000));
    const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
    size_t discarded = 0;
    char buffer[16 * 1024];
    while (discarded < kLingerBytesMax && std::chrono::steady_clock::now() < deadline) {
      int got = 0;
      try {
        got = socket.receiveBytes(buffer, sizeof buffer);
      } catch (const Poco::TimeoutException&) {
        continue;
      }
      if (got <= 0) break;  // the client closed its side
      discarded += static_cast<size_t>(got);
    }
  } catch (const Poco::Exception&) {
    // The peer is gone already: nothing left to protect.
  }
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, const Router* router, StructuredLogger* logger)
      : options_(options), router_(router), logger_(logger) {}

  ~Impl() { Stop(std::chrono::milliseconds(0)); }

  Status Start();
  bool Stop(std::chrono::milliseconds grace);
  void Handle(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response);

  uint16_t port() const { return port_; }
  uint64_t refused_connections() const {
    return server_ ? static_cast<uint64_t>(std::max(0, server_->refusedConnections())) : 0;
  }

 private:
  // Counts a request as in flight while it is inside Handle.
  class InFlight {
   public:
    explicit InFlight(Impl* impl) : impl_(impl) {
      std::lock_guard<std::mutex> lock(impl_->mutex_);
      ++impl_->in_flight_;
    }
    ~InFlight() {
      std::lock_guard<std::mutex> lock(impl_->mutex_);
      --impl_->in_flight_;
      impl_->idle_.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Impl* impl_;
  };

  Response Serve(Poco::Net::HTTPServerRequest& request, bool* body_left_unread);
  void Write(const Response& out, Poco::Net::HTTPServerResponse& response);

  const HttpServerOptions options_;
  const Router* router_;
  StructuredLogger* logger_;
  // The pool outlives the server that runs connections on it (members die in reverse order).
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  uint16_t port_ = 0;

  std::atomic<bool> draining_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
  int in_flight_ = 0;        // guarded by mutex_
  bool stopped_ = false;     // guarded by mutex_
  bool stop_result_ = true;  // guarded by mutex_
};

namespace {

class RequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(HttpServer::Impl* impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override;

 private:
  HttpServer::Impl* impl_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(HttpServer::Impl* impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(impl_);
  }

 private:
  HttpServer::Impl* impl_;
};

void RequestHandler::handleRequest(Poco::Net::HTTPServerRequest& request,
                                   Poco::Net::HTTPServerResponse& response) {
  impl_->Handle(request, response);
}

}  // namespace

Status HttpServer::Impl::Start() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  TXC_CHECK(options_.threads >= 1 && options_.queue_max >= 1, "the HTTP server needs bounds");
  try {
    Poco::Net::SocketAddress address(options_.host, options_.port);
    Poco::Net::ServerSocket socket;
    // SO_REUSEADDR so a restart binds while old connections linger in TIME_WAIT; never
    // SO_REUSEPORT, which would let a second txcoord share the port.
    socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    socket.listen(kListenBacklog);
    port_ = socket.address().port();

    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(0);  // unlimited requests per connection
    params->setKeepAliveTimeout(Poco::Timespan(options_.keep_alive_timeout_ms * 1000));
    params->setTimeout(Poco::Timespan(options_.request_timeout_ms * 1000));
    params->setMaxThreads(options_.threads);
    params->setMaxQueued(options_.queue_max);

    pool_ = std::make_unique<Poco::ThreadPool>(std::min(2, options_.threads), options_.threads);
    server_ =
        std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(this), *pool_, socket, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    server_.reset();
    pool_.reset();
    return Status::Unavailable("cannot listen on " + where + ": " + e.displayText());
  }
  return Status::Ok();
}

bool HttpServer::Impl::Stop(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopped_) return stop_result_;
  stopped_ = true;
  if (!server_) return true;
  draining_.store(true);  // requests still arriving on open connections close them afterwards
  lock.unlock();
  server_->stop();  // no new connections; queued ones are dropped
  lock.lock();
  stop_result_ = idle_.wait_for(lock, grace, [this] { return in_flight_ == 0; });
  lock.unlock();
  // Shut every connection: idle keep-alive ones, and any request that outlived the grace.
  server_->stopAll(/*abortCurrent=*/true);
  pool_->joinAll();
  lock.lock();
  return stop_result_;
}

void HttpServer::Impl::Handle(Poco::Net::HTTPServerRequest& request,
                              Poco::Net::HTTPServerResponse& response) {
  InFlight in_flight(this);
  bool body_left_unread = false;
  Response out;
  try {
    out = Serve(request, &body_left_unread);
  } catch (const std::exception& e) {
    logger_->Error(
        "request_failed",
        {{"method", request.getMethod()}, {"uri", request.getURI()}, {"error", e.what()}});
    out = ErrorResponse(500, "internal", "the request could not be served");
    out.close_connection = true;
  }
  if (draining_.load()) out.close_connection = true;
  try {
    Write(out, response);
  } catch (const std::exception& e) {
    logger_->Warn(
        "response_not_sent",
        {{"method", request.getMethod()}, {"uri", request.getURI()}, {"error", e.what()}});
    return;
  }
  if (body_left_unread) LingerThenClose(request);
}

Response HttpServer::Impl::Serve(Poco::Net::HTTPServerRequest& request, bool* body_left_unread) {
  const uint64_t max_bytes = options_.max_body_bytes;
  std::optional<uint64_t> declared;
  if (request.hasContentLength()) {
    Poco::Int64 length = request.getContentLength64();
    if (length < 0) {
      Response bad = ErrorResponse(400, "bad_request", "Content-Length must not be negative");
      bad.close_connection = true;
      *body_left_unread = true;
      return bad;
    }
    declared = static_cast<uint64_t>(length);
  }
  if (DeclaredLengthTooLarge(declared, max_bytes)) {
    Response too_large = ErrorResponse(413, "body_too_large", BodyTooLargeMessage(max_bytes));
    too_large.close_connection = true;
    *body_left_unread = true;
    return too_large;
  }

  Request in;
  in.method = request.getMethod();
  try {
    Poco::URI uri(request.getURI());
    in.path = uri.getPath();
    for (const auto& [name, value] : uri.getQueryParameters()) in.query[name] = value;
  } catch (const Poco::Exception& e) {
    Response bad = ErrorResponse(400, "bad_request", "malformed request target: " + e.message());
    bad.close_connection = true;
    *body_left_unread = true;
    return bad;
  }
  for (const auto& [name, value] : request) {
    std::string& slot = in.headers[ToLower(name)];
    slot = slot.empty() ? value : slot + ", " + value;
  }

  // A request with neither Content-Length nor chunked encoding has no body (RFC 9112 6.3); POCO
  // would otherwise read such a body until the client closes.
  const bool has_body = declared.has_value() || request.getChunkedTransferEncoding();
  const BodyReadOutcome outcome = has_body ? ReadBodyBounded(request.stream(), max_bytes, &in.body)
                                           : BodyReadOutcome::kComplete;
  switch (outcome) {
    case BodyReadOutcome::kComplete:
      break;
    case BodyReadOutcome::kTooLarge: {
      Response too_large = ErrorResponse(413, "body_too_large", BodyTooLargeMessage(max_bytes));
      too_large.close_connection = true;
      *body_left_unread = true;
      return too_large;
    }
    case BodyReadOutcome::kBroken: {
      Response broken = ErrorResponse(400, "bad_request", "the request body could not be read");
      broken.close_connection = true;
      *body_left_unread = true;
      return broken;
    }
  }
  return router_->Dispatch(std::move(in));
}

void HttpServer::Impl::Write(const Response& out, Poco::Net::HTTPServerResponse& response) {
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(out.status));
  response.setContentType(out.content_type);
  for (const auto& [name, value] : out.headers) response.set(name, value);
  if (out.close_connection) response.setKeepAlive(false);
  response.setContentLength64(static_cast<Poco::Int64>(out.body.size()));
  std::ostream& stream = response.send();
  stream.write(out.body.data(), static_cast<std::streamsize>(out.body.size()));
  stream.flush();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      const Router* router,
                                                      StructuredLogger* logger) {
  TXC_CHECK(router != nullptr && logger != nullptr, "the HTTP server needs a router and a logger");
  auto impl = std::make_unique<Impl>(options, router, logger);
  TXC_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port(); }

uint64_t HttpServer::refused_connections() const { return impl_->refused_connections(); }

bool HttpServer::Stop(std::chrono::milliseconds grace) { return impl_->Stop(grace); }

}  // namespace txc::server
