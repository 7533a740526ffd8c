// The harness of the API end-to-end tests: txcoord as a process on a free loopback port with its
// own log directory (Txcoord), scripted HTTP participants inside the test process (Participant,
// on TestHttpServer) that journal every request they get, a small HTTP client (Exchange), JSON
// and Prometheus-text readers. Header-only: each e2e test executable includes it once and
// defines TXCOORD_PATH.
#pragma once

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc::testing {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

inline constexpr milliseconds kStartTimeout{20'000};
inline constexpr milliseconds kExitTimeout{20'000};
// Success paths are given plenty of time; only the tests about a timeout use short ones.
inline constexpr milliseconds kFinalTimeout{30'000};
inline constexpr milliseconds kGateTimeout{60'000};

using Json = Poco::JSON::Object::Ptr;

// ---------------------------------------------------------------------------------------------
// JSON

inline Json ParseObject(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(text);
    if (parsed.type() != typeid(Json)) return nullptr;
    return parsed.extract<Json>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

// The JSON text in one canonical form (keys sorted, no spaces), to compare bodies by meaning.
inline std::string Canonical(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    // A Poco::JSON::Object without key-order preservation keeps its keys sorted.
    Poco::Dynamic::Var parsed = parser.parse(text);
    std::ostringstream out;
    Poco::JSON::Stringifier::condense(parsed, out);
    return out.str();
  } catch (const Poco::Exception& e) {
    return "<not JSON: " + e.displayText() + ": " + text + ">";
  }
}

inline bool IsNull(const Json& object, const std::string& key) {
  return !object || !object->has(key) || object->isNull(key);
}

// A string member, "" when absent or null.
inline std::string Text(const Json& object, const std::string& key) {
  if (IsNull(object, key)) return "";
  return object->get(key).convert<std::string>();
}

inline bool Flag(const Json& object, const std::string& key) {
  return !IsNull(object, key) && object->get(key).convert<bool>();
}

inline int64_t Number(const Json& object, const std::string& key) {
  if (IsNull(object, key)) return -1;
  return object->get(key).convert<int64_t>();
}

inline Json Branch(const Json& document, const std::string& name) {
  if (!document || !document->has("branches")) return nullptr;
  auto branches = document->getArray("branches");
  for (unsigned i = 0; branches && i < branches->size(); ++i) {
    Json branch = branches->getObject(i);
    if (Text(branch, "name") == name) return branch;
  }
  return nullptr;
}

inline std::vector<std::string> BranchStates(const Json& document) {
  std::vector<std::string> states;
  if (!document || !document->has("branches")) return states;
  auto branches = document->getArray("branches");
  for (unsigned i = 0; branches && i < branches->size(); ++i) {
    states.push_back(Text(branches->getObject(i), "state"));
  }
  return states;
}

// ---------------------------------------------------------------------------------------------
// HTTP client

struct Reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lowercase
  std::string transport_error;                 // set when no answer came

  Json json() const { return ParseObject(body); }
  std::string Header(const std::string& name) const {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto it = headers.find(lower);
    return it == headers.end() ? "" : it->second;
  }
  std::string ErrorCode() const { return Text(ErrorObject(), "code"); }
  std::string ErrorMessage() const { return Text(ErrorObject(), "message"); }

 private:
  Json ErrorObject() const {
    Json object = json();
    return object && object->has("error") ? object->getObject("error") : nullptr;
  }
};

inline std::ostream& operator<<(std::ostream& out, const Reply& reply) {
  if (!reply.transport_error.empty()) return out << "(no answer: " << reply.transport_error << ")";
  return out << reply.status << " " << reply.body;
}

// `headers` are sent besides Content-Type and Content-Length (e.g. Authorization).
inline Reply Exchange(uint16_t port, const std::string& method, const std::string& path,
                      const std::string& body, milliseconds timeout = 60s,
                      const std::map<std::string, std::string>& headers = {}) {
  Reply reply;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(static_cast<long>(timeout.count() / 1000),
                                      static_cast<long>(timeout.count() % 1000) * 1000));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (method != "GET") {
      request.setContentLength(static_cast<std::streamsize>(body.size()));
      if (!body.empty()) request.setContentType("application/json");
    }
    std::ostream& out = session.sendRequest(request);
    out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Poco::StreamCopier::copyToString(in, reply.body);
    reply.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      reply.headers[lower] = value;
    }
  } catch (const Poco::Exception& e) {
    reply.transport_error = e.displayText();
  }
  return reply;
}

// Polls `condition` every `period` until it holds or `timeout` passes; whether it held.
inline bool Eventually(const std::function<bool()>& condition, milliseconds timeout,
                       milliseconds period = 100ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(period);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition

// The sum of the samples of `name` whose labels include every pair in `labels` (0 when none).
inline double MetricValue(const std::string& exposition, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  double sum = 0;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos || line.compare(0, name_end, name) != 0 ||
        name_end != name.size()) {
      continue;
    }
    std::map<std::string, std::string> have;
    size_t pos = name_end;
    if (line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        const size_t equals = line.find('=', pos);
        if (equals == std::string::npos || equals + 1 >= line.size()) break;
        const std::string key = line.substr(pos, equals - pos);
        std::string value;
        size_t i = equals + 2;  // after ="
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) ++i;
          value.push_back(line[i]);
        }
        have[key] = value;
        pos = i + 1;
        if (pos < line.size() && line[pos] == ',') ++pos;
      }
      ++pos;  // '}'
    }
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = have.find(key);
      match = match && it != have.end() && it->second == value;
    }
    if (!match) continue;
    try {
      sum += std::stod(line.substr(pos));
    } catch (const std::exception&) {
      ADD_FAILURE() << "unreadable sample: " << line;
    }
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Participants

