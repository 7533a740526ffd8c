// API tokens: the token file's parser and loader (every refusal names its line and never shows a
// token), constant-time lookup, and the guard that answers 401/403 before routing.
#include "coordinator/server/access_control.h"

#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "coordinator/common/check.h"
#include "coordinator/server/router.h"
#include "tests/support/test_env.h"

namespace txc::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kOperateToken[] = "op-9f2c6b1e0d8a4f7e9b3c5d1a7e";
constexpr char kReadToken[] = "rd-1b7d3e9f5a2c8e4d6b0f1a3c5e";

const std::string kGoodFile = std::string(
                                  "# role    name        token\n"
                                  "\n"
                                  "operate   alice       ") +
                              kOperateToken +
                              "\r\n"
                              "   # an indented comment\n"
                              "read\tdashboards\t" +
                              kReadToken + "   \n";

std::string ErrorCode(const Response& response) {
  Poco::JSON::Parser parser;
  auto root = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
  return root->getObject("error")->getValue<std::string>("code");
}

TEST(TokenTableTest, ParsesRolesNamesAndTokensSkippingCommentsAndBlankLines) {
  Result<TokenTable> table = TokenTable::Parse(kGoodFile);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->tokens().size(), 2u);
  EXPECT_EQ(table->tokens()[0].name, "alice");
  EXPECT_EQ(table->tokens()[0].role, Role::kOperate);
  EXPECT_EQ(table->tokens()[1].name, "dashboards");
  EXPECT_EQ(table->tokens()[1].role, Role::kRead);
  EXPECT_EQ(table->tokens()[0].digest, DigestToken(kOperateToken));
}

TEST(TokenTableTest, FindsATokenByItsValueOnly) {
  Result<TokenTable> table = TokenTable::Parse(kGoodFile);
  ASSERT_TRUE(table.ok());
  ASSERT_NE(table->Find(kOperateToken), nullptr);
  EXPECT_EQ(table->Find(kOperateToken)->name, "alice");
  ASSERT_NE(table->Find(kReadToken), nullptr);
  EXPECT_EQ(table->Find(kReadToken)->name, "dashboards");
  EXPECT_EQ(table->Find(""), nullptr);
  EXPECT_EQ(table->Find("alice"), nullptr);
  EXPECT_EQ(table->Find(std::string(kOperateToken).substr(0, 20)), nullptr);
  EXPECT_EQ(table->Find(std::string(kOperateToken) + "x"), nullptr);
}

TEST(TokenTableTest, DigestsAreSha256) {
  // FIPS 180-2 example: SHA-256("abc").
  const TokenDigest digest = DigestToken("abc");
  const TokenDigest expected = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  EXPECT_EQ(digest, expected);
}

struct BadFile {
  std::string text;
  std::string message;  // a part of the error
};

TEST(TokenTableTest, RefusesEveryMalformedLineNamingItsLineAndNeverTheToken) {
  const std::string long_token(kTokenLengthMax + 1, 'x');
  const std::vector<BadFile> cases = {
      {"operate alice\n", "line 1: expected `<role> <name> <token>`"},
      {"# c\noperate alice " + std::string(kOperateToken) + " extra\n", "line 2: expected"},
      {std::string(kOperateToken) + "\n", "got 1 fields"},
      {"admin alice " + std::string(kOperateToken) + "\n",
       "line 1: unknown role \"admin\"; the first field is the role, read or operate"},
      // Fields in the wrong order: the token sits where the role should be and is not shown.
      {std::string(kOperateToken) + " alice operate\n", "line 1: unknown role (a 29-character"},
      {"read al/ice " + std::string(kReadToken) + "\n",
       "line 1: the name (second field) must be 1-64 characters"},
      {"read " + std::string(65, 'n') + " " + kReadToken + "\n", "line 1: the name"},
      {"\n\nread alice fifteen-chars-x\n",
       "line 3: the token (third field) has 15 characters; at least 16 are needed"},
      {"read alice " + long_token + "\n", "has more than 4096 characters"},
      {"read alice " + std::string(kReadToken) + "\xc3\xa9\n", "outside printable ASCII"},
      {"operate alice " + std::string(kOperateToken) + "\nread alice " + kReadToken + "\n",
       "line 2: the name is already given on line 1"},
      {"operate alice " + std::string(kOperateToken) + "\n#\nread bob " + kOperateToken + "\n",
       "line 3: the same token as on line 1"},
      {"", "holds no token"},
      {"# only a comment\n\n", "holds no token"},
  };
  for (const BadFile& c : cases) {
    SCOPED_TRACE(c.text);
    Result<TokenTable> table = TokenTable::Parse(c.text);
    ASSERT_FALSE(table.ok());
    EXPECT_EQ(table.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(table.status().message(), HasSubstr(c.message));
    for (const char* token : {kOperateToken, kReadToken, "fifteen-chars-x"}) {
      EXPECT_THAT(table.status().message(), Not(HasSubstr(token)));
    }
    EXPECT_THAT(table.status().message(), Not(HasSubstr(long_token.substr(0, 32))));
  }
}

class TokenFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = scratch_.File(name);
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  ::txc::testing::TempDir scratch_;
};

