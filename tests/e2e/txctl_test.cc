// txctl against the real txcoord (submit, get, list, retry, abort, resolve, API tokens): txcoord
// runs as a process on a free loopback port with its own log directory; the HTTP participants of
// the 2pc transactions are one TestHttpServer inside this process; txctl runs as a process per
// command, and the test reads its exit code, stdout and stderr.
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr milliseconds kStartTimeout{20'000};
constexpr milliseconds kExitTimeout{60'000};

using Json = Poco::JSON::Object::Ptr;

Json ParseObject(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(text);
    if (parsed.type() != typeid(Json)) return nullptr;
    return parsed.extract<Json>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

std::map<std::string, std::string> EnvironmentWithoutTxc() {
  std::map<std::string, std::string> env = CurrentEnvironment();
  // The test decides the whole configuration: none of the runner's TXC_* variables leak in.
  for (auto it = env.begin(); it != env.end();) {
    it = it->first.rfind("TXC_", 0) == 0 ? env.erase(it) : std::next(it);
  }
  return env;
}

bool Ready(uint16_t port) {
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(1, 0));
    Poco::Net::HTTPRequest request("GET", "/readyz", Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    session.receiveResponse(response);
    return response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK;
  } catch (const Poco::Exception&) {
    return false;  // not listening yet
  }
}

// What one txctl run left behind.
struct CliRun {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& out, const CliRun& run) {
  out << "exit " << (run.exit_code ? std::to_string(*run.exit_code) : "(still running)")
      << "\n--- stdout ---\n"
      << run.out << "--- stderr ---\n"
      << run.err;
  return out;
}

// The lines of `text`.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The value of the header line "label:   value" of a txctl table, "" when there is none.
std::string HeaderValue(const std::string& table, const std::string& label) {
  for (const std::string& line : Lines(table)) {
    if (line.rfind(label + ":", 0) != 0) continue;
    const size_t value = line.find_first_not_of(' ', label.size() + 1);
    return value == std::string::npos ? "" : line.substr(value);
  }
  return "";
}

// The branch rows of a txctl table (up to the blank line before its history, if any), each split
// at its column boundaries as the NAME... header line sets them; empty when there is no such
// header.
std::vector<std::vector<std::string>> BranchRows(const std::string& table) {
  const std::vector<std::string> lines = Lines(table);
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("NAME ", 0) != 0) ++header;
  if (header == lines.size()) return {};
  std::vector<size_t> starts;
  for (const char* column : {"NAME", "STATE", "ATTEMPTS", "NEEDS_OPERATOR", "LAST_ERROR"}) {
    starts.push_back(lines[header].find(column));
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t i = header + 1; i < lines.size() && !lines[i].empty(); ++i) {
    std::vector<std::string> cells;
    for (size_t c = 0; c < starts.size(); ++c) {
      const std::string& line = lines[i];
      const size_t end = c + 1 < starts.size() ? starts[c + 1] : line.size();
      std::string cell = starts[c] < line.size() ? line.substr(starts[c], end - starts[c]) : "";
      // Alignment: a cell never runs into the next column, and the gap before it is blank.
      if (c + 1 < starts.size()) {
        EXPECT_EQ(line.size() > end ? line[end - 1] : ' ', ' ') << "row " << line;
      }
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      cells.push_back(cell);
    }
    rows.push_back(cells);
  }
  return rows;
}

// The cells of a `txctl list` table row (cells are two or more blanks apart), by the first cell.
std::vector<std::string> ListRow(const std::string& table, const std::string& gid) {
  for (const std::string& line : Lines(table)) {
    if (line.rfind(gid + " ", 0) != 0) continue;
    std::vector<std::string> cells;
    size_t i = 0;
    while (i < line.size()) {
      size_t end = line.find("  ", i);
      if (end == std::string::npos) end = line.size();
      cells.push_back(line.substr(i, end - i));
      i = line.find_first_not_of(' ', end);
      if (i == std::string::npos) break;
    }
    return cells;
  }
  return {};
}

// The gids of the rows of a `txctl list` table, in order.
std::vector<std::string> ListedGids(const std::string& table) {
  std::vector<std::string> gids;
  for (const std::string& line : Lines(table)) {
    if (line.empty() || line.rfind("GID ", 0) == 0) continue;
    gids.push_back(line.substr(0, line.find(' ')));
  }
  return gids;
}

// The gids of `-o json` list output.
std::vector<std::string> JsonGids(const std::string& json) {
  std::vector<std::string> gids;
  const Json page = ParseObject(json);
  if (!page || !page->has("transactions")) return gids;
  const auto transactions = page->getArray("transactions");
  for (unsigned i = 0; i < transactions->size(); ++i) {
    gids.push_back(transactions->getObject(i)->getValue<std::string>("gid"));
  }
  return gids;
}

// GET path with an optional bearer token: (status, body); status 0 when no answer came.
std::pair<int, std::string> HttpGet(uint16_t port, const std::string& path,
                                    const std::string& token = "") {
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return {static_cast<int>(response.getStatus()), body};
  } catch (const Poco::Exception&) {
    return {0, ""};
  }
}

