// HttpBranch against a real POCO HTTP server on loopback: the headers of the participant
// contract, each status class, every way a connection can fail (refused, timeout after sending,
// closed or reset before a reply, a reply that breaks off), keep-alive reuse, recovery from a
// stale pooled connection, and the pool's bounds under concurrency.
//
// Timing: success paths use generous timeouts (10 s) so a slow machine cannot fail them; only the
// tests about timeouts use short ones, and they check an upper bound on the elapsed time, not a
// lower one.
#include "participants/http/http_participant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/common/check.h"
#include "tests/support/test_http_server.h"

namespace txc::participants::http {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::txc::testing::Answer;
using ::txc::testing::CapturedRequest;
using ::txc::testing::TestHttpServer;
using ::txc::testing::WaitUntil;

constexpr int64_t kGenerousTimeoutMs = 10'000;
const char* const kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

HttpCall MakeCall(const std::string& url, HttpCallSpec spec = {}) {
  spec.url = url;
  if (spec.timeout_ms == kCallTimeoutMsDefault) spec.timeout_ms = kGenerousTimeoutMs;
  Result<HttpCall> call = HttpCall::Create(std::move(spec), "branches[0].test");
  TXC_CHECK(call.ok(), "test call must be valid");
  return std::move(call).value();
}

CallContext Context(Op op, std::string gid = "order-1234", std::string branch = "payment") {
  CallContext context;
  context.gid = std::move(gid);
  context.branch = std::move(branch);
  context.branch_index = 1;
  context.op = op;
  context.traceparent = kTraceparent;
  context.timeout_ms = kGenerousTimeoutMs;
  return context;
}

Answer Reply(int status, std::string body = "") {
  Answer answer;
  answer.status = status;
  answer.body = std::move(body);
  return answer;
}

Answer Drop(Answer::Kind kind) {
  Answer answer;
  answer.kind = kind;
  return answer;
}

class HttpBranchTest : public ::testing::Test {
 protected:
  HttpBranch Branch(std::map<Op, HttpCall> calls) { return HttpBranch(std::move(calls), pool_); }
  HttpBranch PrepareBranch(const std::string& path = "/prepare", HttpCallSpec spec = {}) {
    return Branch({{Op::kPrepare, MakeCall(server_.Url(path), std::move(spec))}});
  }

  TestHttpServer server_;
  HttpClientPool pool_;
};

// ---- The participant contract's headers ------------------------------------------------------

TEST_F(HttpBranchTest, SendsTheFiveContractHeadersWithExactValues) {
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  ASSERT_TRUE(result.ok()) << result.reason;

  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const CapturedRequest& request = requests[0];
  EXPECT_EQ(request.Header("Txc-Gid"), "order-1234");
  EXPECT_EQ(request.Header("Txc-Branch"), "payment");
  EXPECT_EQ(request.Header("Txc-Op"), "prepare");
  EXPECT_EQ(request.Header("Idempotency-Key"), "order-1234/payment/prepare");
  EXPECT_EQ(request.Header("traceparent"), kTraceparent);
  for (const char* name : {"Txc-Gid", "Txc-Branch", "Txc-Op", "Idempotency-Key", "traceparent"}) {
    EXPECT_EQ(request.HeaderCount(name), 1u) << name;
  }
  EXPECT_EQ(request.Header("Host"), "127.0.0.1:" + std::to_string(server_.port()));
}

TEST_F(HttpBranchTest, TxcOpAndIdempotencyKeyFollowTheOperation) {
  const std::map<Op, const char*> names = {{Op::kPrepare, "prepare"},
                                           {Op::kCommit, "commit"},
                                           {Op::kAbort, "abort"},
                                           {Op::kCanCommit, "can_commit"},
                                           {Op::kPreCommit, "pre_commit"},
                                           {Op::kDoCommit, "do_commit"},
                                           {Op::kTry, "try"},
                                           {Op::kConfirm, "confirm"},
                                           {Op::kCancel, "cancel"},
                                           {Op::kAction, "action"},
                                           {Op::kCompensate, "compensate"}};
  std::map<Op, HttpCall> calls;
  for (const auto& [op, name] : names) {
    calls.emplace(op, MakeCall(server_.Url("/" + std::string(name))));
  }
  HttpBranch branch = Branch(std::move(calls));
  for (const auto& [op, name] : names) {
    ASSERT_TRUE(branch.Call(Context(op, "g.1_x-2", "b-9")).ok()) << name;
  }
  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), names.size());
  size_t i = 0;
  for (const auto& [op, name] : names) {
    EXPECT_EQ(requests[i].uri, "/" + std::string(name));
    EXPECT_EQ(requests[i].Header("Txc-Op"), name);
    EXPECT_EQ(requests[i].Header("Idempotency-Key"), "g.1_x-2/b-9/" + std::string(name));
    ++i;
  }
}

