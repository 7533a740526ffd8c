// txcoord: the transaction coordinator service.
//
// Start-up: configuration (file + TXC_* environment) → decision log opened and recovered → HTTP
// served (readyz 503 "recovering") → start-up recovery → ready. SIGTERM/SIGINT: readyz turns 503,
// no new connections, in-flight requests get shutdown_grace_ms, the log is closed, exit 0.
//
// Exit codes: 0 after a clean stop (or --help/--version/--print-config), 1 when the environment
// fails us (the log directory is locked or damaged, the port is taken), 2 for a usage or
// configuration error.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <random>

#include "coordinator/api/plan_builder.h"
#include "coordinator/api/transaction_routes.h"
#include "coordinator/config/config.h"
#include "coordinator/engine/engine.h"
#include "coordinator/log/file_log.h"
#include "coordinator/metrics/coordinator_metrics.h"
#include "coordinator/metrics/engine_metrics.h"
#include "coordinator/recovery/in_doubt_scanner.h"
#include "coordinator/server/access_control.h"
#include "coordinator/server/http_server.h"
#include "coordinator/server/operational_routes.h"
#include "coordinator/server/readiness.h"
#include "coordinator/server/router.h"
#include "coordinator/server/structured_logger.h"
#include "coordinator/ui/ui_routes.h"
#include "participants/http/http_client_pool.h"
#include "participants/http/target_allowlist.h"
#include "participants/mysql/mysql_resource.h"
#include "participants/postgres/postgres_resource.h"

namespace txc {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct CommandLine {
  std::optional<std::string> config_file;
  bool help = false;
  bool version = false;
  bool print_config = false;
};

std::string Usage() {
  return "usage: txcoord [--config FILE] [--print-config] [--help] [--version]\n"
         "\n"
         "  --config FILE   read the configuration from FILE (YAML); TXC_* variables override it\n"
         "  --print-config  print the effective configuration (secrets redacted) and exit\n"
         "  --help          print this help, with every configuration key, and exit\n"
         "  --version       print the version and exit\n"
         "\n"
         "Signals: SIGTERM or SIGINT stop txcoord gracefully (exit code 0).\n";
}

Result<CommandLine> ParseCommandLine(int argc, char** argv) {
  CommandLine line;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      line.help = true;
    } else if (arg == "--version") {
      line.version = true;
    } else if (arg == "--print-config") {
      line.print_config = true;
    } else if (arg == "--config") {
      if (i + 1 >= argc) return Status::InvalidArgument("--config needs a file name");
      line.config_file = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      line.config_file = arg.substr(std::strlen("--config="));
    } else {
      return Status::InvalidArgument("unknown argument \"" + arg + "\"");
    }
  }
  if (line.config_file.has_value() && line.config_file->empty()) {
    return Status::InvalidArgument("--config needs a file name");
  }
  return line;
}

// The configured databases, each checked once: a database that cannot take part in 2PC
// (max_prepared_transactions = 0) stops start-up with the fix in the message; one that cannot be
// reached yet is reported and retried by every call that needs it.
Result<std::vector<std::unique_ptr<participants::database::DatabaseResource>>> OpenResources(
    const config::Config& config, server::StructuredLogger& logger) {
  std::vector<std::unique_ptr<participants::database::DatabaseResource>> resources;
  for (const config::ResourceConfig& resource : config.resources) {
    std::unique_ptr<participants::database::DatabaseResource> opened;
    if (resource.kind == "postgres") {
      auto created = participants::postgres::PostgresResource::Create(
          {.name = resource.name, .dsn = resource.dsn, .node_id = config.node_id});
      if (!created.ok()) return created.status();
      opened = std::move(created).value();
    } else {
      auto created = participants::mysql::MysqlResource::Create(
          {.name = resource.name, .dsn = resource.dsn, .node_id = config.node_id});
      if (!created.ok()) return created.status();
      opened = std::move(created).value();
    }
    Status ready = opened->CheckReady(std::chrono::seconds(10));
    if (ready.code() == StatusCode::kFailedPrecondition) return ready;
    if (!ready.ok()) {
      logger.Warn("resource_unreachable",
                  {{"resource", resource.name}, {"error", ready.message()}});
    } else {
      logger.Info("resource_ready", {{"resource", resource.name}, {"kind", resource.kind}});
    }
    resources.push_back(std::move(opened));
  }
  return resources;
}