TEST_F(TokenFileTest, LoadsAFileOnlyItsOwnerCanRead) {
  for (mode_t mode : {0600, 0400}) {
    const std::string path = Write("tokens", kGoodFile, mode);
    Result<TokenTable> table = TokenTable::Load(path);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    EXPECT_EQ(table->tokens().size(), 2u);
  }
}

TEST_F(TokenFileTest, RefusesAFileOthersCanReadOrWriteSayingSo) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    const std::string path = Write("tokens" + std::to_string(mode), kGoodFile, mode);
    Result<TokenTable> table = TokenTable::Load(path);
    ASSERT_FALSE(table.ok()) << std::oct << mode;
    EXPECT_THAT(table.status().message(), StartsWith(path + ": has mode "));
    EXPECT_THAT(table.status().message(), HasSubstr("others than its owner"));
    EXPECT_THAT(table.status().message(), HasSubstr("chmod 600 " + path));
  }
  const std::string shown = Write("shown", kGoodFile, 0644);
  EXPECT_THAT(TokenTable::Load(shown).status().message(), HasSubstr("mode 0644"));
}

TEST_F(TokenFileTest, NamesTheFileAndTheLineOfAMalformedLine) {
  const std::string path =
      Write("bad", "# tokens\noperate alice " + std::string(kOperateToken) + "\nread bob\n", 0600);
  Result<TokenTable> table = TokenTable::Load(path);
  ASSERT_FALSE(table.ok());
  EXPECT_THAT(table.status().message(), StartsWith(path + " line 3: expected"));
  EXPECT_THAT(table.status().message(), Not(HasSubstr(kOperateToken)));
}

TEST_F(TokenFileTest, RefusesAMissingFileADirectoryAndAnOversizedFile) {
  const std::string missing = scratch_.File("absent");
  EXPECT_THAT(TokenTable::Load(missing).status().message(),
              HasSubstr(missing + ": cannot be opened: No such file"));
  const std::string directory = scratch_.File("dir");
  ASSERT_EQ(::mkdir(directory.c_str(), 0700), 0);
  EXPECT_THAT(TokenTable::Load(directory).status().message(),
              HasSubstr(directory + ": is not a regular file"));
  const std::string big = Write("big", std::string(kTokensFileBytesMax + 1, '#'), 0600);
  EXPECT_THAT(TokenTable::Load(big).status().message(), HasSubstr("is larger than"));
}

// ---------------------------------------------------------------------------------------------
// The guard

class AccessControlTest : public ::testing::Test {
 protected:
  AccessControlTest() : access_(MakeTable(), Options()) {}

  static TokenTable MakeTable() {
    Result<TokenTable> table = TokenTable::Parse(kGoodFile);
    TXC_CHECK(table.ok(), "the sample token file parses");
    return std::move(table).value();
  }
  AccessControlOptions Options() {
    AccessControlOptions options;
    options.count_rejection = [this](const std::string& reason) { ++rejected_[reason]; };
    return options;
  }
  static Request Make(std::string method, std::string path,
                      std::optional<std::string> authorization = std::nullopt) {
    Request request;
    request.method = std::move(method);
    request.path = std::move(path);
    request.headers["accept"] = "application/json";
    if (authorization) request.headers["authorization"] = *authorization;
    return request;
  }
  static std::string Bearer(const std::string& token) { return "Bearer " + token; }

