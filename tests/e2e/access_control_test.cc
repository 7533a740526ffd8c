// Access control through the real txcoord (README "Access control", API.md 401/403): txcoord runs
// as a process with auth.tokens_file naming a file of API tokens; 2pc HTTP participants are
// TestHttpServer instances inside this process. Checks who gets what (401 without or with a wrong
// token, 403 for a read token on an operator verb, the operate token's retry and abort working),
// that /healthz, /readyz and /metrics stay open, that refusals are counted, that a token file
// others may read or with a malformed line stops start-up with exit code 2 naming the file and
// the line, and that no token ever reaches txcoord's output.
#include <Poco/Net/HTTPClientSession.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kOperateToken[] = "op-4c1d9a7e2b6f8053c9e1a4d7b2f6";
constexpr char kReadToken[] = "rd-8e3b5f1a9c7d2e6b4a0f8c3d5e1b";
constexpr char kWrongToken[] = "no-7f3a9c1e5b2d8f4a6c0e2b9d7f1a";

std::map<std::string, std::string> Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

class AccessControlTest : public ApiTest {
 protected:
  // A token file in the scratch directory with `mode`; its path.
  std::string WriteTokens(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = scratch_.File(name);
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string GoodTokens() {
    return WriteTokens("tokens", std::string("# role  name   token\n") + "operate alice  " +
                                     kOperateToken + "\n" + "read    grafana " + kReadToken + "\n");
  }

  // The harness's own requests (WaitFinal, Metrics...) go with the read token.
  void StartWithTokens() {
    StartTxcoord({{"TXC_AUTH_TOKENS_FILE", GoodTokens()}});
    txc().SetHeaders(Bearer(kReadToken));
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "") {
    return Exchange(txc().port(), method, path, body, 60s,
                    token.empty() ? std::map<std::string, std::string>{} : Bearer(token));
  }

  // Neither stream of txcoord holds any token, the wrong one included.
  void ExpectNoTokenInOutput() {
    for (const std::string& output : {txc().Stderr(), txc().Stdout()}) {
      for (const char* token : {kOperateToken, kReadToken, kWrongToken}) {
        EXPECT_THAT(output, Not(HasSubstr(token)));
      }
      EXPECT_THAT(output, Not(HasSubstr("Bearer")));
    }
  }

  struct Finished {
    std::optional<int> exit_code;
    std::string out;
    std::string err;
  };

  // txcoord with `tokens_file`, run until it exits by itself.
  Finished RunToExit(const std::string& name, const std::string& tokens_file) {
    ChildProcess::Options options;
    options.program = TXCOORD_PATH;
    options.environment = CurrentEnvironment();
    for (auto it = options.environment.begin(); it != options.environment.end();) {
      it = it->first.rfind("TXC_", 0) == 0 ? options.environment.erase(it) : std::next(it);
    }
    options.environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
    options.environment["TXC_LOG_DIR"] = scratch_.File(name + "-data");
    options.environment["TXC_NODE_ID"] = node_id_;
    options.environment["TXC_AUTH_TOKENS_FILE"] = tokens_file;
    options.stdout_path = scratch_.File(name + ".stdout");
    options.stderr_path = scratch_.File(name + ".stderr");
    ChildProcess process(options);
    Finished finished;
    finished.exit_code = process.WaitForExit(kExitTimeout);
    finished.out = ReadFileOrEmpty(options.stdout_path);
    finished.err = ReadFileOrEmpty(options.stderr_path);
    return finished;
  }
};

TEST_F(AccessControlTest, WithoutATokenOrWithAWrongOneTheApiAnswers401) {
  StartWithTokens();
  Participant shop("shop", &journal_);
  const std::string submission = Spec{"acl-none-1", {shop.BranchJson("order")}}.ToJson();

  for (const std::string& token : {std::string(), std::string(kWrongToken)}) {
    SCOPED_TRACE(token.empty() ? "no token" : "a wrong token");
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/v1/transactions"},
             {"GET", "/v1/transactions/acl-none-1"},
             {"GET", "/v1/info"},
             {"POST", "/v1/transactions/acl-none-1/retry"},
             {"POST", "/v1/transactions/acl-none-1/abort"}}) {
      const Reply reply = Call(method, path, token);
      EXPECT_EQ(reply.status, 401) << method << " " << path << ": " << reply;
      EXPECT_EQ(reply.ErrorCode(), "unauthorized") << reply;
      EXPECT_THAT(reply.Header("WWW-Authenticate"), StartsWith("Bearer")) << reply;
      if (!token.empty()) {
        EXPECT_THAT(reply.body, Not(HasSubstr(token)));
      }
    }
    const Reply submitted = Call("POST", "/v1/transactions", token, submission);
    EXPECT_EQ(submitted.status, 401) << submitted;
  }
  // A token that is not Bearer.
  const Reply basic = Exchange(txc().port(), "GET", "/v1/transactions", "", 60s,
                               {{"Authorization", std::string("Basic ") + kOperateToken}});
  EXPECT_EQ(basic.status, 401) << basic;
  EXPECT_THAT(basic.body, Not(HasSubstr(kOperateToken)));

  EXPECT_EQ(shop.TotalRequests(), 0u) << "nothing was started";
  EXPECT_EQ(Call("GET", "/v1/transactions/acl-none-1", kReadToken).status, 404);
  // 5 verbs + 1 submission, twice, and the Basic one.
  EXPECT_EQ(
      MetricValue(txc().Metrics(), "txc_requests_rejected_total", {{"reason", "unauthorized"}}),
      13);
  ExpectNoTokenInOutput();
}