class TxctlTest : public ::testing::Test {
 protected:
  // One txcoord for the whole suite: every test uses gids of its own.
  static void SetUpTestSuite() {
    scratch_ = new TempDir();
    port_ = FreeLoopbackPort();
    ChildProcess::Options options;
    options.program = TXCOORD_PATH;
    options.environment = EnvironmentWithoutTxc();
    options.environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    options.environment["TXC_LOG_DIR"] = scratch_->File("data");
    options.environment["TXC_NODE_ID"] = "txctl" + std::to_string(getpid());
    options.environment["TXC_PARTICIPANTS_ALLOW"] = "http://127.0.0.1:*";
    options.environment["TXC_SHUTDOWN_GRACE_MS"] = "5000";
    options.stdout_path = scratch_->File("txcoord.stdout");
    options.stderr_path = scratch_->File("txcoord.stderr");
    txcoord_ = new ChildProcess(options);
    participant_ = new TestHttpServer();
  }

  static void TearDownTestSuite() {
    txcoord_->Signal(SIGTERM);
    EXPECT_EQ(txcoord_->WaitForExit(20s), 0) << "txcoord did not stop cleanly on SIGTERM";
    delete txcoord_;
    delete participant_;
    delete scratch_;
  }

  void SetUp() override {
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!Ready(port_)) {
      ASSERT_TRUE(txcoord_->Running()) << "txcoord exited; stderr:\n" << TxcoordStderr();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "txcoord never became ready; stderr:\n"
          << TxcoordStderr();
      std::this_thread::sleep_for(20ms);
    }
    participant_->SetHandler([](const CapturedRequest&) { return Answer{}; });
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- txcoord stderr ----\n" << TxcoordStderr() << "----\n";
  }

  static std::string TxcoordStderr() { return ReadFileOrEmpty(txcoord_->stderr_path()); }
  static std::string Url() { return "http://127.0.0.1:" + std::to_string(port_); }

  // Runs txctl with `args` (and the environment given) to its end.
  CliRun Txctl(const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {}) {
    return RunProgram(TXCTL_PATH, args, env);
  }

  // Runs txctl through sh with `input_file` as its standard input.
  CliRun TxctlWithInput(const std::string& input_file, const std::string& args) {
    return RunProgram(
        "/bin/sh", {"-c", std::string("exec ") + TXCTL_PATH + " " + args + " < " + input_file}, {});
  }

  CliRun RunProgram(const std::string& program, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
    const std::string name = "run" + std::to_string(++runs_);
    ChildProcess::Options options;
    options.program = program;
    options.args = args;
    options.environment = EnvironmentWithoutTxc();
    for (const auto& [key, value] : env) options.environment[key] = value;
    options.stdout_path = scratch_->File(name + ".stdout");
    options.stderr_path = scratch_->File(name + ".stderr");
    ChildProcess process(options);
    CliRun run;
    run.exit_code = process.WaitForExit(kExitTimeout);
    run.out = ReadFileOrEmpty(options.stdout_path);
    run.err = ReadFileOrEmpty(options.stderr_path);
    return run;
  }

  // A file in the scratch directory holding `text`; its path.
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = scratch_->File(name);
    std::ofstream(path) << text;
    return path;
  }

  // Polls the document of gid until `done` holds; nullptr (and a failure) when it never does.
  static Json WaitForDocument(const std::string& gid, const std::function<bool(const Json&)>& done,
                              const std::string& what, const std::string& token = "",
                              uint16_t port = 0) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::pair<int, std::string> last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = HttpGet(port == 0 ? port_ : port, "/v1/transactions/" + gid, token);
      if (last.first == 200) {
        const Json document = ParseObject(last.second);
        if (document && done(document)) return document;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "transaction " << gid << " never " << what << "; last answer: " << last.first
                  << " " << last.second;
    return nullptr;
  }

  static bool BranchNeedsOperator(const Json& document, const std::string& branch) {
    const auto branches = document->getArray("branches");
    for (unsigned i = 0; branches && i < branches->size(); ++i) {
      const Json b = branches->getObject(i);
      if (b->getValue<std::string>("name") == branch) {
        return b->has("needs_operator") && b->getValue<bool>("needs_operator");
      }
    }
    return false;
  }

  static bool IsFinal(const Json& document) {
    return document->has("outcome") && !document->isNull("outcome");
  }

  // Commits of payment-service answer 404 (a permanent error in phase 2: the branch needs an
  // operator) until *fixed; everything else 200.
  static void BreakPaymentCommits(std::shared_ptr<std::atomic<bool>> fixed) {
    participant_->SetHandler([fixed](const CapturedRequest& request) {
      Answer answer;
      if (request.Header("Txc-Op") == "commit" &&
          request.Header("Txc-Branch") == "payment-service" && !fixed->load()) {
        answer.status = 404;
        answer.body = "no such endpoint";
      }
      return answer;
    });
  }

  // A 2pc submission with two HTTP branches on the participant server. `retry_max_ms`: the
  // longest backoff, at which a branch that needs an operator is retried by itself.
  static std::string Submission(const std::string& gid, std::optional<bool> wait,
                                int64_t retry_max_ms = 200) {
    auto branch = [](const std::string& name) {
      const std::string base = participant_->Url("/" + name + "/");
      return "{\"name\":\"" + name + "\",\"prepare\":{\"url\":\"" + base +
             "prepare\",\"body\":{\"amount\":30}},\"commit\":{\"url\":\"" + base +
             "commit\"},\"abort\":{\"url\":\"" + base + "abort\"}}";
    };
    std::string json = "{\"gid\":\"" + gid + "\",\"protocol\":\"2pc\",\"timeout_ms\":20000,";
    if (wait) json += std::string("\"wait\":") + (*wait ? "true" : "false") + ",";
    json += "\"retry\":{\"initial_ms\":20,\"max_ms\":" + std::to_string(retry_max_ms) +
            "},\"branches\":[" + branch("order") + "," + branch("payment-service") + "]}";
    return json;
  }

  static TempDir* scratch_;
  static uint16_t port_;
  static ChildProcess* txcoord_;
  static TestHttpServer* participant_;
  int runs_ = 0;
};

