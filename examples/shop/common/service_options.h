// The command line of a shop service: where it listens, which database it owns, how many requests
// it serves at once. Each flag has an environment variable (SHOP_<SERVICE>_LISTEN, ..._DSN,
// ..._THREADS) so the three services can be configured side by side; a flag wins over its variable.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::shop {

// What is fixed per service; the rest comes from flags and the environment.
struct ServiceInfo {
  std::string name;     // "payment": names the env variables and the log lines
  std::string program;  // "txc-example-payment"
  uint16_t default_port = 0;
  std::string dsn_example;  // shown by --help
};

struct ServiceOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: a free port, logged as event=listening port=N
  std::string dsn;
  int threads = 16;   // requests served at once; also the database connection pool's size
  bool help = false;  // --help: print Usage() and exit 0
};

inline constexpr int kThreadsMax = 256;

// Looks up an environment variable (std::getenv in production, a map in tests).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// `args` without the program name. InvalidArgument naming the flag or variable on a bad value, an
// unknown flag or a missing DSN.
Result<ServiceOptions> ParseServiceOptions(const ServiceInfo& info,
                                           const std::vector<std::string>& args,
                                           const EnvLookup& env);

// "SHOP_PAYMENT_DSN" for ("payment", "DSN").
std::string EnvName(const ServiceInfo& info, std::string_view key);

std::string Usage(const ServiceInfo& info);

}  // namespace txc::shop