// Opens once; waiting is bounded so that a test that fails midway cannot hang.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool Wait(milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Every request any participant of a test received, in arrival order.
class Journal {
 public:
  struct Entry {
    std::string participant;
    std::string gid;
    std::string branch;
    std::string op;
  };
  void Add(Entry entry) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(entry));
  }
  std::vector<Entry> For(const std::string& gid) const {
    std::lock_guard lock(mu_);
    std::vector<Entry> found;
    for (const auto& entry : entries_) {
      if (entry.gid == gid) found.push_back(entry);
    }
    return found;
  }
  // "branch:op" of every request for gid, in order.
  std::vector<std::string> Calls(const std::string& gid) const {
    std::vector<std::string> calls;
    for (const auto& entry : For(gid)) calls.push_back(entry.branch + ":" + entry.op);
    return calls;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// One HTTP participant: a TestHttpServer whose answers are scripted per operation (the Txc-Op
// header); 200 "ok" to anything without a script. Its URLs are /<name>/<op>.
class Participant {
 public:
  // `nth` counts the requests of this op for this gid, from 1.
  using Script = std::function<Answer(const CapturedRequest& request, int nth)>;

  Participant(std::string name, Journal* journal) : name_(std::move(name)), journal_(journal) {
    server_.SetHandler([this](const CapturedRequest& request) { return Handle(request); });
  }
  ~Participant() {
    std::lock_guard lock(mu_);
    for (const auto& gate : gates_) gate->Open();  // blocked handlers end before the server
  }
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  void On(const std::string& op, Script script) {
    std::lock_guard lock(mu_);
    scripts_[op] = std::move(script);
  }
  void Respond(const std::string& op, int status, std::string body = "") {
    On(op, [status, body](const CapturedRequest&, int) {
      Answer answer;
      answer.status = status;
      answer.body = body;
      return answer;
    });
  }
  // Requests for `op` wait until the gate opens (or kGateTimeout), then get 200.
  std::shared_ptr<Gate> Block(const std::string& op) {
    auto gate = std::make_shared<Gate>();
    {
      std::lock_guard lock(mu_);
      gates_.push_back(gate);
    }
    On(op, [gate](const CapturedRequest&, int) {
      gate->Wait(kGateTimeout);
      return Answer{};
    });
    return gate;
  }

  const std::string& name() const { return name_; }
  std::string Url(const std::string& op) const { return server_.Url("/" + name_ + "/" + op); }
  uint16_t port() const { return server_.port(); }

  // The requests for gid (and op, when given), in arrival order.
  std::vector<CapturedRequest> Requests(const std::string& gid, const std::string& op = "") const {
    std::vector<CapturedRequest> found;
    for (const auto& request : server_.requests()) {
      if (request.Header("Txc-Gid") == gid && (op.empty() || request.Header("Txc-Op") == op)) {
        found.push_back(request);
      }
    }
    return found;
  }
  size_t Count(const std::string& gid, const std::string& op) const {
    return Requests(gid, op).size();
  }
  size_t TotalRequests() const { return server_.request_count(); }

  // The branch object of a 2pc submission for this participant.
  std::string BranchJson(const std::string& branch) const {
    return "{\"name\":\"" + branch + "\",\"prepare\":{\"url\":\"" + Url("prepare") +
           "\"},\"commit\":{\"url\":\"" + Url("commit") + "\"},\"abort\":{\"url\":\"" +
           Url("abort") + "\"}}";
  }

 private:
  Answer Handle(const CapturedRequest& request) {
    const std::string op = request.Header("Txc-Op");
    const std::string gid = request.Header("Txc-Gid");
    if (journal_ != nullptr) journal_->Add({name_, gid, request.Header("Txc-Branch"), op});
    Script script;
    int nth = 0;
    {
      std::lock_guard lock(mu_);
      nth = ++counts_[{gid, op}];
      auto it = scripts_.find(op);
      if (it != scripts_.end()) script = it->second;
    }
    if (!script) return Answer{};
    return script(request, nth);
  }

  const std::string name_;
  Journal* const journal_;
  std::mutex mu_;
  std::map<std::string, Script> scripts_;
  std::map<std::pair<std::string, std::string>, int> counts_;
  std::vector<std::shared_ptr<Gate>> gates_;
  TestHttpServer server_;  // last: stopped before the members its handlers use are destroyed
};

// A submission.
struct Spec {
  std::string gid;
  std::vector<std::string> branches;  // branch objects as JSON text
  int64_t timeout_ms = 20'000;
  bool wait = true;
  int64_t retry_initial_ms = 20;
  int64_t retry_max_ms = 200;
  std::string protocol = "2pc";

  std::string ToJson() const {
    std::string json = "{";
    if (!gid.empty()) json += "\"gid\":\"" + gid + "\",";
    json += "\"protocol\":\"" + protocol + "\",\"timeout_ms\":" + std::to_string(timeout_ms) +
            ",\"wait\":" + (wait ? "true" : "false") +
            ",\"retry\":{\"initial_ms\":" + std::to_string(retry_initial_ms) +
            ",\"max_ms\":" + std::to_string(retry_max_ms) + "},\"branches\":[";
    for (size_t i = 0; i < branches.size(); ++i) json += (i > 0 ? "," : "") + branches[i];
    return json + "]}";
  }
};

// ---------------------------------------------------------------------------------------------
// txcoord

class Txcoord {
 public:
  Txcoord(const TempDir& scratch, const std::string& name, const std::string& data_dir,
          const std::string& node_id, const std::map<std::string, std::string>& env)
      : port_(FreeLoopbackPort()) {
    ChildProcess::Options options;
    options.program = TXCOORD_PATH;
    options.environment = CurrentEnvironment();
    // The test decides the whole configuration: none of the runner's TXC_* variables leak in.
    for (auto it = options.environment.begin(); it != options.environment.end();) {
      it = it->first.rfind("TXC_", 0) == 0 ? options.environment.erase(it) : std::next(it);
    }
    options.environment["TXC_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    options.environment["TXC_LOG_DIR"] = data_dir;
    options.environment["TXC_NODE_ID"] = node_id;
    options.environment["TXC_PARTICIPANTS_ALLOW"] = "http://127.0.0.1:*";
    options.environment["TXC_SHUTDOWN_GRACE_MS"] = "5000";
    for (const auto& [key, value] : env) options.environment[key] = value;
    options.stdout_path = scratch.File(name + ".stdout");
    options.stderr_path = scratch.File(name + ".stderr");
    process_ = std::make_unique<ChildProcess>(options);
  }

  uint16_t port() const { return port_; }
  bool Running() { return process_->Running(); }
  std::string Stderr() const { return ReadFileOrEmpty(process_->stderr_path()); }
  std::string Stdout() const { return ReadFileOrEmpty(process_->stdout_path()); }

  ::testing::AssertionResult WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    std::string last = "no answer";
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_->Running()) {
        return ::testing::AssertionFailure() << "txcoord exited before it was ready; stderr:\n"
                                             << Stderr();
      }
      Reply reply = Exchange(port_, "GET", "/readyz", "", 1s);
      if (reply.status == 200) return ::testing::AssertionSuccess();
      last = reply.transport_error.empty() ? reply.body : reply.transport_error;
      std::this_thread::sleep_for(20ms);
    }
    return ::testing::AssertionFailure()
           << "/readyz never answered 200 (last: " << last << "); stderr:\n"
           << Stderr();
  }

  // SIGTERM, then the exit code (nullopt when it did not exit in time).
  std::optional<int> Terminate() {
    process_->Signal(SIGTERM);
    return process_->WaitForExit(kExitTimeout);
  }

  // Headers sent with every request below, e.g. {{"Authorization", "Bearer ..."}} when access
  // control is on.
  void SetHeaders(std::map<std::string, std::string> headers) { headers_ = std::move(headers); }

  Reply Submit(const std::string& body) {
    return Exchange(port_, "POST", "/v1/transactions", body, 60s, headers_);
  }
  Reply Submit(const Spec& spec) { return Submit(spec.ToJson()); }
  Reply Get(const std::string& path) { return Exchange(port_, "GET", path, "", 60s, headers_); }
  Reply Post(const std::string& path, const std::string& body = "") {
    return Exchange(port_, "POST", path, body, 60s, headers_);
  }
  Reply Document(const std::string& gid) { return Get("/v1/transactions/" + gid); }
  std::string Metrics() { return Get("/metrics").body; }

  // Polls the document of gid until `done` holds; nullptr (and a failure) when it never does.
  Json WaitForDocument(const std::string& gid, const std::function<bool(const Json&)>& done,
                       const std::string& what, milliseconds timeout = kFinalTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Reply last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = Document(gid);
      if (last.status == 200) {
        Json document = last.json();
        if (document && done(document)) return document;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "transaction " << gid << " never " << what << " within " << timeout.count()
                  << " ms; last answer: " << last;
    return nullptr;
  }
  Json WaitFinal(const std::string& gid, milliseconds timeout = kFinalTimeout) {
    return WaitForDocument(
        gid, [](const Json& d) { return !IsNull(d, "outcome"); }, "became final", timeout);
  }

 private:
  uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
  std::map<std::string, std::string> headers_;
};