TEST_F(HttpBranchTest, GeneratesAValidTraceparentWhenTheContextHasNoneOrABadOne) {
  HttpBranch branch = PrepareBranch();
  CallContext context = Context(Op::kPrepare);
  context.traceparent = "";
  ASSERT_TRUE(branch.Call(context).ok());
  context.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";  // zero id
  ASSERT_TRUE(branch.Call(context).ok());
  context.traceparent = "garbage\r\nX-Injected: 1";
  ASSERT_TRUE(branch.Call(context).ok());

  // 00-<32 lowercase hex>-<16 lowercase hex>-01, checked apart from IsValidTraceparent.
  const auto well_formed = [](const std::string& value) {
    if (value.size() != 55 || !value.starts_with("00-") || !value.ends_with("-01")) return false;
    for (size_t i = 3; i < 52; ++i) {
      const bool hex = (value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'f');
      if (i == 35 ? value[i] != '-' : !hex) return false;
    }
    return true;
  };
  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const CapturedRequest& request : requests) {
    const std::string traceparent = request.Header("traceparent");
    EXPECT_TRUE(well_formed(traceparent)) << traceparent;
    EXPECT_TRUE(IsValidTraceparent(traceparent)) << traceparent;
    EXPECT_EQ(request.HeaderCount("X-Injected"), 0u);
  }
  EXPECT_NE(requests[0].Header("traceparent"), requests[1].Header("traceparent"));
}