// A gid for submissions without one: 20 random hex digits (80 bits), unique enough that two
// coordinators sharing databases never meet.
std::string GenerateGid() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  char text[24];
  std::snprintf(text, sizeof(text), "%016llx%04x", static_cast<unsigned long long>(random()),
                static_cast<unsigned>(random() & 0xffff));
  return text;
}

// SIGTERM and SIGINT are blocked in every thread (so the threads started later inherit the mask)
// and taken synchronously by the main thread with sigwait. SIGPIPE is ignored: a client that goes
// away mid-response must not kill the coordinator.
sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

int Run(int argc, char** argv) {
  server::StructuredLogger logger(std::cerr);

  Result<CommandLine> line = ParseCommandLine(argc, argv);
  if (!line.ok()) {
    std::cerr << "txcoord: " << line.status().message() << "\n\n" << Usage();
    return kExitUsage;
  }
  if (line->help) {
    std::cout << Usage() << "\n" << config::ConfigHelpText();
    return kExitOk;
  }
  if (line->version) {
    std::cout << "txcoord " << TXC_VERSION << "\n";
    return kExitOk;
  }

  Result<config::LoadedConfig> loaded =
      config::LoadConfig(line->config_file, config::ProcessEnvironment());
  if (!loaded.ok()) {
    logger.Error("config_invalid", {{"error", loaded.status().message()}});
    return kExitUsage;
  }
  const config::Config& config = loaded->config;
  if (config.log_format == "json") logger.SetFormat(server::LogFormat::kJson);
  for (const std::string& warning : loaded->warnings) {
    logger.Warn("config_warning", {{"warning", warning}});
  }
  if (line->print_config) {
    std::cout << config::RenderEffectiveConfig(config);
    return kExitOk;
  }
  if (config.log.kind != "file") {
    logger.Error("config_invalid",
                 {{"error", "log.kind: \"" + config.log.kind +
                                "\" is not supported by this build yet (the postgres log is "
                                "future work); use kind: file"}});
    return kExitUsage;
  }

  const sigset_t stop_signals = BlockStopSignals();
  logger.Info("starting", {{"version", TXC_VERSION},
                           {"node_id", config.node_id},
                           {"listen", config.listen.ToString()},
                           {"log_kind", config.log.kind},
                           {"log_dir", config.log.dir},
                           {"resources", std::to_string(config.resources.size())}});

  std::vector<std::string> resource_names;
  for (const config::ResourceConfig& resource : config.resources) {
    resource_names.push_back(resource.name);
  }
  metrics::CoordinatorMetrics metrics(resource_names, config.node_id);

  log::FileLogOptions log_options;
  log_options.dir = config.log.dir;
  log_options.observer = &metrics;
  log_options.retention_finished_ms = static_cast<int64_t>(config.retention.finished_ms);
  log_options.segment_bytes_max = config.log.segment_bytes_max;
  log_options.compact_after_bytes = config.log.compact_after_bytes;
  log::RecoveredLog recovered;
  Result<std::unique_ptr<log::FileLog>> opened = log::FileLog::Open(log_options, &recovered);
  if (!opened.ok()) {
    logger.Error("log_open_failed",
                 {{"dir", config.log.dir}, {"error", opened.status().ToString()}});
    return kExitFailure;
  }
  std::unique_ptr<log::FileLog> decision_log = std::move(opened).value();
  logger.Info("log_opened", {{"dir", config.log.dir},
                             {"unfinished", std::to_string(recovered.unfinished.size())},
                             {"finished_retained", std::to_string(recovered.finished.size())},
                             {"torn_tail_bytes", std::to_string(recovered.torn_tail_bytes)}});

  auto resources = OpenResources(config, logger);
  if (!resources.ok()) {
    logger.Error("resource_not_ready", {{"error", resources.status().message()}});
    decision_log->Close();
    return kExitFailure;
  }
  auto allowlist = participants::http::TargetAllowlist::Create(config.participants.allow);
  if (!allowlist.ok()) {
    logger.Error("config_invalid", {{"error", allowlist.status().message()}});
    decision_log->Close();
    return kExitUsage;
  }
  participants::http::HttpClientPool http_pool;
  api::RequestContext request_context;
  request_context.limits.max_branches = config.limits.max_branches;
  request_context.check_url = [&allowlist](const participants::http::HttpUrl& url,
                                           std::string_view field) {
    return allowlist->Check(url, field);
  };
  request_context.resource_kind = [&config](const std::string& name) -> std::optional<std::string> {
    for (const auto& resource : config.resources) {
      if (resource.name == name) return resource.kind;
    }
    return std::nullopt;
  };
  request_context.generate_gid = GenerateGid;
  api::PlanResources plan_resources;
  plan_resources.http_pool = &http_pool;
  std::vector<participants::database::DatabaseResource*> databases;
  for (const auto& resource : *resources) {
    plan_resources.databases[resource->name()] = resource.get();
    databases.push_back(resource.get());
  }
  const api::PlanBuilder plans(request_context, plan_resources);

  metrics::EngineMetrics engine_metrics(metrics);
  engine::EngineOptions engine_options;
  engine_options.max_in_flight = config.limits.max_in_flight;
  engine_options.stuck_after_ms = static_cast<int64_t>(config.stuck_after_ms);
  engine_options.retention_finished_ms = static_cast<int64_t>(config.retention.finished_ms);
  // The engine's events (stuck transactions, operator actions, stalls) go to the log with
  // their gid.
  engine_options.log = [&logger](const char* level, const char* event,
                                 const engine::EngineOptions::LogFields& fields) {
    const std::string_view name = level;
    logger.Log(name == "error"  ? server::LogLevel::kError
               : name == "warn" ? server::LogLevel::kWarn
                                : server::LogLevel::kInfo,
               event, fields);
  };
  engine::Engine engine(engine_options, *decision_log, SystemClock(), &engine_metrics);

  server::Readiness readiness(decision_log.get());
  server::Router router;
  std::atomic<const server::HttpServer*> serving{nullptr};
  server::OperationalContext context;
  context.node_id = config.node_id;
  context.log = decision_log.get();
  context.readiness = &readiness;
  context.metrics = &metrics;
  context.before_scrape = [&metrics, &serving] {
    const server::HttpServer* http = serving.load();
    if (http != nullptr) metrics.SyncRefusedConnections(http->refused_connections());
  };
  server::AddOperationalRoutes(router, std::move(context));
  api::TransactionRoutesContext routes;
  routes.engine = &engine;
  routes.plans = &plans;
  routes.ready = [&readiness] { return readiness.Check().ok(); };
  routes.count_rejection = [&metrics](const std::string& reason) {
    metrics.requests_rejected().Add({{"reason", reason}}).Increment();
  };
  api::AddTransactionRoutes(router, std::move(routes));
  ui::AddUiRoutes(router);  // the operator page; open under access control, its calls are not
  // Access control (auth.tokens_file): API tokens with roles, checked before routing
  // (coordinator/server/access_control.h). It must outlive the HTTP server, as the router does.
  std::optional<server::AccessControl> access_control;
  if (!config.auth.tokens_file.empty()) {
    Result<server::TokenTable> tokens = server::TokenTable::Load(config.auth.tokens_file);
    if (!tokens.ok()) {
      logger.Error("config_invalid", {{"error", "auth.tokens_file: " + tokens.status().message()}});
      decision_log->Close();
      return kExitUsage;
    }
    server::AccessControlOptions access_options;
    for (const char* reason : {"unauthorized", "forbidden"}) {
      metrics.requests_rejected().Add({{"reason", reason}});  // every series from the start
    }
    access_options.count_rejection = [&metrics](const std::string& reason) {
      metrics.requests_rejected().Add({{"reason", reason}}).Increment();
    };
    const size_t token_count = tokens->tokens().size();
    access_control.emplace(std::move(tokens).value(), std::move(access_options));
    router.SetGuard(access_control->AsGuard());
    logger.Info("access_control_on", {{"tokens_file", config.auth.tokens_file},
                                      {"tokens", std::to_string(token_count)}});
  }

  server::HttpServerOptions http_options;
  http_options.host = config.listen.host;
  http_options.port = config.listen.port;
  http_options.threads = static_cast<int>(config.http.threads);
  http_options.queue_max = static_cast<int>(config.http.queue_max);
  http_options.keep_alive_timeout_ms = static_cast<int64_t>(config.http.keep_alive_timeout_ms);
  http_options.request_timeout_ms = static_cast<int64_t>(config.http.request_timeout_ms);
  http_options.max_body_bytes = config.limits.max_body_bytes;
  Result<std::unique_ptr<server::HttpServer>> started =
      server::HttpServer::Start(http_options, &router, &logger);
  if (!started.ok()) {
    logger.Error("listen_failed", {{"error", started.status().ToString()}});
    decision_log->Close();
    return kExitFailure;
  }
  std::unique_ptr<server::HttpServer> http = std::move(started).value();
  serving.store(http.get());
  config::ListenAddress bound = config.listen;
  bound.port = http->port();
  logger.Info("listening", {{"listen", bound.ToString()}, {"port", std::to_string(bound.port)}});

  // Recovery, before ready: every unfinished transaction resumed (its decision carried out, or
  // presumed abort), then the databases swept for prepared branches nobody owns.
  Status resumed = engine.Recover(
      recovered,
      [&plans, &engine](const std::string& gid, const std::vector<log::LogRecord>& records) {
        return plans.Rebuild(gid, records, engine.MonotonicMs(), engine.NowUnixMs());
      });
  if (!resumed.ok()) {
    logger.Error("recovery_failed", {{"error", resumed.ToString()}});
    http->Stop(std::chrono::milliseconds(0));
    const bool calls_ended = engine.Stop(std::chrono::milliseconds(1000));
    decision_log->Close();
    if (!calls_ended) std::_Exit(kExitFailure);
    return kExitFailure;
  }
  logger.Info("recovery_resumed", {{"transactions", std::to_string(recovered.unfinished.size())}});
  recovery::InDoubtScanner scanner(
      databases,
      {.is_active = [&engine](const std::string& gid) { return engine.IsActive(gid); },
       .is_commit_decided =
           [&engine](const std::string& gid) { return engine.IsCommitDecided(gid); }},
      [&metrics](const std::string& resource, const std::string& action) {
        metrics.indoubt_resolved().Add({{"resource", resource}, {"action", action}}).Increment();
      });
  const recovery::InDoubtScanner::Pass first_scan = scanner.ScanOnce();
  for (const auto& error : first_scan.errors) logger.Warn("indoubt_scan", {{"error", error}});
  logger.Info("indoubt_scanned", {{"committed", std::to_string(first_scan.committed)},
                                  {"rolled_back", std::to_string(first_scan.rolled_back)}});
  scanner.Start();
  readiness.MarkRecoveryFinished();
  logger.Info("ready", {{"node_id", config.node_id}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  logger.Info("stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
                           {"grace_ms", std::to_string(config.shutdown_grace_ms)}});

  readiness.MarkDraining();
  const bool all_finished =
      http->Stop(std::chrono::milliseconds(static_cast<int64_t>(config.shutdown_grace_ms)));
  serving.store(nullptr);
  if (!all_finished) {
    logger.Warn("requests_cut", {{"why", "still running when shutdown_grace_ms ran out"}});
  }
  scanner.Stop();
  const bool calls_ended =
      engine.Stop(std::chrono::milliseconds(static_cast<int64_t>(config.shutdown_grace_ms)));
  decision_log->Close();
  if (!calls_ended) {
    // A participant call is still running past the grace period. Its result is not needed:
    // whatever it did is settled by recovery at the next start. End the process here, before the
    // engine those calls report to is destroyed.
    logger.Warn("calls_abandoned", {{"why",
                                     "participant calls still running after shutdown_grace_ms; "
                                     "the next start recovers their transactions"}});
    logger.Info("stopped");
    std::cerr.flush();
    std::_Exit(kExitOk);
  }
  logger.Info("stopped");
  return kExitOk;
}

}  // namespace
}  // namespace txc

int main(int argc, char** argv) {
  try {
    return txc::Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "txcoord: fatal: " << e.what() << "\n";
    return 1;
  }
}
