#include "examples/shop/common/service_options.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace txc::shop {
namespace {

Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max,
                             const std::string& where) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return Status::InvalidArgument(where + ": expected an integer from " + std::to_string(min) +
                                   " to " + std::to_string(max) + ", got \"" + std::string(text) +
                                   "\"");
  }
  return value;
}

// HOST:PORT, where HOST may be a bracketed IPv6 literal ([::1]:9001).
Status ParseListen(std::string_view text, const std::string& where, ServiceOptions* options) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(where + ": expected HOST:PORT, got \"" + std::string(text) +
                                   "\"");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Result<int64_t> port = ParseInteger(text.substr(colon + 1), 0, 65535, where + " port");
  if (!port.ok()) return port.status();
  options->host = std::string(host);
  options->port = static_cast<uint16_t>(*port);
  return Status::Ok();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): at start-up
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::string EnvName(const ServiceInfo& info, std::string_view key) {
  std::string name = "SHOP_";
  for (char c : info.name) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  name += '_';
  name += key;
  return name;
}

Result<ServiceOptions> ParseServiceOptions(const ServiceInfo& info,
                                           const std::vector<std::string>& args,
                                           const EnvLookup& env) {
  ServiceOptions options;
  options.port = info.default_port;

  // The environment first, so that flags override it.
  if (std::optional<std::string> listen = env(EnvName(info, "LISTEN")); listen.has_value()) {
    TXC_RETURN_IF_ERROR(ParseListen(*listen, EnvName(info, "LISTEN"), &options));
  }
  if (std::optional<std::string> dsn = env(EnvName(info, "DSN")); dsn.has_value()) {
    options.dsn = *dsn;
  }
  if (std::optional<std::string> threads = env(EnvName(info, "THREADS")); threads.has_value()) {
    Result<int64_t> parsed = ParseInteger(*threads, 1, kThreadsMax, EnvName(info, "THREADS"));
    if (!parsed.ok()) return parsed.status();
    options.threads = static_cast<int>(*parsed);
  }

  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const size_t equals = flag.find('='); flag.starts_with("--") && equals != flag.npos) {
      value = flag.substr(equals + 1);
      flag.resize(equals);
    }
    if (flag == "--help" || flag == "-h") {
      options.help = true;
      continue;
    }
    if (flag != "--listen" && flag != "--dsn" && flag != "--threads") {
      return Status::InvalidArgument("unknown argument \"" + flag + "\" (see --help)");
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return Status::InvalidArgument(flag + ": needs a value");
      value = args[++i];
    }
    if (flag == "--listen") {
      TXC_RETURN_IF_ERROR(ParseListen(*value, flag, &options));
    } else if (flag == "--dsn") {
      options.dsn = *value;
    } else {
      Result<int64_t> parsed = ParseInteger(*value, 1, kThreadsMax, flag);
      if (!parsed.ok()) return parsed.status();
      options.threads = static_cast<int>(*parsed);
    }
  }
  if (!options.help && options.dsn.empty()) {
    return Status::InvalidArgument("--dsn (or " + EnvName(info, "DSN") + ") is required, e.g. " +
                                   info.dsn_example);
  }
  return options;
}

std::string Usage(const ServiceInfo& info) {
  const std::string port = std::to_string(info.default_port);
  return "usage: " + info.program + " [--listen HOST:PORT] --dsn DSN [--threads N]\n\n" +
         "  --listen HOST:PORT  where to serve HTTP (default 127.0.0.1:" + port +
         "; port 0 picks a free\n" +
         "                      port, logged as event=listening port=N); env " +
         EnvName(info, "LISTEN") + "\n" +
         "  --dsn DSN           the service's own database, e.g. " + info.dsn_example + "; env " +
         EnvName(info, "DSN") + "\n" +
         "  --threads N         requests served at once and database connections (default 16, "
         "at most " +
         std::to_string(kThreadsMax) + "); env " + EnvName(info, "THREADS") + "\n" +
         "  --help              print this and exit\n\n" +
         "Tables are created at start when missing. SIGTERM or SIGINT stop the service.\n";
}

}  // namespace txc::shop