TEST(TraceparentTest, Validation) {
  EXPECT_TRUE(IsValidTraceparent(kTraceparent));
  EXPECT_TRUE(IsValidTraceparent(NewTraceparent()));
  EXPECT_FALSE(IsValidTraceparent(""));
  EXPECT_FALSE(IsValidTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"));
  EXPECT_FALSE(IsValidTraceparent("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

TEST_F(HttpBranchTest, SendsMethodBodyQueryAndTheCallsOwnHeaders) {
  HttpCallSpec spec;
  spec.method = "PUT";
  spec.body = R"({"amount": 30, "currency": "EUR"})";
  spec.headers = {{"Authorization", "Bearer t0k"}, {"X-Tenant", "acme"}};
  HttpBranch branch = PrepareBranch("/pay?order=1234&x=%20y", spec);
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());

  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].uri, "/pay?order=1234&x=%20y");
  EXPECT_EQ(requests[0].body, R"({"amount": 30, "currency": "EUR"})");
  EXPECT_EQ(requests[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(requests[0].Header("Content-Length"), std::to_string(spec.body.size()));
  EXPECT_EQ(requests[0].Header("Authorization"), "Bearer t0k");
  EXPECT_EQ(requests[0].Header("X-Tenant"), "acme");
}

TEST_F(HttpBranchTest, NoBodyMeansNoContentTypeAndAZeroLengthForPost) {
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  const CapturedRequest request = server_.requests().at(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.body, "");
  EXPECT_EQ(request.HeaderCount("Content-Type"), 0u);
  EXPECT_EQ(request.Header("Content-Length"), "0");
}

TEST_F(HttpBranchTest, GetAndDeleteWork) {
  HttpCallSpec get;
  get.method = "GET";
  HttpCallSpec del;
  del.method = "DELETE";
  HttpBranch branch = Branch({{Op::kTry, MakeCall(server_.Url("/t"), get)},
                              {Op::kCancel, MakeCall(server_.Url("/c"), del)}});
  ASSERT_TRUE(branch.Call(Context(Op::kTry)).ok());
  ASSERT_TRUE(branch.Call(Context(Op::kCancel)).ok());
  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[1].method, "DELETE");
  EXPECT_EQ(server_.connection_count(), 1u);  // framing stayed right on the shared connection
}

TEST_F(HttpBranchTest, TheCallMaySetItsOwnContentType) {
  HttpCallSpec spec;
  spec.body = R"({"op":"replace"})";
  spec.headers = {{"content-type", "application/merge-patch+json"}};
  HttpBranch branch = PrepareBranch("/p", spec);
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  const CapturedRequest request = server_.requests().at(0);
  EXPECT_EQ(request.Header("Content-Type"), "application/merge-patch+json");
  EXPECT_EQ(request.HeaderCount("Content-Type"), 1u);
}

TEST_F(HttpBranchTest, AnIdentifierUnfitForAHeaderIsPermanentAndNothingIsSent) {
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare, "bad\r\ngid"));
  EXPECT_EQ(result.outcome, CallOutcome::kPermanent);
  EXPECT_THAT(result.reason, HasSubstr("gid is not 1-128 of [A-Za-z0-9._-]"));
  const CallResult slash = branch.Call(Context(Op::kPrepare, "g", "a/b"));
  EXPECT_EQ(slash.outcome, CallOutcome::kPermanent);
  EXPECT_THAT(slash.reason, HasSubstr("branch name"));
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HttpBranchTest, AnOperationTheBranchDoesNotHaveIsPermanent) {
  HttpBranch branch = Branch(
      {{Op::kAction, MakeCall(server_.Url("/a"))}, {Op::kCompensate, MakeCall(server_.Url("/c"))}});
  EXPECT_TRUE(branch.HasCall(Op::kAction));
  EXPECT_FALSE(branch.HasCall(Op::kPrepare));
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kPermanent);
  EXPECT_EQ(result.reason,
            "branch 'payment' has no prepare call: its protocol does not send prepare to it");
  EXPECT_EQ(server_.request_count(), 0u);
}

// ---- Status classes --------------------------------------------------------------------------

struct StatusCase {
  int status;
  CallOutcome expected;
};

class HttpBranchStatusTest : public HttpBranchTest,
                             public ::testing::WithParamInterface<StatusCase> {};

TEST_P(HttpBranchStatusTest, MapsTheStatusOverTheWire) {
  const int status = GetParam().status;
  server_.SetHandler([&](const CapturedRequest&) {
    return Reply(status, status == 204 ? "" : "reason for " + std::to_string(status));
  });
  HttpBranch branch = PrepareBranch("/pay");
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, GetParam().expected)
      << "HTTP " << status << " → " << CallOutcomeName(result.outcome) << ": " << result.reason;
  if (GetParam().expected == CallOutcome::kOk) {
    EXPECT_EQ(result.reason, "");
  } else {
    EXPECT_THAT(result.reason,
                StartsWith("HTTP " + std::to_string(status) + " from " + server_.Url("/pay")));
    EXPECT_THAT(result.reason, HasSubstr("reason for " + std::to_string(status)));
  }
  // Whatever the status, the response was read to its end and the connection stays usable.
  ASSERT_EQ(branch.Call(Context(Op::kPrepare)).outcome, GetParam().expected);
  EXPECT_EQ(server_.connection_count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Contract, HttpBranchStatusTest,
    ::testing::Values(
        StatusCase{200, CallOutcome::kOk}, StatusCase{201, CallOutcome::kOk},
        StatusCase{204, CallOutcome::kOk}, StatusCase{409, CallOutcome::kRefused},
        StatusCase{408, CallOutcome::kTransient}, StatusCase{425, CallOutcome::kTransient},
        StatusCase{429, CallOutcome::kTransient}, StatusCase{500, CallOutcome::kTransient},
        StatusCase{503, CallOutcome::kTransient}, StatusCase{400, CallOutcome::kPermanent},
        StatusCase{404, CallOutcome::kPermanent}, StatusCase{301, CallOutcome::kPermanent}),
    [](const ::testing::TestParamInfo<StatusCase>& param_info) {
      return "Http" + std::to_string(param_info.param.status);
    });

