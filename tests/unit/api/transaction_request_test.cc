// POST /v1/transactions bodies: what is accepted, and for what is not, the field the error names.
#include "coordinator/api/transaction_request.h"

#include <gtest/gtest.h>

namespace txc::api {
namespace {

RequestContext Context() {
  RequestContext context;
  context.limits.max_branches = 4;
  context.check_url = [](const participants::http::HttpUrl& url, std::string_view field) {
    return url.host == "127.0.0.1"
               ? Status::Ok()
               : Status::InvalidArgument(std::string(field) +
                                         ": is not allowed by participants.allow");
  };
  context.resource_kind = [](const std::string& name) -> std::optional<std::string> {
    if (name == "orders") return "postgres";
    if (name == "payments") return "mysql";
    return std::nullopt;
  };
  context.generate_gid = [] { return std::string("generated-1"); };
  return context;
}

const char* kHttp2pc =
    R"json({"gid": "order-1", "protocol": "2pc", "timeout_ms": 5000, "wait": true,
  "retry": {"initial_ms": 50, "max_ms": 1000},
  "branches": [
    {"name": "stock", "prepare": {"url": "http://127.0.0.1:9001/p", "body": {"sku": "a", "n": 2}},
                      "commit": {"url": "http://127.0.0.1:9001/c", "method": "PUT"},
                      "abort": {"url": "http://127.0.0.1:9001/a", "headers": {"X-Tenant": "t1"},
                                "timeout_ms": 900}},
    {"name": "ledger", "resource": "orders",
     "sql": [{"text": "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
              "params": [30, "alice"]},
             {"text": "INSERT INTO log VALUES ($1, $2, $3)", "params": [null, true, 1.5]}]}]})json";

TEST(TransactionRequestTest, AcceptsHttpAndDatabaseBranches) {
  auto request = ParseTransactionRequest(kHttp2pc, Context());
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  EXPECT_EQ(request->gid, "order-1");
  EXPECT_EQ(request->protocol, "2pc");
  EXPECT_EQ(request->timeout_ms, 5000);
  EXPECT_TRUE(request->wait);
  EXPECT_EQ(request->retry_initial_ms, 50);
  EXPECT_EQ(request->retry_max_ms, 1000);
  ASSERT_EQ(request->branches.size(), 2u);
  const auto& stock = request->branches[0];
  EXPECT_FALSE(stock.is_database());
  EXPECT_EQ(stock.calls.at(participants::Op::kPrepare).body(), R"({"n":2,"sku":"a"})");
  EXPECT_EQ(stock.calls.at(participants::Op::kCommit).method(), "PUT");
  EXPECT_EQ(stock.calls.at(participants::Op::kAbort).headers().at("X-Tenant"), "t1");
  EXPECT_EQ(stock.calls.at(participants::Op::kAbort).timeout_ms(), 900);
  EXPECT_EQ(stock.calls.at(participants::Op::kPrepare).timeout_ms(), 5000);
  const auto& ledger = request->branches[1];
  ASSERT_TRUE(ledger.is_database());
  EXPECT_EQ(ledger.resource, "orders");
  ASSERT_EQ(ledger.sql.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(ledger.sql[0].params[0]), 30);
  EXPECT_EQ(std::get<std::string>(ledger.sql[0].params[1]), "alice");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(ledger.sql[1].params[0]));
  EXPECT_EQ(std::get<bool>(ledger.sql[1].params[1]), true);
  EXPECT_DOUBLE_EQ(std::get<double>(ledger.sql[1].params[2]), 1.5);
}

TEST(TransactionRequestTest, FingerprintIgnoresWaitAndKeyOrderButNotContent) {
  auto a = ParseTransactionRequest(kHttp2pc, Context());
  std::string without_wait = kHttp2pc;
  without_wait.replace(without_wait.find("\"wait\": true,"), 13, "");
  auto b = ParseTransactionRequest(without_wait, Context());
  std::string reordered = R"({"protocol": "2pc", "gid": "g", "branches": [
     {"name": "x", "resource": "orders", "sql": [{"params": [1], "text": "SELECT $1"}]}]})";
  std::string reordered2 = R"({"branches": [
     {"sql": [{"text": "SELECT $1", "params": [1]}], "resource": "orders", "name": "x"}],
     "gid": "g", "protocol": "2pc"})";
  std::string other = R"({"protocol": "2pc", "gid": "g", "branches": [
     {"name": "x", "resource": "orders", "sql": [{"params": [2], "text": "SELECT $1"}]}]})";
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_EQ(ParseTransactionRequest(reordered, Context())->fingerprint,
            ParseTransactionRequest(reordered2, Context())->fingerprint);
  EXPECT_NE(ParseTransactionRequest(reordered, Context())->fingerprint,
            ParseTransactionRequest(other, Context())->fingerprint);
}

