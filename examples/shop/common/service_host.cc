#include "examples/shop/common/service_host.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/server/http_server.h"

namespace txc::shop {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kQueueMax = 64;
// Above the coordinator's idle timeout for pooled participant connections (4 s), so that it, not
// the service, closes an idle keep-alive connection, and seldom reuses one the service has closed.
constexpr int64_t kKeepAliveTimeoutMs = 5'000;
constexpr int64_t kRequestTimeoutMs = 30'000;
constexpr auto kStopGrace = std::chrono::seconds(5);

}  // namespace

ServiceHost::ServiceHost(ServiceInfo info) : info_(std::move(info)), logger_(std::cerr) {
  sigemptyset(&stop_signals_);
  sigaddset(&stop_signals_, SIGTERM);
  sigaddset(&stop_signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals_, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-response is an error value, not a death

  router_.Add("GET", "/healthz", [this](const server::Request&) {
    Poco::JSON::Object::Ptr body = server::NewJsonObject();
    body->set("status", "ok");
    body->set("service", info_.name);
    return server::JsonResponse(200, *body);
  });
  AddFaultRoutes(router_, &faults_);
}

std::optional<int> ServiceHost::ParseCommandLine(int argc, char** argv) {
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  Result<ServiceOptions> parsed = ParseServiceOptions(info_, args, ProcessEnv());
  if (!parsed.ok()) {
    std::cerr << info_.program << ": " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  options_ = std::move(parsed).value();
  if (options_.help) {
    std::cout << Usage(info_);
    return 0;
  }
  logger_.Info("starting", {{"service", info_.name},
                            {"listen", options_.host + ":" + std::to_string(options_.port)},
                            {"threads", std::to_string(options_.threads)}});
  return std::nullopt;
}

int ServiceHost::Fail(std::string_view event, const Status& status) {
  logger_.Error(event, {{"service", info_.name}, {"error", status.ToString()}});
  return kExitFailure;
}

int ServiceHost::Serve() {
  server::HttpServerOptions http;
  http.host = options_.host;
  http.port = options_.port;
  http.threads = options_.threads;
  http.queue_max = kQueueMax;
  http.keep_alive_timeout_ms = kKeepAliveTimeoutMs;
  http.request_timeout_ms = kRequestTimeoutMs;
  http.max_body_bytes = kBodyBytesMax;
  Result<std::unique_ptr<server::HttpServer>> started =
      server::HttpServer::Start(http, &router_, &logger_);
  if (!started.ok()) return Fail("listen_failed", started.status());
  std::unique_ptr<server::HttpServer> http_server = std::move(started).value();
  logger_.Info("listening", {{"service", info_.name},
                             {"listen", options_.host + ":" + std::to_string(http_server->port())},
                             {"port", std::to_string(http_server->port())}});

  int signal_number = 0;
  sigwait(&stop_signals_, &signal_number);
  logger_.Info("stopping", {{"service", info_.name},
                            {"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
  const bool clean = http_server->Stop(kStopGrace);
  logger_.Info("stopped", {{"service", info_.name}, {"clean", clean ? "true" : "false"}});
  return 0;
}

}  // namespace txc::shop
