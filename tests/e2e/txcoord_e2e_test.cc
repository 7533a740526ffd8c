// txcoord as a process: start-up, the operational endpoints over real HTTP, error bodies, body
// limits, graceful stop and restart, the directory lock, configuration errors and --help.
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "coordinator/config/config.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr milliseconds kStartTimeout{15'000};
constexpr milliseconds kExitTimeout{15'000};

struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse response;
};

std::unique_ptr<Poco::Net::HTTPClientSession> Connect(uint16_t port) {
  auto session = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", port);
  session->setTimeout(Poco::Timespan(10, 0));
  session->setKeepAlive(true);
  return session;
}

Reply Receive(Poco::Net::HTTPClientSession& session) {
  Reply reply;
  std::istream& in = session.receiveResponse(reply.response);
  Poco::StreamCopier::copyToString(in, reply.body);
  reply.status = reply.response.getStatus();
  return reply;
}

Reply Send(Poco::Net::HTTPClientSession& session, const std::string& method,
           const std::string& path) {
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (method != "GET") request.setContentLength(0);
  session.sendRequest(request);
  return Receive(session);
}

Reply Get(uint16_t port, const std::string& path) {
  auto session = Connect(port);
  return Send(*session, "GET", path);
}

Poco::JSON::Object::Ptr ParseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

// One txcoord process on a free loopback port with its own data directory (by default).
class Txcoord {
 public:
  struct Setup {
    std::string data_dir;
    std::map<std::string, std::string> env;  // TXC_* settings beyond listen and log.dir
    std::vector<std::string> args;
    std::optional<uint16_t> port;
  };

  Txcoord(const TempDir& scratch, const std::string& name, Setup setup)
      : port_(setup.port ? *setup.port : FreeLoopbackPort()) {
    ChildProcess::Options options;
    options.program = TXCOORD_PATH;
    options.args = setup.args;
    options.environment = CurrentEnvironment();
    // The test decides the whole configuration: none of the runner's TXC_* variables leak in.
    for (auto it = options.environment.begin(); it != options.environment.end();) {
      it = it->first.rfind("TXC_", 0) == 0 ? options.environment.erase(it) : std::next(it);
    }
    options.environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    if (!setup.data_dir.empty()) options.environment["TXC_LOG_DIR"] = setup.data_dir;
    options.environment["TXC_SHUTDOWN_GRACE_MS"] = "5000";
    for (const auto& [key, value] : setup.env) options.environment[key] = value;
    options.stdout_path = scratch.File(name + ".stdout");
    options.stderr_path = scratch.File(name + ".stderr");
    process_ = std::make_unique<ChildProcess>(options);
  }

  uint16_t port() const { return port_; }
  ChildProcess& process() { return *process_; }
  std::string Stderr() const { return ReadFileOrEmpty(process_->stderr_path()); }
  std::string Stdout() const { return ReadFileOrEmpty(process_->stdout_path()); }

  // Polls GET `path` until it answers `status`; fails early when the process ends.
  ::testing::AssertionResult WaitFor(const std::string& path, int status) {
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    std::string last = "no answer";
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_->Running()) {
        return ::testing::AssertionFailure()
               << "txcoord exited before " << path << " answered " << status << "; stderr:\n"
               << Stderr();
      }
      try {
        auto session = Connect(port_);
        session->setTimeout(Poco::Timespan(1, 0));
        Reply reply = Send(*session, "GET", path);
        if (reply.status == status) return ::testing::AssertionSuccess();
        last = std::to_string(reply.status) + " " + reply.body;
      } catch (const Poco::Exception& e) {
        last = e.displayText();  // not listening yet
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return ::testing::AssertionFailure()
           << path << " never answered " << status << " (last: " << last << "); stderr:\n"
           << Stderr();
  }

  // SIGTERM, then the exit code (nullopt if it did not exit in time).
  std::optional<int> Terminate() {
    process_->Signal(SIGTERM);
    return process_->WaitForExit(kExitTimeout);
  }

 private:
  uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

class TxcoordE2eTest : public ::testing::Test {
 protected:
  std::string DataDir() const { return scratch_.File("data"); }