TEST(TransactionRequestTest, CanonicalFormParsesBackToTheSameRequest) {
  auto first = ParseTransactionRequest(kHttp2pc, Context());
  ASSERT_TRUE(first.ok());
  auto again = ParseTransactionRequest(first->canonical_json, Context());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->fingerprint, first->fingerprint);
  EXPECT_EQ(again->branches[1].sql, first->branches[1].sql);
}

TEST(TransactionRequestTest, GeneratesAGidWhenThereIsNone) {
  auto request = ParseTransactionRequest(
      R"({"protocol": "2pc", "branches": [{"name": "x", "resource": "orders",
          "sql": [{"text": "SELECT 1"}]}]})",
      Context());
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  EXPECT_EQ(request->gid, "generated-1");
  EXPECT_TRUE(request->gid_generated);
}

// Each bad body, and the field its error must name.
struct BadCase {
  std::string body;
  std::string field;
};

TEST(TransactionRequestTest, AcceptsASagaWithAStepGraph) {
  auto request = ParseTransactionRequest(
      R"({"gid": "order-1", "protocol": "saga", "branches": [
          {"name": "order", "action": {"url": "http://127.0.0.1:9001/orders"},
           "compensate": {"url": "http://127.0.0.1:9001/orders/cancel"}},
          {"name": "payment", "action": {"url": "http://127.0.0.1:9002/pay", "body": {"amount": 30}},
           "compensate": {"url": "http://127.0.0.1:9002/refund", "body": {"amount": 30}},
           "after": ["order"]},
          {"name": "stock", "action": {"url": "http://127.0.0.1:9003/reserve"},
           "compensate": {"url": "http://127.0.0.1:9003/release"}, "after": ["order"]}]})",
      Context());
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  ASSERT_EQ(request->branches.size(), 3u);
  EXPECT_FALSE(request->branches[0].after);
  EXPECT_EQ(*request->branches[2].after, (std::vector<std::string>{"order"}));
  EXPECT_EQ(request->branches[1].calls.at(participants::Op::kAction).url().target, "/pay");
  auto graph = SagaStepGraph(*request);
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->dependents(0), (std::vector<uint32_t>{1, 2}));
}