// ---------------------------------------------------------------------------------------------
// The fixture

// A txcoord of its own per test: a node_id of its own (so its in-doubt scan never touches another
// test's prepared branches), a scratch directory, and a journal of every participant request.
class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    node_id_ = "e2e" + std::to_string(getpid()) + "t" + std::to_string(++counter);
  }

  void TearDown() override {
    if (txc_ == nullptr) return;
    if (HasFailure()) std::cerr << "---- txcoord stderr ----\n" << txc_->Stderr() << "----\n";
    StopTxcoord();
  }

  std::string DataDir() const { return scratch_.File("data"); }

  void StartTxcoord(const std::map<std::string, std::string>& env = {}) {
    env_ = env;
    txc_ = std::make_unique<Txcoord>(scratch_, "txcoord" + std::to_string(++starts_), DataDir(),
                                     node_id_, env);
    ASSERT_TRUE(txc_->WaitReady());
  }

  // SIGTERM; a clean stop is exit code 0.
  void StopTxcoord() {
    const auto start = std::chrono::steady_clock::now();
    const std::optional<int> code = txc_->Terminate();
    const auto took =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    if (took > 3s) std::cerr << "note: txcoord took " << took.count() << " ms to stop\n";
    EXPECT_TRUE(code.has_value()) << "txcoord did not exit within " << kExitTimeout.count()
                                  << " ms of SIGTERM (shutdown_grace_ms is 5000); killed";
    EXPECT_EQ(code, 0) << "txcoord did not stop cleanly on SIGTERM; stderr:\n" << txc_->Stderr();
    txc_.reset();  // SIGKILL if it still runs
  }

  // Starts txcoord again on the same log directory (a new port).
  void RestartTxcoord() {
    StopTxcoord();
    StartTxcoord(env_);
  }

  Txcoord& txc() { return *txc_; }

  TempDir scratch_;
  Journal journal_;
  std::string node_id_;
  std::map<std::string, std::string> env_;
  int starts_ = 0;
  std::unique_ptr<Txcoord> txc_;
};

}  // namespace txc::testing
