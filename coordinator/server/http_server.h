// HttpServer: serves a Router over HTTP/1.1 with POCO's HTTPServer.
//
//  - Bounded: `threads` connections are served at once (a keep-alive connection holds its thread
//    until it goes idle for keep_alive_timeout), at most `queue_max` accepted connections wait
//    for a thread, and the rest are closed at once (POCO counts them; see refused_connections()).
//  - Keep-alive on; every response carries its Content-Length.
//  - Bodies: over max_body_bytes → 413 body_too_large without reading the body (body_limit.h),
//    then the connection is closed.
//  - Stop: no new connections, in-flight requests get a bounded grace, then connections are cut.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "coordinator/common/status.h"
#include "coordinator/server/router.h"
#include "coordinator/server/structured_logger.h"

namespace txc::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: a free port, see HttpServer::port()
  int threads = 16;
  int queue_max = 64;
  int64_t keep_alive_timeout_ms = 10'000;
  int64_t request_timeout_ms = 30'000;
  uint64_t max_body_bytes = 1'048'576;
};

class HttpServer {
 public:
  // Binds, listens and starts serving `router` (which must outlive the server). A port in use or
  // an unknown host → Unavailable naming the address.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   const Router* router, StructuredLogger* logger);
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually listened on.
  uint16_t port() const;

  // Connections closed unserved because the queue was full, since start.
  uint64_t refused_connections() const;

  // Stops accepting, waits up to `grace` for requests in handlers to finish, then shuts every
  // connection down and joins the threads. True when no request was cut. Idempotent.
  bool Stop(std::chrono::milliseconds grace);

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txc::server