  std::map<std::string, int> rejected_;
  AccessControl access_;
};

TEST_F(AccessControlTest, HealthReadinessMetricsAndTheStaticPageAreOpen) {
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/ui", "/ui/", "/ui/app.js"}) {
    Request request = Make("GET", path);
    EXPECT_EQ(access_.Check(request), std::nullopt) << path;
    EXPECT_EQ(request.principal, "") << path;
  }
  EXPECT_TRUE(rejected_.empty());
}

TEST_F(AccessControlTest, EverythingElseWithoutATokenIs401WithABearerChallenge) {
  // Routes that do not exist yet are guarded too (fail closed), and near misses of open paths.
  for (const char* path : {"/v1/transactions", "/v1/transactions/g-1", "/v1/info", "/v2/x", "/",
                           "/healthz/x", "/uix", "/metrics/"}) {
    Request request = Make("GET", path);
    const std::optional<Response> refused = access_.Check(request);
    ASSERT_TRUE(refused.has_value()) << path;
    EXPECT_EQ(refused->status, 401) << path;
    EXPECT_EQ(ErrorCode(*refused), "unauthorized");
    ASSERT_NE(refused->Header("WWW-Authenticate"), nullptr);
    EXPECT_THAT(*refused->Header("www-authenticate"), StartsWith("Bearer"));
    EXPECT_THAT(refused->body, HasSubstr("Authorization: Bearer <token>"));
  }
  EXPECT_EQ(rejected_["unauthorized"], 8);
}

TEST_F(AccessControlTest, AnUnknownOrMalformedTokenIs401AndIsNeverEchoed) {
  const std::string wrong = "wrong-token-0123456789abcdef";
  for (const std::string& header :
       {Bearer(wrong), "Basic " + wrong, wrong, std::string("Bearer"), std::string("Bearer   "),
        "Bearer " + std::string(kOperateToken) + "x", "Bearer " + wrong + ", Bearer " + wrong}) {
    Request request = Make("GET", "/v1/transactions", header);
    const std::optional<Response> refused = access_.Check(request);
    ASSERT_TRUE(refused.has_value()) << header;
    EXPECT_EQ(refused->status, 401) << header;
    EXPECT_EQ(ErrorCode(*refused), "unauthorized");
    EXPECT_THAT(refused->body, Not(HasSubstr(wrong)));
    EXPECT_THAT(refused->body, Not(HasSubstr(kOperateToken)));
    ASSERT_NE(refused->Header("WWW-Authenticate"), nullptr);
    EXPECT_THAT(*refused->Header("WWW-Authenticate"), StartsWith("Bearer"));
    EXPECT_EQ(request.Header("authorization"), nullptr) << "the header is dropped";
  }
  EXPECT_EQ(rejected_["unauthorized"], 7);
}

TEST_F(AccessControlTest, AReadTokenMayReadButNotActOrSubmit) {
  for (const char* path : {"/v1/transactions", "/v1/transactions/g-1", "/v1/info"}) {
    Request request = Make("GET", path, Bearer(kReadToken));
    EXPECT_EQ(access_.Check(request), std::nullopt) << path;
    EXPECT_EQ(request.principal, "dashboards");
    EXPECT_EQ(request.Header("authorization"), nullptr) << "no handler sees the token";
    EXPECT_NE(request.Header("accept"), nullptr) << "other headers stay";
  }
  for (const char* path : {"/v1/transactions/g-1/retry", "/v1/transactions/g-1/abort",
                           "/v1/transactions/g-1/resolve", "/v1/transactions"}) {
    Request request = Make("POST", path, Bearer(kReadToken));
    const std::optional<Response> refused = access_.Check(request);
    ASSERT_TRUE(refused.has_value()) << path;
    EXPECT_EQ(refused->status, 403) << path;
    EXPECT_EQ(ErrorCode(*refused), "forbidden");
    EXPECT_THAT(refused->body, HasSubstr("\\\"dashboards\\\" has the read role"));
    EXPECT_THAT(refused->body, HasSubstr(std::string("POST ") + path));
    EXPECT_THAT(refused->body, Not(HasSubstr(kReadToken)));
    EXPECT_EQ(refused->Header("WWW-Authenticate"), nullptr);
    EXPECT_EQ(request.principal, "");
  }
  Request deletion = Make("DELETE", "/v1/transactions/g-1", Bearer(kReadToken));
  EXPECT_EQ(access_.Check(deletion)->status, 403);
  EXPECT_EQ(rejected_["forbidden"], 5);
  EXPECT_EQ(rejected_.count("unauthorized"), 0u);
}