TempDir* TxctlTest::scratch_ = nullptr;
uint16_t TxctlTest::port_ = 0;
ChildProcess* TxctlTest::txcoord_ = nullptr;
TestHttpServer* TxctlTest::participant_ = nullptr;

const char kTimestampPattern[] =
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";

TEST_F(TxctlTest, SubmitPrintsTheDocumentAsATableWithAlignedBranchRows) {
  const std::string file = WriteFile("t1.json", Submission("cli-table-1", true));
  const CliRun run = Txctl({"--url", Url(), "submit", file});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_THAT(run.err, IsEmpty());
  EXPECT_EQ(HeaderValue(run.out, "gid"), "cli-table-1") << run;
  EXPECT_EQ(HeaderValue(run.out, "protocol"), "2pc") << run;
  EXPECT_EQ(HeaderValue(run.out, "state"), "committed") << run;
  EXPECT_EQ(HeaderValue(run.out, "outcome"), "committed") << run;
  EXPECT_EQ(HeaderValue(run.out, "stuck"), "false") << run;
  EXPECT_THAT(HeaderValue(run.out, "created_at"), MatchesRegex(kTimestampPattern)) << run;
  EXPECT_THAT(HeaderValue(run.out, "updated_at"), MatchesRegex(kTimestampPattern)) << run;
  EXPECT_EQ(HeaderValue(run.out, "reason"), "") << "a commit has no reason line\n" << run;
  // The header values start in one column.
  std::set<size_t> value_columns;
  for (const std::string& line : Lines(run.out)) {
    if (line.empty() || line.rfind("NAME", 0) == 0) break;
    value_columns.insert(line.find_first_not_of(' ', line.find(':') + 1));
  }
  EXPECT_EQ(value_columns.size(), 1u) << run;

  const auto rows = BranchRows(run.out);
  ASSERT_EQ(rows.size(), 2u) << run;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"order", "committed", "1", "false", "-"})) << run;
  EXPECT_EQ(rows[1], (std::vector<std::string>{"payment-service", "committed", "1", "false", "-"}))
      << run;
  for (const std::string& line : Lines(run.out)) {
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "trailing blanks: '" << line << "'";
  }
}

TEST_F(TxctlTest, SubmitWithOutputJsonPrintsTheDocumentAsTxcoordSentIt) {
  const std::string file = WriteFile("t2.json", Submission("cli-json-1", true));
  const CliRun run = Txctl({"submit", "-o", "json", file}, {{"TXC_URL", Url()}});
  ASSERT_EQ(run.exit_code, 0) << run;
  const Json document = ParseObject(run.out);
  ASSERT_TRUE(document) << run;
  EXPECT_EQ(document->getValue<std::string>("gid"), "cli-json-1");
  EXPECT_EQ(document->getValue<std::string>("outcome"), "committed");
  EXPECT_EQ(document->getArray("branches")->size(), 2u);
  EXPECT_EQ(Lines(run.out).size(), 1u) << "one line, as sent\n" << run;
}