TEST_F(HttpBranchTest, RefusalReasonQuotesTheBody) {
  server_.SetHandler([](const CapturedRequest&) { return Reply(409, "insufficient funds\n"); });
  HttpBranch branch = PrepareBranch("/pay?token=secret");
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kRefused);
  EXPECT_EQ(result.reason, "HTTP 409 from http://127.0.0.1:" + std::to_string(server_.port()) +
                               "/pay: insufficient funds");
}

TEST_F(HttpBranchTest, ABigBodyIsDrainedAndTheConnectionKept) {
  server_.SetHandler([](const CapturedRequest&) { return Reply(500, std::string(200'000, 'x')); });
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kTransient);
  EXPECT_LT(result.reason.size(), 400u);
  ASSERT_EQ(branch.Call(Context(Op::kPrepare)).outcome, CallOutcome::kTransient);
  EXPECT_EQ(server_.connection_count(), 1u);
}

TEST_F(HttpBranchTest, ABodyOverTheDrainBoundIsLeftUnreadAndItsConnectionClosed) {
  server_.SetHandler([](const CapturedRequest&) {
    return Reply(
        200, std::string(kResponseBodyKeptBytesMax + kResponseBodyDrainBytesMax + 100'000, 'x'));
  });
  HttpBranch branch = PrepareBranch();
  EXPECT_TRUE(branch.Call(Context(Op::kPrepare)).ok());  // the status decided
  EXPECT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  EXPECT_EQ(server_.connection_count(), 2u);
  EXPECT_EQ(pool_.stats().discarded, 2u);
}

// ---- Connection failures ---------------------------------------------------------------------

TEST_F(HttpBranchTest, ConnectionRefusedIsTransient) {
  const uint16_t port = ::txc::testing::ClosedPort();
  HttpBranch branch =
      Branch({{Op::kPrepare, MakeCall("http://127.0.0.1:" + std::to_string(port) + "/p")}});
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kTransient) << result.reason;
  EXPECT_THAT(result.reason, StartsWith("not sent to http://127.0.0.1:" + std::to_string(port) +
                                        "/p: could not connect"));
  EXPECT_THAT(result.reason, HasSubstr("refused"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  EXPECT_EQ(pool_.stats().in_use, 0u);
}

TEST_F(HttpBranchTest, AnUnresolvableHostIsTransient) {
  // .invalid never resolves (RFC 6761 §6.4).
  HttpBranch branch = Branch({{Op::kPrepare, MakeCall("http://txc-test.invalid:9/p")}});
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kTransient) << result.reason;
  EXPECT_THAT(result.reason,
              StartsWith("not sent to http://txc-test.invalid:9/p: could not connect"));
}

TEST_F(HttpBranchTest, ATimeoutAfterSendingIsUnknown) {
  server_.SetHandler([](const CapturedRequest&) {
    Answer answer = Reply(200);
    answer.delay = milliseconds(5000);  // cut short when the server stops
    return answer;
  });
  HttpCallSpec spec;
  spec.timeout_ms = 200;
  HttpBranch branch = PrepareBranch("/slow", spec);
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("no reply within 200 ms"));
  EXPECT_THAT(result.reason, HasSubstr("may have taken effect"));
  EXPECT_LT(elapsed, milliseconds(2000));
  EXPECT_EQ(server_.request_count(), 1u);  // sent once: a timeout is never retried here
}

TEST_F(HttpBranchTest, TheContextsTimeoutBoundsTheCallToo) {
  server_.SetHandler([](const CapturedRequest&) {
    Answer answer = Reply(200);
    answer.delay = milliseconds(5000);
    return answer;
  });
  HttpBranch branch = PrepareBranch("/slow");  // the call allows 10 s
  CallContext context = Context(Op::kPrepare);
  context.timeout_ms = 150;
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = branch.Call(context);
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("no reply within 150 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
}

TEST_F(HttpBranchTest, NoTimeLeftMeansNotSent) {
  HttpBranch branch = PrepareBranch();
  CallContext context = Context(Op::kPrepare);
  context.timeout_ms = 0;
  const CallResult result = branch.Call(context);
  EXPECT_EQ(result.outcome, CallOutcome::kTransient);
  EXPECT_THAT(result.reason, HasSubstr("no time left"));
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HttpBranchTest, ServerClosingWithoutReplyOnAFreshConnectionIsUnknownAndNotRetried) {
  server_.SetHandler(
      [](const CapturedRequest&) { return Drop(Answer::Kind::kCloseWithoutAnswer); });
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("closed the connection without replying"));
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpBranchTest, ServerResettingAfterTheRequestIsUnknown) {
  server_.SetHandler(
      [](const CapturedRequest&) { return Drop(Answer::Kind::kResetWithoutAnswer); });
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("lost after the request was sent"));
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpBranchTest, AReplyThatBreaksOffIsUnknown) {
  server_.SetHandler([](const CapturedRequest&) { return Drop(Answer::Kind::kPartialStatusLine); });
  HttpBranch branch = PrepareBranch();
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("the reply broke off or is not HTTP"));
}

// ---- Keep-alive and stale connections --------------------------------------------------------

TEST_F(HttpBranchTest, SequentialCallsShareOneConnection) {
  HttpBranch branch = PrepareBranch();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok()) << i;
  EXPECT_EQ(server_.request_count(), 20u);
  EXPECT_EQ(server_.connection_count(), 1u);
  const HttpClientPool::Stats stats = pool_.stats();
  EXPECT_EQ(stats.created, 1u);
  EXPECT_EQ(stats.reused, 19u);
  EXPECT_EQ(stats.idle, 1u);
  EXPECT_EQ(stats.in_use, 0u);
}

TEST_F(HttpBranchTest, AConnectionTheServerClosedWhileIdleIsNotUsed) {
  server_.SetHandler([](const CapturedRequest& request) {
    // The first reply says keep-alive, then the server closes: the pooled connection is stale.
    return request.connection == 1 ? Drop(Answer::Kind::kRespondThenClose) : Reply(200);
  });
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  ASSERT_TRUE(WaitUntil([&] { return server_.handled_count() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));  // the FIN crosses loopback

  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_TRUE(result.ok()) << result.reason;
  EXPECT_EQ(server_.request_count(), 2u);  // the second call was sent once, on connection 2
  EXPECT_EQ(server_.connection_count(), 2u);
  EXPECT_EQ(pool_.stats().stale, 1u);
}

TEST_F(HttpBranchTest, ServerKeepAliveTimeoutDoesNotFailTheNextCall) {
  TestHttpServer::Options options;
  options.keep_alive_timeout = milliseconds(100);
  TestHttpServer short_lived(options);
  HttpBranch branch = Branch({{Op::kPrepare, MakeCall(short_lived.Url("/p"))}});
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  std::this_thread::sleep_for(milliseconds(400));  // well past the server's keep-alive timeout
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_TRUE(result.ok()) << result.reason;
  EXPECT_EQ(short_lived.connection_count(), 2u);
}

TEST_F(HttpBranchTest, AReusedConnectionDroppedBeforeAnyReplyIsRetriedOnceOnANewOne) {
  std::atomic<bool> dropped{false};
  server_.SetHandler([&](const CapturedRequest& request) {
    // The second request on the first connection: the server drops it unanswered, as a server
    // does when it closes an idle connection while the request is on its way.
    if (request.request_on_connection == 2 && !dropped.exchange(true)) {
      return Drop(Answer::Kind::kCloseWithoutAnswer);
    }
    return Reply(200);
  });
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_TRUE(result.ok()) << result.reason;

  // The retry reached the server as a second copy of the same request: that is why the
  // Idempotency-Key is there.
  const std::vector<CapturedRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].connection, 1u);
  EXPECT_EQ(requests[2].connection, 2u);
  EXPECT_EQ(requests[1].Header("Idempotency-Key"), requests[2].Header("Idempotency-Key"));
  EXPECT_EQ(requests[1].Header("traceparent"), requests[2].Header("traceparent"));
}