TEST_F(AccessControlTest, AnOperateTokenMayDoEverythingAndNamesThePrincipal) {
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/v1/transactions"},
                                                        {"POST", "/v1/transactions"},
                                                        {"POST", "/v1/transactions/g-1/retry"},
                                                        {"POST", "/v1/transactions/g-1/abort"},
                                                        {"POST", "/v1/transactions/g-1/resolve"}}) {
    Request request = Make(method, path, Bearer(kOperateToken));
    EXPECT_EQ(access_.Check(request), std::nullopt) << method << " " << path;
    EXPECT_EQ(request.principal, "alice");
  }
  // The scheme in any case, blanks around the token.
  Request lower = Make("POST", "/v1/transactions", "bearer  " + std::string(kOperateToken) + " ");
  EXPECT_EQ(access_.Check(lower), std::nullopt);
  EXPECT_EQ(lower.principal, "alice");
  EXPECT_TRUE(rejected_.empty());
}

TEST_F(AccessControlTest, AsARouterGuardItAnswersBeforeRoutingAndHandlersSeeThePrincipal) {
  Router router;
  std::string seen_principal;
  bool saw_authorization = true;
  router.Add("POST", "/v1/transactions/{gid}/retry", [&](const Request& request) {
    seen_principal = request.principal;
    saw_authorization = request.Header("authorization") != nullptr;
    return JsonResponse(200, *NewJsonObject());
  });
  router.Add("GET", "/healthz", [](const Request&) { return JsonResponse(200, *NewJsonObject()); });
  router.SetGuard(access_.AsGuard());

  EXPECT_EQ(router.Dispatch(Make("POST", "/v1/transactions/g/retry")).status, 401);
  EXPECT_EQ(router.Dispatch(Make("POST", "/v1/transactions/g/retry", Bearer(kReadToken))).status,
            403);
  EXPECT_EQ(seen_principal, "") << "the handler never ran";
  EXPECT_EQ(router.Dispatch(Make("POST", "/v1/transactions/g/retry", Bearer(kOperateToken))).status,
            200);
  EXPECT_EQ(seen_principal, "alice");
  EXPECT_FALSE(saw_authorization);
  // Unknown routes: 401 without a token (nothing about the route table is told), 404 with one.
  EXPECT_EQ(router.Dispatch(Make("GET", "/v1/nothing")).status, 401);
  EXPECT_EQ(router.Dispatch(Make("GET", "/v1/nothing", Bearer(kReadToken))).status, 404);
  EXPECT_EQ(router.Dispatch(Make("GET", "/healthz")).status, 200);
}

TEST(RouterGuardTest, AGuardsAnswerReplacesRoutingAndItMayAnnotateTheRequest) {
  Router router;
  router.Add("GET", "/x", [](const Request& request) {
    Response response;
    response.body = request.principal;
    return response;
  });
  router.SetGuard([](Request& request) -> std::optional<Response> {
    if (request.query.count("deny") != 0) return ErrorResponse(418, "teapot", "no");
    request.principal = "guarded";
    return std::nullopt;
  });
  Request allowed;
  allowed.method = "GET";
  allowed.path = "/x";
  EXPECT_EQ(router.Dispatch(allowed).body, "guarded");
  Request denied = allowed;
  denied.query["deny"] = "1";
  EXPECT_EQ(router.Dispatch(denied).status, 418);
  Request unknown = denied;
  unknown.path = "/nowhere";
  EXPECT_EQ(router.Dispatch(unknown).status, 418) << "the guard runs before a 404";
}

}  // namespace
}  // namespace txc::server