TEST_F(TxctlTest, NoWaitAndWaitOverrideTheFilesWait) {
  // Prepares take 1.5 s: an answer before that is the 202 of a transaction still preparing.
  participant_->SetHandler([](const CapturedRequest& request) {
    Answer answer;
    if (request.Header("Txc-Op") == "prepare") answer.delay = 1500ms;
    return answer;
  });
  const std::string waits = WriteFile("t3.json", Submission("cli-nowait-1", true));
  const CliRun started = Txctl({"--url", Url(), "--no-wait", "submit", waits});
  ASSERT_EQ(started.exit_code, 0) << started;
  EXPECT_EQ(HeaderValue(started.out, "state"), "preparing") << started;
  EXPECT_EQ(HeaderValue(started.out, "outcome"), "-") << started;

  // get follows it to the end.
  std::string outcome;
  CliRun got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (outcome != "committed" && std::chrono::steady_clock::now() < deadline) {
    got = Txctl({"--url", Url(), "get", "cli-nowait-1"});
    ASSERT_EQ(got.exit_code, 0) << got;
    outcome = HeaderValue(got.out, "outcome");
    if (outcome != "committed") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(outcome, "committed") << got;

  // A file without "wait" (txcoord's default is not to wait), and --wait: the final document.
  const std::string plain = WriteFile("t4.json", Submission("cli-wait-1", std::nullopt));
  const CliRun waited = Txctl({"--url", Url(), "submit", plain, "--wait", "-o", "json"});
  ASSERT_EQ(waited.exit_code, 0) << waited;
  const Json document = ParseObject(waited.out);
  ASSERT_TRUE(document) << waited;
  EXPECT_EQ(document->getValue<std::string>("outcome"), "committed") << waited;
}

TEST_F(TxctlTest, SubmitReadsStandardInputForADash) {
  const std::string file = WriteFile("t5.json", Submission("cli-stdin-1", true));
  const CliRun run = TxctlWithInput(file, "--url " + Url() + " submit -");
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(HeaderValue(run.out, "gid"), "cli-stdin-1") << run;
  EXPECT_EQ(HeaderValue(run.out, "outcome"), "committed") << run;
}

TEST_F(TxctlTest, GetPrintsTheDocumentAsATableOrAsJson) {
  const std::string file = WriteFile("t6.json", Submission("cli-get-1", true));
  ASSERT_EQ(Txctl({"--url", Url(), "submit", file}).exit_code, 0);

  const CliRun table = Txctl({"--url", Url(), "get", "cli-get-1"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(HeaderValue(table.out, "gid"), "cli-get-1") << table;
  EXPECT_EQ(HeaderValue(table.out, "state"), "committed") << table;
  const auto rows = BranchRows(table.out);
  ASSERT_EQ(rows.size(), 2u) << table;
  EXPECT_EQ(rows[0][0], "order");
  EXPECT_EQ(rows[1][0], "payment-service");

  const CliRun json = Txctl({"--url=" + Url(), "--output=json", "get", "cli-get-1"});
  ASSERT_EQ(json.exit_code, 0) << json;
  const Json document = ParseObject(json.out);
  ASSERT_TRUE(document) << json;
  EXPECT_EQ(document->getValue<std::string>("gid"), "cli-get-1");
  EXPECT_EQ(document->getValue<std::string>("state"), "committed");
}

TEST_F(TxctlTest, AnAbortShowsTheReasonAndTheBranchErrors) {
  participant_->SetHandler([](const CapturedRequest& request) {
    Answer answer;
    if (request.Header("Txc-Op") == "prepare" &&
        request.Header("Txc-Branch") == "payment-service") {
      answer.status = 409;
      answer.body = "insufficient\nfunds";
    }
    return answer;
  });
  const std::string file = WriteFile("t7.json", Submission("cli-abort-1", true));
  const CliRun run = Txctl({"--url", Url(), "submit", file});
  ASSERT_EQ(run.exit_code, 0) << "an aborted transaction is still an answer\n" << run;
  EXPECT_EQ(HeaderValue(run.out, "outcome"), "aborted") << run;
  EXPECT_THAT(HeaderValue(run.out, "reason"), HasSubstr("409")) << run;
  const auto rows = BranchRows(run.out);
  ASSERT_EQ(rows.size(), 2u) << run;
  EXPECT_EQ(rows[1][0], "payment-service");
  EXPECT_EQ(rows[1][1], "aborted");
  // The participant's body was two lines; the row stays one.
  EXPECT_THAT(rows[1][4], HasSubstr("insufficient funds")) << run;
}

TEST_F(TxctlTest, GetOfAnUnknownGidFailsWithTheServersMessage) {
  const CliRun run = Txctl({"--url", Url(), "get", "nobody-here"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_THAT(run.out, IsEmpty());
  EXPECT_THAT(run.err, HasSubstr("not_found")) << run;
  EXPECT_THAT(run.err, HasSubstr("404")) << run;
  EXPECT_THAT(run.err, HasSubstr("nobody-here")) << run;
}

TEST_F(TxctlTest, ABadSubmissionFailsWithTheServersFieldNamingMessage) {
  // The second branch has no prepare call.
  const std::string body =
      R"({"gid":"cli-bad-1","protocol":"2pc","branches":[)"
      R"({"name":"order","prepare":{"url":")" +
      participant_->Url("/o/prepare") + R"("},"commit":{"url":")" + participant_->Url("/o/commit") +
      R"("},"abort":{"url":")" + participant_->Url("/o/abort") +
      R"("}},{"name":"pay","commit":{"url":")" + participant_->Url("/p/commit") +
      R"("},"abort":{"url":")" + participant_->Url("/p/abort") + R"("}}]})";
  const std::string file = WriteFile("bad.json", body);
  const CliRun run = Txctl({"--url", Url(), "submit", file});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_THAT(run.out, IsEmpty());
  EXPECT_THAT(run.err, HasSubstr("invalid_request")) << run;
  EXPECT_THAT(run.err, HasSubstr("branches[1].prepare")) << run;
  EXPECT_EQ(Txctl({"--url", Url(), "get", "cli-bad-1"}).exit_code, 1) << "nothing was started";
}

