// Config: everything txcoord reads at start-up, from one YAML file and TXC_* environment
// variables (API.md "Configuration").
//
// Every key has one entry in a table (config.cc) giving its path, default, environment variable
// and meaning; parsing, overriding, validation, --help and --print-config all read that table, so
// a key cannot be documented without being parsed or parsed without being documented.
//
// Errors name the key path (`limits.max_body_bytes: must be ...`, `resources[1].kind: ...`).
// Unknown keys in the file are errors: a typo must not silently fall back to a default.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::config {

// `listen: host:port`, split. Port 0 asks the kernel for a free port (tests).
struct ListenAddress {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string ToString() const;
  bool operator==(const ListenAddress&) const = default;
};

struct LogConfig {
  std::string kind = "file";  // file | postgres
  std::string dir = "./var/txc";
  std::string dsn;  // postgres only
  uint64_t segment_bytes_max = 64ull << 20;
  uint64_t compact_after_bytes = 256ull << 20;
  bool operator==(const LogConfig&) const = default;
};

struct ParticipantsConfig {
  // URL patterns a transaction may call; `*` matches any run of characters.
  std::vector<std::string> allow = {"http://127.0.0.1:*"};
  bool operator==(const ParticipantsConfig&) const = default;
};

struct ResourceConfig {
  std::string name;
  std::string kind;  // postgres | mysql
  std::string dsn;
  bool operator==(const ResourceConfig&) const = default;
};

struct LimitsConfig {
  uint64_t max_body_bytes = 1'048'576;
  uint64_t max_branches = 64;
  uint64_t max_in_flight = 10'000;
  bool operator==(const LimitsConfig&) const = default;
};

struct RetentionConfig {
  uint64_t finished_ms = 86'400'000;
  bool operator==(const RetentionConfig&) const = default;
};

struct HttpConfig {
  uint64_t threads = 16;    // connections served at once (each keep-alive connection holds one)
  uint64_t queue_max = 64;  // accepted connections waiting for a thread; beyond: refused
  uint64_t keep_alive_timeout_ms = 10'000;
  uint64_t request_timeout_ms = 30'000;  // socket receive/send timeout per request
  bool operator==(const HttpConfig&) const = default;
};

struct AuthConfig {
  // The API token file (`<role> <name> <token>` per line); empty: access control is off.
  std::string tokens_file;
  bool operator==(const AuthConfig&) const = default;
};

struct Config {
  std::string node_id = "c1";
  std::string log_format = "logfmt";  // txcoord's own log lines: logfmt | json
  ListenAddress listen;
  LogConfig log;
  uint64_t stuck_after_ms = 60'000;
  ParticipantsConfig participants;
  std::vector<ResourceConfig> resources;
  LimitsConfig limits;
  RetentionConfig retention;
  HttpConfig http;
  uint64_t shutdown_grace_ms = 10'000;
  AuthConfig auth;
  bool operator==(const Config&) const = default;
};

// The environment as seen by the loader: variable name → value. Only TXC_* names matter.
using Environment = std::map<std::string, std::string>;

// The process's TXC_* environment variables.
Environment ProcessEnvironment();

struct LoadedConfig {
  Config config;
  // Things worth telling the operator that are not errors (a TXC_* variable that names no key).
  std::vector<std::string> warnings;
};

// Defaults, then the YAML file at `file` (when given), then environment overrides; then
// validation. The error message names the key path.
Result<LoadedConfig> LoadConfig(const std::optional<std::string>& file, const Environment& env);

// Same, from YAML text instead of a file (tests; `origin` names it in messages).
Result<LoadedConfig> LoadConfigFromString(const std::string& yaml_text, const Environment& env,
                                          const std::string& origin = "config");

// Every key path, in the order --help lists them ("node_id", "log.dir", "resources", ...).
std::vector<std::string> ConfigKeyPaths();

// The environment variable that overrides `key_path` ("limits.max_body_bytes" →
// "TXC_LIMITS_MAX_BODY_BYTES").
std::string EnvironmentVariableFor(const std::string& key_path);

// Every key with its default, environment variable and meaning (txcoord --help).
std::string ConfigHelpText();

// The effective configuration as YAML, with secrets (DSN passwords) replaced by "***"
// (txcoord --print-config, the start-up log line).
std::string RenderEffectiveConfig(const Config& config);

// `dsn` with its password replaced by "***": URI form (`scheme://user:pw@host`) and
// keyword/value form (`password=pw`), and `password=` query parameters.
std::string RedactDsn(const std::string& dsn);

}  // namespace txc::config