  // Runs txcoord to completion (for commands that exit by themselves).
  struct Finished {
    std::optional<int> exit_code;
    std::string out;
    std::string err;
  };
  Finished RunToExit(const std::string& name, Txcoord::Setup setup) {
    Txcoord txcoord(scratch_, name, std::move(setup));
    Finished finished;
    finished.exit_code = txcoord.process().WaitForExit(kExitTimeout);
    finished.out = txcoord.Stdout();
    finished.err = txcoord.Stderr();
    return finished;
  }

  TempDir scratch_;
};

TEST_F(TxcoordE2eTest, ServesHealthReadinessInfoAndMetrics) {
  Txcoord txcoord(scratch_, "main",
                  {DataDir(),
                   {{"TXC_NODE_ID", "e2e-node"},
                    {"TXC_RESOURCES", "[{name: orders, kind: postgres, dsn: \"host=h\"}]"}},
                   {},
                   std::nullopt});
  ASSERT_TRUE(txcoord.WaitFor("/healthz", 200));
  ASSERT_TRUE(txcoord.WaitFor("/readyz", 200));

  Reply health = Get(txcoord.port(), "/healthz");
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  EXPECT_EQ(health.response.getContentType(), "application/json");

  Reply info = Get(txcoord.port(), "/v1/info");
  ASSERT_EQ(info.status, 200);
  auto document = ParseObject(info.body);
  EXPECT_EQ(document->getValue<std::string>("version"), TXC_VERSION);
  EXPECT_EQ(document->getValue<std::string>("node_id"), "e2e-node");
  EXPECT_EQ(document->getObject("log")->getValue<std::string>("kind"), "file");

  Reply metrics = Get(txcoord.port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.response.getContentType(), StartsWith("text/plain; version=0.0.4"));
  for (const char* name :
       {"txc_transactions_started_total", "txc_transactions_finished_total",
        "txc_transactions_in_flight", "txc_transactions_stuck", "txc_transaction_duration_seconds",
        "txc_branch_calls_total", "txc_branch_call_duration_seconds", "txc_retries_total",
        "txc_log_appends_total", "txc_log_fsync_duration_seconds", "txc_log_group_commit_records",
        "txc_recovered_transactions_total", "txc_indoubt_resolved_total",
        "txc_requests_rejected_total", "txc_log_torn_tail_bytes_total"}) {
    EXPECT_THAT(metrics.body, HasSubstr("# TYPE " + std::string(name) + " ")) << name;
  }

  // promtool (from the prometheus package) accepts the exposition as it is.
  const std::string exposition = scratch_.File("metrics.txt");
  std::ofstream(exposition) << metrics.body;
  const std::string command =
      "promtool check metrics < " + exposition + " > " + scratch_.File("promtool.out") + " 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0)
      << "promtool check metrics failed (is the prometheus package installed?):\n"
      << ReadFileOrEmpty(scratch_.File("promtool.out"));

  EXPECT_THAT(txcoord.Stderr(), HasSubstr("event=listening"));
  EXPECT_EQ(txcoord.Terminate(), 0);
}

TEST_F(TxcoordE2eTest, KeepsConnectionsAliveAndAnswersErrorsInJson) {
  Txcoord txcoord(scratch_, "main", {DataDir(), {}, {}, std::nullopt});
  ASSERT_TRUE(txcoord.WaitFor("/healthz", 200));
  auto session = Connect(txcoord.port());
  Reply missing = Send(*session, "GET", "/v1/nothing-here");
  EXPECT_EQ(missing.status, 404);
  auto error = ParseObject(missing.body)->getObject("error");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->getValue<std::string>("code"), "not_found");
  EXPECT_THAT(error->getValue<std::string>("message"), HasSubstr("/v1/nothing-here"));