TEST(TransactionRequestTest, EveryErrorNamesItsField) {
  const std::string http = R"({"name": "h", "prepare": {"url": "http://127.0.0.1:1/p"},
      "commit": {"url": "http://127.0.0.1:1/c"}, "abort": {"url": "http://127.0.0.1:1/a"}})";
  const std::vector<BadCase> cases = {
      {"not json", "body"},
      {"[1]", "body"},
      {R"({"protocol": "2pc", "branches": [], "gid": "has space"})", "gid:"},
      {R"({"protocol": "2pc", "branches": [], "gid": "a12345678901234567890123456789012345678901234567890123456"})",
       "gid:"},
      {R"({"branches": []})", "protocol:"},
      {R"({"protocol": "xa", "branches": []})", "protocol:"},
      {R"({"protocol": "3pc", "branches": [{"name": "a", "resource": "pg", "sql": [{"text": "SELECT 1"}]}]})",
       "branches[0].resource:"},
      {R"({"protocol": "saga", "branches": [{"name": "a", "action": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].compensate:"},
      {R"({"protocol": "saga", "branches": [{"name": "a", "action": {"url": "http://127.0.0.1:1/a"},
          "compensate": {"url": "http://127.0.0.1:1/c"}, "prepare": {"url": "http://127.0.0.1:1/p"}}]})",
       "branches[0].prepare:"},
      {R"({"protocol": "saga", "branches": [{"name": "a", "resource": "pg", "sql": [{"text": "SELECT 1"}]}]})",
       "branches[0].resource:"},
      {R"({"protocol": "saga", "branches": [{"name": "a", "action": {"url": "http://127.0.0.1:1/a"},
          "compensate": {"url": "http://127.0.0.1:1/c"}, "after": ["b"]}]})",
       "branches[0].after[0]:"},
      {R"({"protocol": "saga", "branches": [{"name": "a", "action": {"url": "http://127.0.0.1:1/a"},
          "compensate": {"url": "http://127.0.0.1:1/c"}, "after": "a"}]})",
       "branches[0].after:"},
      {R"({"protocol": "saga", "branches": [
          {"name": "a", "action": {"url": "http://127.0.0.1:1/a"}, "compensate": {"url": "http://127.0.0.1:1/c"}, "after": ["b"]},
          {"name": "b", "action": {"url": "http://127.0.0.1:1/a"}, "compensate": {"url": "http://127.0.0.1:1/c"}}]})",
       "branches[0].after:"},
      {R"({"protocol": "2pc"})", "branches:"},
      {R"({"protocol": "2pc", "branches": []})", "branches:"},
      {R"({"protocol": "2pc", "branches": {}})", "branches:"},
      {R"({"protocol": "2pc", "timeout_ms": 0, "branches": [)" + http + "]}", "timeout_ms:"},
      {R"({"protocol": "2pc", "timeout_ms": "5", "branches": [)" + http + "]}", "timeout_ms:"},
      {R"({"protocol": "2pc", "wait": 1, "branches": [)" + http + "]}", "wait:"},
      {R"({"protocol": "2pc", "retry": {"initial_ms": 500, "max_ms": 100}, "branches": [)" + http +
           "]}",
       "retry.max_ms:"},
      {R"({"protocol": "2pc", "retry": {"initial": 5}, "branches": [)" + http + "]}",
       "retry.initial:"},
      {R"({"protocol": "2pc", "colour": "red", "branches": [)" + http + "]}", "colour:"},
      {R"({"protocol": "2pc", "branches": [)" + http + "," + http + "]}", "branches[1].name:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "http://127.0.0.1:1/p",
          "headers": {"Txc-Gid": "forged"}}, "commit": {"url": "http://127.0.0.1:1/c"},
          "abort": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].prepare.headers"},
      {R"({"protocol": "2pc", "branches": [{"prepare": {"url": "http://127.0.0.1:1/p"}}]})",
       "branches[0].name:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "http://127.0.0.1:1/p"},
          "commit": {"url": "http://127.0.0.1:1/c"}}]})",
       "branches[0].abort:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "http://10.0.0.1/p"},
          "commit": {"url": "http://127.0.0.1:1/c"}, "abort": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].prepare.url:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "ftp://127.0.0.1/p"},
          "commit": {"url": "http://127.0.0.1:1/c"}, "abort": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].prepare.url:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "http://127.0.0.1:1/p",
          "method": "BREW"}, "commit": {"url": "http://127.0.0.1:1/c"},
          "abort": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].prepare.method:"},
      {R"({"protocol": "2pc", "branches": [{"name": "h", "prepare": {"url": "http://127.0.0.1:1/p",
          "timeout_ms": 999999999}, "commit": {"url": "http://127.0.0.1:1/c"},
          "abort": {"url": "http://127.0.0.1:1/a"}}]})",
       "branches[0].prepare.timeout_ms:"},
      {R"({"protocol": "2pc", "branches": [{"name": "d", "resource": "nope", "sql": [{"text": "SELECT 1"}]}]})",
       "branches[0].resource:"},
      {R"({"protocol": "2pc", "branches": [{"name": "d", "resource": "orders", "sql": []}]})",
       "branches[0].sql:"},
      {R"({"protocol": "2pc", "branches": [{"name": "d", "resource": "orders", "sql": [{"text": "COMMIT"}]}]})",
       "branches[0].sql[0].text:"},
      {R"({"protocol": "2pc", "branches": [{"name": "d", "resource": "orders",
          "sql": [{"text": "SELECT $1", "params": [[1]]}]}]})",
       "branches[0].sql[0].params[0]:"},
      {R"({"protocol": "2pc", "branches": [{"name": "d", "resource": "orders", "sql": [{"text": "SELECT 1"}],
          "prepare": {"url": "http://127.0.0.1:1/p"}}]})",
       "branches[0].prepare:"},
      {R"({"protocol": "2pc", "branches": [)" + http + "," +
           R"({"name": "b", "resource": "orders", "sql": [{"text": "SELECT 1"}]},
              {"name": "c", "resource": "orders", "sql": [{"text": "SELECT 1"}]},
              {"name": "d", "resource": "orders", "sql": [{"text": "SELECT 1"}]},
              {"name": "e", "resource": "orders", "sql": [{"text": "SELECT 1"}]}]})",
       "branches:"},
  };
  for (const auto& c : cases) {
    auto request = ParseTransactionRequest(c.body, Context());
    ASSERT_FALSE(request.ok()) << c.body;
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(request.status().message().starts_with(c.field))
        << "expected the error to name " << c.field << ", got: " << request.status().message();
  }
}

}  // namespace
}  // namespace txc::api