TEST_F(TxctlTest, AMissingOrNonJsonFileIsNamedAndNothingIsSent) {
  const size_t before = participant_->request_count();
  const std::string missing = scratch_->File("absent.json");
  const CliRun absent = Txctl({"--url", Url(), "submit", missing});
  EXPECT_EQ(absent.exit_code, 2) << absent;
  EXPECT_THAT(absent.err, HasSubstr(missing)) << absent;
  EXPECT_THAT(absent.err, HasSubstr("No such file")) << absent;

  const std::string broken = WriteFile("broken.json", "{\"gid\": \"cli-broken-1\", \"protocol\":");
  const CliRun not_json = Txctl({"--url", Url(), "submit", broken});
  EXPECT_EQ(not_json.exit_code, 2) << not_json;
  EXPECT_THAT(not_json.err, HasSubstr(broken + " is not JSON")) << not_json;

  const std::string array = WriteFile("array.json", "[1, 2]");
  const CliRun not_object = Txctl({"--url", Url(), "submit", array});
  EXPECT_EQ(not_object.exit_code, 2) << not_object;
  EXPECT_THAT(not_object.err, HasSubstr("JSON object")) << not_object;

  const CliRun directory = Txctl({"--url", Url(), "submit", scratch_->path()});
  EXPECT_EQ(directory.exit_code, 2) << directory;
  EXPECT_THAT(directory.err, HasSubstr(scratch_->path())) << directory;

  EXPECT_EQ(Txctl({"--url", Url(), "get", "cli-broken-1"}).exit_code, 1);
  EXPECT_EQ(participant_->request_count(), before);
}