  Reply wrong = Send(*session, "POST", "/healthz");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.response.get("Allow", ""), "GET");
  EXPECT_EQ(ParseObject(wrong.body)->getObject("error")->getValue<std::string>("code"),
            "method_not_allowed");

  for (int i = 0; i < 5; ++i) {
    Reply again = Send(*session, "GET", "/healthz");  // same connection throughout
    EXPECT_EQ(again.status, 200);
    EXPECT_TRUE(again.response.getKeepAlive());
    EXPECT_EQ(again.response.getContentLength(), static_cast<std::streamsize>(again.body.size()));
  }
  EXPECT_EQ(txcoord.Terminate(), 0);
}

TEST_F(TxcoordE2eTest, RefusesOversizedBodiesWith413) {
  Txcoord txcoord(scratch_, "main",
                  {DataDir(), {{"TXC_LIMITS_MAX_BODY_BYTES", "1024"}}, {}, std::nullopt});
  ASSERT_TRUE(txcoord.WaitFor("/healthz", 200));
  {
    auto session = Connect(txcoord.port());
    Poco::Net::HTTPRequest request("POST", "/v1/transactions", Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentLength(50'000'000);  // announced; the server must not wait for it
    session->sendRequest(request);
    Reply reply = Receive(*session);
    EXPECT_EQ(reply.status, 413);
    EXPECT_EQ(ParseObject(reply.body)->getObject("error")->getValue<std::string>("code"),
              "body_too_large");
    EXPECT_FALSE(reply.response.getKeepAlive());
  }
  {
    auto session = Connect(txcoord.port());
    Poco::Net::HTTPRequest request("POST", "/v1/transactions", Poco::Net::HTTPMessage::HTTP_1_1);
    request.setChunkedTransferEncoding(true);
    session->sendRequest(request) << std::string(10'000, 'z');
    Reply reply = Receive(*session);
    EXPECT_EQ(reply.status, 413);
    EXPECT_EQ(ParseObject(reply.body)->getObject("error")->getValue<std::string>("code"),
              "body_too_large");
    EXPECT_FALSE(reply.response.getKeepAlive());
  }
  ASSERT_TRUE(txcoord.WaitFor("/healthz", 200));  // still serving
  EXPECT_EQ(txcoord.Terminate(), 0);
}

TEST_F(TxcoordE2eTest, SigtermStopsCleanlyAndARestartOnTheSameDirectoryWorks) {
  {
    Txcoord first(scratch_, "first", {DataDir(), {}, {}, std::nullopt});
    ASSERT_TRUE(first.WaitFor("/readyz", 200));
    EXPECT_EQ(first.Terminate(), 0) << first.Stderr();
    EXPECT_THAT(first.Stderr(), HasSubstr("event=stopping signal=SIGTERM"));
    EXPECT_THAT(first.Stderr(), HasSubstr("event=stopped"));
  }
  Txcoord second(scratch_, "second", {DataDir(), {}, {}, std::nullopt});
  ASSERT_TRUE(second.WaitFor("/readyz", 200));
  second.process().Signal(SIGINT);
  EXPECT_EQ(second.process().WaitForExit(kExitTimeout), 0) << second.Stderr();
}

TEST_F(TxcoordE2eTest, ASecondTxcoordOnTheSameDirectoryIsRefused) {
  Txcoord first(scratch_, "first", {DataDir(), {}, {}, std::nullopt});
  ASSERT_TRUE(first.WaitFor("/readyz", 200));
  Finished second = RunToExit("second", {DataDir(), {}, {}, std::nullopt});
  ASSERT_TRUE(second.exit_code.has_value()) << "the second txcoord kept running";
  EXPECT_NE(*second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("event=log_open_failed"));
  EXPECT_THAT(second.err, HasSubstr("locked"));
  ASSERT_TRUE(first.WaitFor("/readyz", 200));  // the first one is untouched
  EXPECT_EQ(first.Terminate(), 0);
}

TEST_F(TxcoordE2eTest, AnInvalidConfigFileExitsNamingTheKey) {
  const std::string file = scratch_.File("bad.yaml");
  std::ofstream(file) << "node_id: c1\nlimits:\n  max_body_bytes: abc\n";
  Finished bad_value = RunToExit("bad_value", {DataDir(), {}, {"--config", file}, std::nullopt});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_THAT(bad_value.err,
              HasSubstr("limits.max_body_bytes: must be a positive integer, got \\\"abc\\\""));

  const std::string typo = scratch_.File("typo.yaml");
  std::ofstream(typo) << "lsiten: 127.0.0.1:1\n";
  Finished unknown = RunToExit("unknown", {DataDir(), {}, {"--config", typo}, std::nullopt});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("lsiten: unknown key"));

  Finished missing = RunToExit(
      "missing", {DataDir(), {}, {"--config", scratch_.File("absent.yaml")}, std::nullopt});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("absent.yaml"));
}