TEST_F(AccessControlTest, HealthReadinessAndMetricsStayOpen) {
  StartWithTokens();
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    const Reply reply = Call("GET", path, "");
    EXPECT_EQ(reply.status, 200) << path << ": " << reply;
  }
  // The operator page is static and open; its calls to the API carry a token like any other.
  EXPECT_NE(Call("GET", "/ui/", "").status, 401);
  const std::string metrics = txc().Metrics();
  // Both refusal series exist from the start, at zero.
  EXPECT_THAT(metrics, HasSubstr("txc_requests_rejected_total{reason=\"unauthorized\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("txc_requests_rejected_total{reason=\"forbidden\"} 0"));
  EXPECT_THAT(txc().Stderr(), HasSubstr("event=access_control_on"));
}

TEST_F(AccessControlTest, AReadTokenReadsButGets403OnEveryOperatorVerbAndOnSubmit) {
  StartWithTokens();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  const auto gate = bank.Block("prepare");
  Spec spec{"acl-read-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;
  const Reply submitted = Call("POST", "/v1/transactions", kOperateToken, spec.ToJson());
  ASSERT_EQ(submitted.status, 202) << submitted;

  const Reply listed = Call("GET", "/v1/transactions", kReadToken);
  EXPECT_EQ(listed.status, 200) << listed;
  EXPECT_THAT(listed.body, HasSubstr("\"acl-read-1\""));
  const Reply document = Call("GET", "/v1/transactions/acl-read-1", kReadToken);
  EXPECT_EQ(document.status, 200) << document;
  EXPECT_EQ(Text(document.json(), "gid"), "acl-read-1");
  EXPECT_EQ(Call("GET", "/v1/info", kReadToken).status, 200);

  for (const char* verb : {"retry", "abort", "resolve"}) {
    const Reply refused =
        Call("POST", std::string("/v1/transactions/acl-read-1/") + verb, kReadToken,
             R"({"branch":"payment","outcome":"aborted","reason":"x"})");
    EXPECT_EQ(refused.status, 403) << verb << ": " << refused;
    EXPECT_EQ(refused.ErrorCode(), "forbidden") << refused;
    EXPECT_THAT(refused.ErrorMessage(), HasSubstr("\"grafana\" has the read role")) << refused;
    EXPECT_THAT(refused.body, Not(HasSubstr(kReadToken)));
  }
  Spec other{"acl-read-2", {shop.BranchJson("order")}};
  const Reply read_submit = Call("POST", "/v1/transactions", kReadToken, other.ToJson());
  EXPECT_EQ(read_submit.status, 403) << read_submit;
  EXPECT_EQ(Call("GET", "/v1/transactions/acl-read-2", kReadToken).status, 404);

  // The refused abort changed nothing: the transaction still waits for the bank's vote.
  gate->Open();
  const Json final_document = txc().WaitForDocument(
      "acl-read-1", [](const Json& d) { return !IsNull(d, "outcome"); }, "became final");
  ASSERT_TRUE(final_document);
  EXPECT_EQ(Text(final_document, "outcome"), "committed");
  EXPECT_EQ(MetricValue(txc().Metrics(), "txc_requests_rejected_total", {{"reason", "forbidden"}}),
            4);
  ExpectNoTokenInOutput();
}

TEST_F(AccessControlTest, AnOperateTokenAbortsBeforeTheDecisionAndRetriesAStuckCommit) {
  StartWithTokens();
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);

  // Abort: the bank's prepare is held, so the transaction waits before its decision.
  const auto gate = bank.Block("prepare");
  Spec held{"acl-abort-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  held.wait = false;
  ASSERT_EQ(Call("POST", "/v1/transactions", kOperateToken, held.ToJson()).status, 202);
  ASSERT_TRUE(WaitUntil([&] { return bank.Count("acl-abort-1", "prepare") == 1; }, 10s));
  const Reply aborted = Call("POST", "/v1/transactions/acl-abort-1/abort", kOperateToken);
  ASSERT_EQ(aborted.status, 200) << aborted;
  EXPECT_THAT(Text(aborted.json(), "state"), ::testing::AnyOf("aborting", "aborted"));
  gate->Open();
  const Json aborted_document = txc().WaitFinal("acl-abort-1");
  ASSERT_TRUE(aborted_document);
  EXPECT_EQ(Text(aborted_document, "outcome"), "aborted");

  // Retry: the bank's commit answers 404 until it is fixed, so the branch needs an operator.
  std::atomic<bool> fixed{false};
  bank.Respond("prepare", 200);
  bank.On("commit", [&](const CapturedRequest&, int) {
    Answer answer;
    answer.status = fixed ? 200 : 404;
    return answer;
  });
  Spec stuck{"acl-retry-1", {shop.BranchJson("order"), bank.BranchJson("payment")}};
  stuck.wait = false;
  stuck.retry_max_ms = 120'000;  // the longest backoff is far beyond this test
  ASSERT_EQ(Call("POST", "/v1/transactions", kOperateToken, stuck.ToJson()).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "acl-retry-1", [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
      "waited for an operator"));
  EXPECT_EQ(Call("POST", "/v1/transactions/acl-retry-1/retry", kReadToken).status, 403);
  fixed = true;
  const Reply retried = Call("POST", "/v1/transactions/acl-retry-1/retry", kOperateToken);
  ASSERT_EQ(retried.status, 200) << retried;
  const Json committed = txc().WaitFinal("acl-retry-1");
  ASSERT_TRUE(committed);
  EXPECT_EQ(Text(committed, "outcome"), "committed");

  // After the decision abort is a 409 for an operator too: the token got it past the guard.
  const Reply too_late = Call("POST", "/v1/transactions/acl-retry-1/abort", kOperateToken);
  EXPECT_EQ(too_late.status, 409) << too_late;
  ExpectNoTokenInOutput();
}

TEST_F(AccessControlTest, ATokenFileOthersMayReadStopsStartUpWithExitCode2) {
  const std::string path =
      WriteTokens("open-tokens", std::string("operate alice ") + kOperateToken + "\n", 0644);
  const Finished run = RunToExit("world-readable", path);
  ASSERT_TRUE(run.exit_code.has_value()) << "txcoord kept running";
  EXPECT_EQ(*run.exit_code, 2) << run.err;
  EXPECT_THAT(run.err, HasSubstr("auth.tokens_file: " + path + ": has mode 0644"));
  EXPECT_THAT(run.err, HasSubstr("chmod 600"));
  EXPECT_THAT(run.err + run.out, Not(HasSubstr(kOperateToken)));
}

TEST_F(AccessControlTest, AMalformedTokenFileStopsStartUpNamingTheLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {std::string("# tokens\noperate alice ") + kOperateToken + "\nread grafana\n",
       " line 3: expected `<role> <name> <token>`"},
      // The logger's quoting escapes the quotes around the role.
      {std::string("admin alice ") + kOperateToken + "\n", R"( line 1: unknown role \"admin\")"},
      {std::string("operate alice ") + kOperateToken + "\nread alice " + kReadToken + "\n",
       " line 2: the name is already given on line 1"},
      {std::string("operate alice ") + kOperateToken + "\nread bob " + kOperateToken + "\n",
       " line 2: the same token as on line 1"},
      {"operate alice too-short\n", " line 1: the token (third field) has 9 characters"},
      // The fields in the wrong order: the token is where the role should be, and is not shown.
      {std::string(kOperateToken) + " alice operate\n", " line 1: unknown role"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string path = WriteTokens("bad-tokens" + std::to_string(++n), c.text);
    const Finished run = RunToExit("malformed" + std::to_string(n), path);
    ASSERT_TRUE(run.exit_code.has_value()) << "txcoord kept running";
    EXPECT_EQ(*run.exit_code, 2) << run.err;
    EXPECT_THAT(run.err, HasSubstr("event=config_invalid"));
    EXPECT_THAT(run.err, HasSubstr("auth.tokens_file: " + path + c.message));
    for (const char* token : {kOperateToken, kReadToken, "too-short"}) {
      EXPECT_THAT(run.err + run.out, Not(HasSubstr(token)));
    }
  }
  const Finished missing = RunToExit("missing", scratch_.File("no-such-tokens"));
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("no-such-tokens: cannot be opened"));
}

TEST_F(AccessControlTest, HelpListsTheKeyAndItsVariable) {
  ChildProcess::Options options;
  options.program = TXCOORD_PATH;
  options.args = {"--help"};
  options.environment = CurrentEnvironment();
  options.stdout_path = scratch_.File("help.stdout");
  options.stderr_path = scratch_.File("help.stderr");
  ChildProcess process(options);
  EXPECT_EQ(process.WaitForExit(kExitTimeout), 0);
  const std::string help = ReadFileOrEmpty(options.stdout_path);
  EXPECT_THAT(help, HasSubstr("  auth.tokens_file\n"));
  EXPECT_THAT(help, HasSubstr("TXC_AUTH_TOKENS_FILE"));
}

}  // namespace
}  // namespace txc::testing