TEST_F(HttpBranchTest, TheStaleRetryHappensOnlyOnce) {
  server_.SetHandler([&](const CapturedRequest& request) {
    return request.request_on_connection == 1 && request.connection == 1
               ? Reply(200)
               : Drop(Answer::Kind::kCloseWithoutAnswer);
  });
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("after a retry on a new connection"));
  EXPECT_EQ(server_.request_count(), 3u);
}

TEST_F(HttpBranchTest, AReplyThatStartedIsNeverRetriedEvenOnAReusedConnection) {
  server_.SetHandler([&](const CapturedRequest& request) {
    return request.request_on_connection == 2 ? Drop(Answer::Kind::kPartialStatusLine) : Reply(200);
  });
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kUnknown) << result.reason;
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(HttpBranchTest, AFailedConnectionIsNotReused) {
  std::atomic<int> calls{0};
  server_.SetHandler([&](const CapturedRequest&) {
    return calls++ == 0 ? Drop(Answer::Kind::kCloseWithoutAnswer) : Reply(200);
  });
  HttpBranch branch = PrepareBranch();
  EXPECT_EQ(branch.Call(Context(Op::kPrepare)).outcome, CallOutcome::kUnknown);
  EXPECT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  EXPECT_EQ(pool_.stats().discarded, 1u);
  EXPECT_EQ(pool_.stats().reused, 0u);
  EXPECT_EQ(server_.connection_count(), 2u);
}