TEST_F(TxcoordE2eTest, AnInvalidEnvironmentOverrideExitsNamingTheKey) {
  Finished finished =
      RunToExit("env", {DataDir(), {{"TXC_LIMITS_MAX_BODY_BYTES", "lots"}}, {}, std::nullopt});
  EXPECT_EQ(finished.exit_code, 2);
  EXPECT_THAT(finished.err, HasSubstr("limits.max_body_bytes (from TXC_LIMITS_MAX_BODY_BYTES)"));
}

TEST_F(TxcoordE2eTest, ThePostgresLogIsRefusedAsNotSupportedYet) {
  Finished finished =
      RunToExit("pg", {DataDir(),
                       {{"TXC_LOG_KIND", "postgres"}, {"TXC_LOG_DSN", "postgresql://u@h/db"}},
                       {},
                       std::nullopt});
  EXPECT_EQ(finished.exit_code, 2);
  EXPECT_THAT(finished.err, HasSubstr("log.kind"));
  EXPECT_THAT(finished.err, HasSubstr("not supported"));
}

TEST_F(TxcoordE2eTest, HelpListsEveryKeyAndVersionPrintsTheVersion) {
  Finished help = RunToExit("help", {"", {}, {"--help"}, std::nullopt});
  EXPECT_EQ(help.exit_code, 0);
  // API.md's keys, and every key the binary knows.
  std::vector<std::string> keys = {"node_id",
                                   "listen",
                                   "log.kind",
                                   "log.dir",
                                   "log.dsn",
                                   "stuck_after_ms",
                                   "participants.allow",
                                   "resources",
                                   "limits.max_body_bytes",
                                   "limits.max_branches",
                                   "limits.max_in_flight",
                                   "retention.finished_ms"};
  for (const std::string& key : config::ConfigKeyPaths()) keys.push_back(key);
  for (const std::string& key : keys) {
    EXPECT_THAT(help.out, HasSubstr("  " + key + "\n")) << key;
    EXPECT_THAT(help.out, HasSubstr(config::EnvironmentVariableFor(key))) << key;
  }
  EXPECT_THAT(help.out, HasSubstr("--config FILE"));

  Finished version = RunToExit("version", {"", {}, {"--version"}, std::nullopt});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, std::string("txcoord ") + TXC_VERSION + "\n");

  Finished bad_flag = RunToExit("bad_flag", {"", {}, {"--frobnicate"}, std::nullopt});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_THAT(bad_flag.err, HasSubstr("--frobnicate"));
}

TEST_F(TxcoordE2eTest, SecretsNeverReachTheOutput) {
  const std::map<std::string, std::string> env = {
      {"TXC_RESOURCES",
       "[{name: pay, kind: mysql, dsn: \"mysql://txc:TopSecret1@127.0.0.1:3306/pay\"}]"}};
  Finished printed = RunToExit("print", {DataDir(), env, {"--print-config"}, std::nullopt});
  EXPECT_EQ(printed.exit_code, 0);
  EXPECT_THAT(printed.out, HasSubstr("mysql://txc:***@127.0.0.1:3306/pay"));
  EXPECT_THAT(printed.out, Not(HasSubstr("TopSecret1")));

  Txcoord running(scratch_, "running", {DataDir(), env, {}, std::nullopt});
  ASSERT_TRUE(running.WaitFor("/readyz", 200));
  EXPECT_EQ(running.Terminate(), 0);
  EXPECT_THAT(running.Stderr(), Not(HasSubstr("TopSecret1")));
  EXPECT_THAT(running.Stdout(), Not(HasSubstr("TopSecret1")));
}

}  // namespace
}  // namespace txc::testing
