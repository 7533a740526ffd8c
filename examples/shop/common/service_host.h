// What every shop service's main() does around its own routes: the command line, the log on
// stderr, GET /healthz and the /faults hooks, a bounded HTTP server, and a graceful stop on SIGTERM
// or SIGINT.
//
//   ServiceHost host(kInfo);
//   if (std::optional<int> exit_code = host.ParseCommandLine(argc, argv)) return *exit_code;
//   ... open the database (host.options().dsn), add routes to host.router() ...
//   return host.Serve();
//
// Bounds: options().threads requests at once (a keep-alive connection holds its thread until idle
// for 5 s), 64 more connections queued, request bodies up to 64 KiB (413 beyond).
#pragma once

#include <signal.h>

#include <optional>
#include <string_view>

#include "coordinator/server/router.h"
#include "coordinator/server/structured_logger.h"
#include "examples/shop/common/business_route.h"
#include "examples/shop/common/fault_injector.h"
#include "examples/shop/common/service_options.h"

namespace txc::shop {

inline constexpr uint64_t kBodyBytesMax = 64 * 1024;

class ServiceHost {
 public:
  // Blocks SIGTERM and SIGINT in this and every later thread (Serve takes them with sigwait),
  // and ignores SIGPIPE. Construct it first thing in main, before any thread starts.
  explicit ServiceHost(ServiceInfo info);

  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Reads the flags and the environment. An exit code when main must stop now: 0 after --help,
  // 2 after a bad flag (with the reason on stderr).
  std::optional<int> ParseCommandLine(int argc, char** argv);

  const ServiceOptions& options() const { return options_; }
  server::Router& router() { return router_; }
  server::StructuredLogger& logger() { return logger_; }
  BusinessContext business_context() { return BusinessContext{&faults_, &logger_}; }

  // Logs `event` with the status and gives the exit code for a service that cannot start (1).
  int Fail(std::string_view event, const Status& status);

  // Serves the router until SIGTERM or SIGINT, then stops gracefully. The exit code: 0, or 1 when
  // the address cannot be listened on.
  int Serve();

 private:
  const ServiceInfo info_;
  sigset_t stop_signals_;
  ServiceOptions options_;
  server::StructuredLogger logger_;
  FaultInjector faults_;
  server::Router router_;
};

}  // namespace txc::shop