TEST_F(HttpBranchTest, ConnectionCloseFromTheServerIsHonoured) {
  server_.SetHandler([](const CapturedRequest&) {
    Answer answer = Reply(200);
    answer.headers = {{"Connection", "close"}};
    return answer;
  });
  HttpBranch branch = PrepareBranch();
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  ASSERT_TRUE(branch.Call(Context(Op::kPrepare)).ok());
  EXPECT_EQ(server_.connection_count(), 2u);
  EXPECT_EQ(pool_.stats().stale, 0u);
}

// ---- Pool bounds -----------------------------------------------------------------------------

TEST(HttpBranchPoolTest, MoreThreadsThanConnectionsAllComplete) {
  TestHttpServer server;
  server.SetHandler([](const CapturedRequest&) {
    Answer answer = Reply(200);
    answer.delay = milliseconds(5);
    return answer;
  });
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 2;
  HttpClientPool pool(options);
  HttpBranch branch({{Op::kPrepare, MakeCall(server.Url("/p"))}}, pool);

  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 10;
  std::atomic<int> ok{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const CallResult result = branch.Call(Context(Op::kPrepare, "g" + std::to_string(t)));
        if (result.ok()) {
          ++ok;
        } else {
          failures[t] = result.reason;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
  EXPECT_LE(server.peak_concurrency(), 2u);
  EXPECT_LE(server.connection_count(), 2u);
  EXPECT_LE(pool.stats().created, 2u);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(HttpBranchPoolTest, WaitingForAConnectionIsBoundedByTheCallsTimeout) {
  TestHttpServer server;
  server.SetHandler([](const CapturedRequest&) {
    Answer answer = Reply(200);
    answer.delay = milliseconds(1500);  // holds the only connection meanwhile
    return answer;
  });
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 1;
  HttpClientPool pool(options);
  HttpBranch branch({{Op::kPrepare, MakeCall(server.Url("/p"))}}, pool);

  std::thread holder([&] { (void)branch.Call(Context(Op::kPrepare, "holder")); });
  ASSERT_TRUE(WaitUntil([&] { return server.request_count() == 1; }));
  CallContext context = Context(Op::kPrepare, "waiter");
  context.timeout_ms = 100;
  const auto start = std::chrono::steady_clock::now();
  const CallResult result = branch.Call(context);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.outcome, CallOutcome::kTransient) << result.reason;
  EXPECT_THAT(result.reason, HasSubstr("pool exhausted"));
  EXPECT_GE(elapsed, milliseconds(90));
  EXPECT_LT(elapsed, milliseconds(2000));
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(pool.stats().exhausted, 1u);
  holder.join();
}

}  // namespace
}  // namespace txc::participants::http