TEST_F(TxctlTest, UsageErrorsNameWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"submit", "--frobnicate", "x.json"}, "unknown option '--frobnicate'"},
      {{"-x", "get", "g"}, "unknown option '-x'"},
      {{"submit"}, "submit needs FILE"},
      {{"get"}, "get needs GID"},
      {{"get", "a", "b"}, "'b'"},
      {{"get", "g", "-o", "yaml"}, "table or json"},
      {{"get", "g", "-o"}, "-o needs a value"},
      {{"get", "g", "--wait"}, "--wait applies to submit only"},
      {{"health", "-o", "json"}, "-o/--output applies to submit, get, list"},
      {{"retry"}, "retry needs GID"},
      {{"abort", "a", "b"}, "'b'"},
      {{"list", "x"}, "unexpected argument 'x'"},
      {{"list", "--limit", "0"}, "--limit must be a positive integer, got '0'"},
      {{"list", "--limit", "ten"}, "--limit must be a positive integer"},
      {{"get", "g", "--stuck"}, "--stuck applies to list only, not to get"},
      {{"retry", "g", "--all"}, "--all applies to list only"},
      {{"list", "--branch", "b"}, "--branch applies to resolve only"},
      {{"retry", "g", "--reason", "why"}, "--reason applies to resolve and abort only"},
      {{"resolve", "g"}, "resolve needs --branch NAME"},
      {{"resolve", "g", "--branch", "b"}, "resolve needs --outcome committed|aborted"},
      {{"resolve", "g", "--branch", "b", "--outcome", "aborted"}, "resolve needs --reason TEXT"},
      {{"resolve", "g", "--outcome", "maybe"}, "--outcome must be committed or aborted, got"},
      {{"list", "--token"}, "--token needs a value"},
      {{"submit", "f", "--wait", "--no-wait"}, "--wait and --no-wait"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--url", Url()};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const CliRun run = Txctl(args);
    SCOPED_TRACE(::testing::PrintToString(c.args));
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << run;
  }
  const CliRun help = Txctl({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  for (const char* text :
       {"submit FILE", "get GID", "--wait", "--no-wait", "-o, --output", "list", "retry GID",
        "abort GID", "resolve GID", "--token TOKEN", "$TXC_TOKEN", "--stuck", "--all", "--limit N",
        "--branch NAME", "--outcome", "--reason TEXT"}) {
    EXPECT_THAT(help.out, HasSubstr(text));
  }
}

TEST_F(TxctlTest, NoCoordinatorIsAConnectionError) {
  const CliRun run =
      Txctl({"--url", "http://127.0.0.1:" + std::to_string(ClosedPort()), "get", "g"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_THAT(run.err, HasSubstr("cannot reach txcoord")) << run;
}

TEST_F(TxctlTest, ListShowsARowPerTransactionAndFiltersByStuckStateAndProtocol) {
  ASSERT_EQ(Txctl({"--url", Url(), "submit", WriteFile("l1.json", Submission("cli-list-ok", true))})
                .exit_code,
            0);
  auto fixed = std::make_shared<std::atomic<bool>>(false);
  BreakPaymentCommits(fixed);
  const std::string stuck_file =
      WriteFile("l2.json", Submission("cli-list-stuck", false, /*retry_max_ms=*/120'000));
  ASSERT_EQ(Txctl({"--url", Url(), "submit", stuck_file}).exit_code, 0);
  ASSERT_TRUE(WaitForDocument(
      "cli-list-stuck", [](const Json& d) { return BranchNeedsOperator(d, "payment-service"); },
      "waited for an operator"));

  const CliRun all = Txctl({"--url", Url(), "list"});
  ASSERT_EQ(all.exit_code, 0) << all;
  EXPECT_THAT(all.err, IsEmpty());
  ASSERT_FALSE(Lines(all.out).empty());
  EXPECT_THAT(Lines(all.out)[0],
              MatchesRegex("GID +PROTOCOL +STATE +OUTCOME +STUCK +AGE +BRANCHES"));
  const auto ok = ListRow(all.out, "cli-list-ok");
  ASSERT_EQ(ok.size(), 7u) << all;
  EXPECT_EQ(ok[1], "2pc");
  EXPECT_EQ(ok[2], "committed");
  EXPECT_EQ(ok[3], "committed");
  EXPECT_EQ(ok[4], "false");
  EXPECT_THAT(ok[5], MatchesRegex("[0-9]+s")) << "just created";
  EXPECT_EQ(ok[6], "2 committed");
  const auto stuck = ListRow(all.out, "cli-list-stuck");
  ASSERT_EQ(stuck.size(), 7u) << all;
  EXPECT_EQ(stuck[2], "committing");
  EXPECT_EQ(stuck[3], "-");
  EXPECT_EQ(stuck[4], "true");
  EXPECT_EQ(stuck[6], "1 committed, 1 prepared; 1 needs an operator");
  for (const std::string& line : Lines(all.out)) {
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "trailing blanks: '" << line << "'";
  }

  const CliRun stuck_only = Txctl({"--url", Url(), "list", "--stuck"});
  ASSERT_EQ(stuck_only.exit_code, 0) << stuck_only;
  EXPECT_THAT(ListedGids(stuck_only.out), ::testing::Contains("cli-list-stuck"));
  EXPECT_THAT(ListedGids(stuck_only.out), Not(::testing::Contains("cli-list-ok")));

  const CliRun committing = Txctl({"--url", Url(), "list", "--state", "committing"});
  ASSERT_EQ(committing.exit_code, 0) << committing;
  EXPECT_THAT(ListedGids(committing.out), ::testing::Contains("cli-list-stuck"));
  EXPECT_THAT(ListedGids(committing.out), Not(::testing::Contains("cli-list-ok")));

  const CliRun sagas = Txctl({"--url", Url(), "list", "--protocol", "saga", "-o", "json"});
  ASSERT_EQ(sagas.exit_code, 0) << sagas;
  EXPECT_THAT(JsonGids(sagas.out), IsEmpty()) << sagas;
  const CliRun twopc = Txctl({"--url", Url(), "list", "--protocol=2pc", "--output=json"});
  ASSERT_EQ(twopc.exit_code, 0) << twopc;
  EXPECT_THAT(JsonGids(twopc.out), ::testing::IsSupersetOf({"cli-list-ok", "cli-list-stuck"}));
  const Json page = ParseObject(twopc.out);
  ASSERT_TRUE(page) << twopc;
  EXPECT_TRUE(page->has("next_cursor"));

  // A bad filter is txcoord's 400, with its message.
  const CliRun bad = Txctl({"--url", Url(), "list", "--limit", "100000"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_THAT(bad.err, HasSubstr("invalid_request (HTTP 400): limit: must be")) << bad;

  fixed->store(true);
  ASSERT_EQ(Txctl({"--url", Url(), "retry", "cli-list-stuck"}).exit_code, 0);
  ASSERT_TRUE(WaitForDocument("cli-list-stuck", IsFinal, "became final"));
}

TEST_F(TxctlTest, ListAllFollowsNextCursorThroughEveryPage) {
  for (int i = 0; i < 5; ++i) {
    const std::string gid = "cli-page-" + std::to_string(i);
    ASSERT_EQ(Txctl({"--url", Url(), "submit", WriteFile(gid + ".json", Submission(gid, true))})
                  .exit_code,
              0);
  }
  const CliRun everything = Txctl({"--url", Url(), "list", "--limit", "1000", "-o", "json"});
  ASSERT_EQ(everything.exit_code, 0) << everything;
  const std::vector<std::string> expected = JsonGids(everything.out);
  ASSERT_GE(expected.size(), 5u);

  const CliRun paged = Txctl({"--url", Url(), "list", "--all", "--limit", "2", "-o", "json"});
  ASSERT_EQ(paged.exit_code, 0) << paged;
  EXPECT_EQ(JsonGids(paged.out), expected) << paged;
  const Json merged = ParseObject(paged.out);
  ASSERT_TRUE(merged);
  EXPECT_TRUE(merged->isNull("next_cursor")) << "every page was read";

  const CliRun table = Txctl({"--url", Url(), "list", "--all", "--limit", "2"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(ListedGids(table.out), expected) << table;
  EXPECT_THAT(table.err, IsEmpty());

  // Without --all, one page, and a word on stderr that more follow.
  const CliRun first = Txctl({"--url", Url(), "list", "--limit", "2"});
  ASSERT_EQ(first.exit_code, 0) << first;
  EXPECT_EQ(ListedGids(first.out),
            std::vector<std::string>(expected.begin(), expected.begin() + 2));
  EXPECT_THAT(first.err, HasSubstr("more transactions follow; --all lists every page"));
}

TEST_F(TxctlTest, RetryFinishesAStuckCommitAndFailsWithThe409OnceItIsFinished) {
  auto fixed = std::make_shared<std::atomic<bool>>(false);
  BreakPaymentCommits(fixed);
  const std::string file =
      WriteFile("r1.json", Submission("cli-retry-1", false, /*retry_max_ms=*/120'000));
  ASSERT_EQ(Txctl({"--url", Url(), "submit", file}).exit_code, 0);
  ASSERT_TRUE(WaitForDocument(
      "cli-retry-1", [](const Json& d) { return BranchNeedsOperator(d, "payment-service"); },
      "waited for an operator"));
  const size_t commits_before = participant_->request_count();

  fixed->store(true);
  const CliRun retried = Txctl({"--url", Url(), "retry", "cli-retry-1"});
  ASSERT_EQ(retried.exit_code, 0) << retried;
  EXPECT_EQ(HeaderValue(retried.out, "gid"), "cli-retry-1") << retried;
  // The longest backoff is two minutes: only the retry can have finished it this soon.
  const Json document = WaitForDocument("cli-retry-1", IsFinal, "became final");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->getValue<std::string>("outcome"), "committed");
  EXPECT_GT(participant_->request_count(), commits_before);

  const CliRun again = Txctl({"--url", Url(), "retry", "cli-retry-1", "-o", "json"});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_THAT(again.out, IsEmpty());
  EXPECT_THAT(again.err, HasSubstr("conflict (HTTP 409)")) << again;
  EXPECT_THAT(again.err, HasSubstr("cli-retry-1")) << again;

  const CliRun unknown = Txctl({"--url", Url(), "retry", "cli-nobody"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_THAT(unknown.err, HasSubstr("not_found (HTTP 404)")) << unknown;
}

TEST_F(TxctlTest, AbortBeforeTheDecisionAbortsAndAfterItFailsWithThe409) {
  // Prepares of this transaction take 2 s: the abort comes before the decision.
  participant_->SetHandler([](const CapturedRequest& request) {
    Answer answer;
    if (request.Header("Txc-Op") == "prepare" && request.Header("Txc-Gid") == "cli-abort-op-1") {
      answer.delay = 2000ms;
    }
    return answer;
  });
  ASSERT_EQ(
      Txctl({"--url", Url(), "submit", WriteFile("a1.json", Submission("cli-abort-op-1", false))})
          .exit_code,
      0);
  const CliRun aborted =
      Txctl({"--url", Url(), "abort", "cli-abort-op-1", "--reason", "customer cancelled"});
  ASSERT_EQ(aborted.exit_code, 0) << aborted;
  EXPECT_EQ(HeaderValue(aborted.out, "gid"), "cli-abort-op-1") << aborted;
  EXPECT_THAT(HeaderValue(aborted.out, "state"), ::testing::AnyOf("aborting", "aborted"))
      << aborted;
  const Json document = WaitForDocument("cli-abort-op-1", IsFinal, "became final");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->getValue<std::string>("outcome"), "aborted");

  // After the decision (here: the end) abort is refused, and txctl says so.
  const CliRun late = Txctl({"--url", Url(), "abort", "cli-abort-op-1"});
  EXPECT_EQ(late.exit_code, 1) << late;
  EXPECT_THAT(late.out, IsEmpty());
  EXPECT_THAT(late.err, HasSubstr("conflict (HTTP 409)")) << late;

  ASSERT_EQ(
      Txctl({"--url", Url(), "submit", WriteFile("a2.json", Submission("cli-abort-op-2", true))})
          .exit_code,
      0);
  const CliRun committed = Txctl({"--url", Url(), "abort", "cli-abort-op-2"});
  EXPECT_EQ(committed.exit_code, 1) << committed;
  EXPECT_THAT(committed.err, HasSubstr("conflict (HTTP 409)")) << committed;
}

TEST_F(TxctlTest, ResolveSettlesABranchByHandAndTheTableShowsWhoAndWhy) {
  auto fixed = std::make_shared<std::atomic<bool>>(false);
  BreakPaymentCommits(fixed);
  const std::string file =
      WriteFile("s1.json", Submission("cli-resolve-1", false, /*retry_max_ms=*/120'000));
  ASSERT_EQ(Txctl({"--url", Url(), "submit", file}).exit_code, 0);
  ASSERT_TRUE(WaitForDocument(
      "cli-resolve-1", [](const Json& d) { return BranchNeedsOperator(d, "payment-service"); },
      "waited for an operator"));

  // An unknown branch: txcoord's 400, with its message.
  const CliRun unknown = Txctl({"--url", Url(), "resolve", "cli-resolve-1", "--branch", "nope",
                                "--outcome", "committed", "--reason", "x"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_THAT(unknown.err, HasSubstr("HTTP 400")) << unknown;
  EXPECT_THAT(unknown.err, HasSubstr("nope")) << unknown;

  const CliRun resolved =
      Txctl({"--url", Url(), "resolve", "cli-resolve-1", "--branch", "payment-service", "--outcome",
             "committed", "--reason", "committed in the payment console"});
  ASSERT_EQ(resolved.exit_code, 0) << resolved;
  EXPECT_EQ(HeaderValue(resolved.out, "gid"), "cli-resolve-1") << resolved;
  // The history: who (nobody in particular without access control) and why.
  EXPECT_THAT(resolved.out, MatchesRegex("(.|\n)*\nAT +ACTION +BY +BRANCH +OUTCOME +REASON\n"
                                         "[^\n]+ +resolve +[^ ]+ +payment-service +committed +"
                                         "committed in the payment console\n(.|\n)*"))
      << resolved;
  const Json document = WaitForDocument("cli-resolve-1", IsFinal, "became final");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->getValue<std::string>("outcome"), "committed");

  const CliRun again = Txctl({"--url", Url(), "resolve", "cli-resolve-1", "--branch",
                              "payment-service", "--outcome", "committed", "--reason", "x"});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_THAT(again.err, HasSubstr("conflict (HTTP 409)")) << again;
}

TEST_F(TxctlTest, ATokenGoesWithEveryCommandAndIsNeverPrinted) {
  const std::string operate = "op-3b9e1f7a5c2d8e4b6a0f9c1d3e5b";
  const std::string read = "rd-6c2a8e4f0b9d1e3a7c5f2b8d4e6a";
  const std::string tokens =
      WriteFile("tokens", "operate alice " + operate + "\nread grafana " + read + "\n");
  ASSERT_EQ(::chmod(tokens.c_str(), 0600), 0);
  const uint16_t port = FreeLoopbackPort();
  ChildProcess::Options options;
  options.program = TXCOORD_PATH;
  options.environment = EnvironmentWithoutTxc();
  options.environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(port);
  options.environment["TXC_LOG_DIR"] = scratch_->File("auth-data");
  options.environment["TXC_NODE_ID"] = "txctlauth" + std::to_string(getpid());
  options.environment["TXC_AUTH_TOKENS_FILE"] = tokens;
  options.stdout_path = scratch_->File("auth-txcoord.stdout");
  options.stderr_path = scratch_->File("auth-txcoord.stderr");
  ChildProcess secured(options);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (!Ready(port)) {
    ASSERT_TRUE(secured.Running()) << ReadFileOrEmpty(options.stderr_path);
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(20ms);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::vector<CliRun> runs;
  auto run = [&](std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), {"--url", url});
    runs.push_back(Txctl(args, env));
    return runs.back();
  };

  const CliRun anonymous = run({"list"});
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous;
  EXPECT_THAT(anonymous.err, HasSubstr("unauthorized (HTTP 401)")) << anonymous;
  const CliRun wrong = run({"--token", "wrong-token-0123456789", "info"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong;
  const CliRun blank = run({"list"}, {{"TXC_TOKEN", "has a blank"}});
  EXPECT_EQ(blank.exit_code, 2) << blank;
  EXPECT_THAT(blank.err, HasSubstr("holds a blank"));

  // submit needs operate; the read token reads.
  EXPECT_EQ(
      run({"--token", read, "submit", WriteFile("t-read.json", Submission("cli-token-1", true))})
          .exit_code,
      1);
  EXPECT_THAT(runs.back().err, HasSubstr("forbidden (HTTP 403)"));
  auto fixed = std::make_shared<std::atomic<bool>>(false);
  BreakPaymentCommits(fixed);
  const CliRun submitted =
      run({"submit", WriteFile("t-op.json", Submission("cli-token-1", false, 120'000))},
          {{"TXC_TOKEN", operate}});
  ASSERT_EQ(submitted.exit_code, 0) << submitted;
  ASSERT_TRUE(WaitForDocument(
      "cli-token-1", [](const Json& d) { return BranchNeedsOperator(d, "payment-service"); },
      "waited for an operator", read, port));
  EXPECT_EQ(run({"list", "--stuck"}, {{"TXC_TOKEN", read}}).exit_code, 0);
  EXPECT_THAT(ListedGids(runs.back().out), ::testing::Contains("cli-token-1"));
  EXPECT_EQ(run({"--token=" + read, "get", "cli-token-1"}).exit_code, 0);
  EXPECT_EQ(run({"--token", read, "info"}).exit_code, 0);

  for (const char* verb : {"retry", "abort"}) {
    const CliRun refused = run({"--token", read, verb, "cli-token-1"});
    EXPECT_EQ(refused.exit_code, 1) << refused;
    EXPECT_THAT(refused.err, HasSubstr("forbidden (HTTP 403)")) << refused;
    EXPECT_THAT(refused.err, HasSubstr("\"grafana\" has the read role")) << refused;
  }
  // --token wins over $TXC_TOKEN; the resolve is recorded with the operate token's name.
  const CliRun resolved =
      run({"--token", operate, "resolve", "cli-token-1", "--branch", "payment-service", "--outcome",
           "committed", "--reason", "checked by hand"},
          {{"TXC_TOKEN", read}});
  ASSERT_EQ(resolved.exit_code, 0) << resolved;
  EXPECT_THAT(resolved.out, MatchesRegex("(.|\n)*\n[^\n]+ +resolve +alice +payment-service +"
                                         "committed +checked by hand\n(.|\n)*"))
      << resolved;
  ASSERT_TRUE(WaitForDocument("cli-token-1", IsFinal, "became final", read, port));

  for (const CliRun& r : runs) {
    for (const std::string& token : {operate, read, std::string("wrong-token-0123456789")}) {
      EXPECT_THAT(r.out + r.err, Not(HasSubstr(token))) << r;
    }
  }
  secured.Signal(SIGTERM);
  EXPECT_EQ(secured.WaitForExit(20s), 0);
  for (const std::string& output :
       {ReadFileOrEmpty(options.stdout_path), ReadFileOrEmpty(options.stderr_path)}) {
    EXPECT_THAT(output, Not(HasSubstr(operate)));
    EXPECT_THAT(output, Not(HasSubstr(read)));
  }
}

}  // namespace
}  // namespace txc::testing
