// txctl submit and get against the real txcoord: txcoord runs as a process on a free loopback
// port with its own log directory; the HTTP participants of the 2pc transactions are one
// TestHttpServer inside this process; txctl runs as a process per command, and the test reads
// its exit code, stdout and stderr.
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

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
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

// The branch rows of a txctl table, each split at its column boundaries as the NAME... header
// line sets them; empty when there is no such header.
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
  for (size_t i = header + 1; i < lines.size(); ++i) {
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

  // A 2pc submission with two HTTP branches on the participant server.
  static std::string Submission(const std::string& gid, std::optional<bool> wait) {
    auto branch = [](const std::string& name) {
      const std::string base = participant_->Url("/" + name + "/");
      return "{\"name\":\"" + name + "\",\"prepare\":{\"url\":\"" + base +
             "prepare\",\"body\":{\"amount\":30}},\"commit\":{\"url\":\"" + base +
             "commit\"},\"abort\":{\"url\":\"" + base + "abort\"}}";
    };
    std::string json = "{\"gid\":\"" + gid + "\",\"protocol\":\"2pc\",\"timeout_ms\":20000,";
    if (wait) json += std::string("\"wait\":") + (*wait ? "true" : "false") + ",";
    json += "\"retry\":{\"initial_ms\":20,\"max_ms\":200},\"branches\":[" + branch("order") + "," +
            branch("payment-service") + "]}";
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
      {{"health", "-o", "json"}, "-o/--output applies to submit and get"},
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
  for (const char* text : {"submit FILE", "get GID", "--wait", "--no-wait", "-o, --output"}) {
    EXPECT_THAT(help.out, HasSubstr(text));
  }
}

TEST_F(TxctlTest, NoCoordinatorIsAConnectionError) {
  const CliRun run =
      Txctl({"--url", "http://127.0.0.1:" + std::to_string(ClosedPort()), "get", "g"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_THAT(run.err, HasSubstr("cannot reach txcoord")) << run;
}

}  // namespace
}  // namespace txc::testing
