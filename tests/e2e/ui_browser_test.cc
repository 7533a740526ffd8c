// The operator web page (/ui/, README "The web page") in a real browser: txcoord runs as a
// process (api_harness.h), 2pc HTTP participants are scripted inside this process, and headless
// Chromium is driven through chromedriver's W3C WebDriver HTTP API (a Poco HTTP client, JSON
// bodies). Every wait is bounded; a page that never shows what it should fails the test with the
// last text it showed.
//
// Chromium and chromedriver come from the Debian packages chromium and chromium-driver
// (scripts/setup.sh installs them); without them these tests fail, naming the packages.
#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/e2e/api_harness.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/test_http_server.h"

namespace txc::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Matcher;
using ::testing::Not;
using ::testing::StartsWith;

// Where Debian's chromium and chromium-driver packages put them.
constexpr char kChromiumPath[] = "/usr/bin/chromium";
constexpr char kChromedriverPath[] = "/usr/bin/chromedriver";
// The key of a W3C element reference (WebDriver spec, "Elements").
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";

// The page refreshes every 3 s; a change it has to show gets several refreshes.
constexpr milliseconds kPageTimeout{20'000};

std::string JsonText(const Poco::JSON::Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

// One WebDriver command's answer: `value` on success; the W3C error code and message otherwise
// (or the transport failure, when chromedriver did not answer at all).
struct WebDriverAnswer {
  Poco::Dynamic::Var value;
  std::string error;
  std::string message;

  bool ok() const { return error.empty(); }
  std::string Describe() const { return error + (message.empty() ? "" : ": " + message); }
};

// chromedriver as a child process, and one headless Chromium session in it.
class Browser {
 public:
  explicit Browser(const TempDir& scratch) : scratch_(scratch) {}
  ~Browser() { Quit(); }
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  ::testing::AssertionResult Start() {
    for (const auto& [path, package] :
         {std::pair{kChromiumPath, "chromium"}, std::pair{kChromedriverPath, "chromium-driver"}}) {
      if (::access(path, X_OK) != 0) {
        return ::testing::AssertionFailure()
               << path << " is missing (Debian package " << package
               << "): the browser tests need the packages chromium and chromium-driver; "
                  "install them with `apt-get install chromium chromium-driver` or "
                  "scripts/setup.sh";
      }
    }
    port_ = FreeLoopbackPort();
    ChildProcess::Options options;
    options.program = kChromedriverPath;
    options.args = {"--port=" + std::to_string(port_)};
    options.environment = CurrentEnvironment();
    options.stdout_path = scratch_.File("chromedriver.stdout");
    options.stderr_path = scratch_.File("chromedriver.stderr");
    driver_ = std::make_unique<ChildProcess>(options);

    const bool ready = Eventually(
        [&] {
          if (!driver_->Running()) return true;  // reported below
          const Json status = Exchange(port_, "GET", "/status", "", 1s).json();
          return status && status->has("value") && Flag(status->getObject("value"), "ready");
        },
        20s, 50ms);
    if (!ready || !driver_->Running()) {
      return ::testing::AssertionFailure()
             << "chromedriver did not become ready within 20 s; its output:\n"
             << ReadFileOrEmpty(driver_->stdout_path()) << ReadFileOrEmpty(driver_->stderr_path());
    }

    Poco::JSON::Array::Ptr args = new Poco::JSON::Array();
    for (const std::string& arg :
         {std::string("--headless=new"), std::string("--no-sandbox"), std::string("--disable-gpu"),
          std::string("--disable-dev-shm-usage"), std::string("--window-size=1280,1024"),
          "--user-data-dir=" + scratch_.File("chromium-profile")}) {
      args->add(arg);
    }
    Json chrome_options = new Poco::JSON::Object();
    chrome_options->set("binary", std::string(kChromiumPath));
    chrome_options->set("args", args);
    Json logging = new Poco::JSON::Object();
    logging->set("browser", "ALL");  // so that script errors can be read back (ScriptErrors)
    Json always = new Poco::JSON::Object();
    always->set("browserName", "chrome");
    always->set("goog:chromeOptions", chrome_options);
    always->set("goog:loggingPrefs", logging);
    Json capabilities = new Poco::JSON::Object();
    capabilities->set("alwaysMatch", always);
    Json body = new Poco::JSON::Object();
    body->set("capabilities", capabilities);
    const Reply created = Exchange(port_, "POST", "/session", JsonText(body), 60s);
    const Json answer = created.json();
    Json value = answer && answer->has("value") ? answer->getObject("value") : nullptr;
    session_ = Text(value, "sessionId");
    if (created.status != 200 || session_.empty()) {
      return ::testing::AssertionFailure() << "chromedriver could not start " << kChromiumPath
                                           << ": " << created << "\nchromedriver output:\n"
                                           << ReadFileOrEmpty(driver_->stderr_path());
    }
    return ::testing::AssertionSuccess();
  }

  // Ends the session (Chromium exits with it), then chromedriver.
  void Quit() {
    if (!session_.empty()) {
      Exchange(port_, "DELETE", "/session/" + session_, "", 20s);
      session_.clear();
    }
    if (driver_ != nullptr) {
      driver_->Signal(SIGTERM);
      driver_->WaitForExit(5s);
      driver_.reset();  // SIGKILL if it still runs
    }
  }

  // A command of the session: `path` is what follows /session/{id}.
  WebDriverAnswer Command(const std::string& method, const std::string& path,
                          const std::string& body = "") {
    WebDriverAnswer result;
    const Reply reply = Exchange(port_, method, "/session/" + session_ + path,
                                 method == "GET" ? "" : (body.empty() ? "{}" : body), 60s);
    if (!reply.transport_error.empty()) {
      result.error = "no answer from chromedriver";
      result.message = reply.transport_error;
      return result;
    }
    const Json answer = reply.json();
    if (!answer || !answer->has("value")) {
      result.error = "unreadable answer";
      result.message = reply.body;
      return result;
    }
    result.value = answer->get("value");
    if (reply.status != 200) {
      const Json error =
          result.value.type() == typeid(Json) ? result.value.extract<Json>() : nullptr;
      result.error = Text(error, "error");
      result.message = Text(error, "message");
      if (result.error.empty()) result.error = "HTTP " + std::to_string(reply.status);
    }
    return result;
  }

  WebDriverAnswer Navigate(const std::string& url) {
    Json body = new Poco::JSON::Object();
    body->set("url", url);
    return Command("POST", "/url", JsonText(body));
  }

  // The element references matching a CSS selector (empty when none, or on an error: last_error).
  std::vector<std::string> FindAll(const std::string& css) {
    Json body = new Poco::JSON::Object();
    body->set("using", "css selector");
    body->set("value", css);
    const WebDriverAnswer answer = Command("POST", "/elements", JsonText(body));
    std::vector<std::string> found;
    if (!answer.ok()) {
      last_error_ = css + ": " + answer.Describe();
      return found;
    }
    const auto list = answer.value.extract<Poco::JSON::Array::Ptr>();
    for (unsigned i = 0; list && i < list->size(); ++i) {
      found.push_back(Text(list->getObject(i), kElementKey));
    }
    if (found.empty()) last_error_ = css + ": no such element";
    return found;
  }

  std::optional<std::string> Find(const std::string& css) {
    std::vector<std::string> found = FindAll(css);
    if (found.empty()) return std::nullopt;
    return found.front();
  }

  WebDriverAnswer OnElement(const std::string& method, const std::string& element,
                            const std::string& what, const std::string& body = "") {
    return Command(method, "/element/" + element + what, body);
  }

  // The rendered text of the first element matching `css`; nullopt (and last_error) when there
  // is none or it went stale between finding and reading.
  std::optional<std::string> TextOf(const std::string& css) {
    const std::optional<std::string> element = Find(css);
    if (!element) return std::nullopt;
    const WebDriverAnswer answer = OnElement("GET", *element, "/text");
    if (!answer.ok()) {
      last_error_ = css + ": " + answer.Describe();
      return std::nullopt;
    }
    return answer.value.convert<std::string>();
  }

  std::optional<bool> Displayed(const std::string& css) {
    const std::optional<std::string> element = Find(css);
    if (!element) return std::nullopt;
    const WebDriverAnswer answer = OnElement("GET", *element, "/displayed");
    if (!answer.ok()) return std::nullopt;
    return answer.value.convert<bool>();
  }

  // Runs `script` (a function body) in the page; its return value.
  WebDriverAnswer Script(const std::string& script) {
    Json body = new Poco::JSON::Object();
    body->set("script", script);
    body->set("args", Poco::JSON::Array::Ptr(new Poco::JSON::Array()));
    return Command("POST", "/execute/sync", JsonText(body));
  }

  // A list of strings the script returns; nullopt on an error.
  std::optional<std::vector<std::string>> Strings(const std::string& script) {
    const WebDriverAnswer answer = Script(script);
    if (!answer.ok()) {
      last_error_ = answer.Describe();
      return std::nullopt;
    }
    std::vector<std::string> strings;
    const auto list = answer.value.extract<Poco::JSON::Array::Ptr>();
    for (unsigned i = 0; list && i < list->size(); ++i) {
      strings.push_back(list->get(i).convert<std::string>());
    }
    return strings;
  }

  // Clicks the first element matching `css`, finding it again while the page re-renders it
  // (stale reference) or it is not there or clickable yet.
  ::testing::AssertionResult Click(const std::string& css, milliseconds timeout = kPageTimeout) {
    std::string last = "never found";
    const bool clicked = Eventually(
        [&] {
          const std::optional<std::string> element = Find(css);
          if (!element) {
            last = last_error_;
            return false;
          }
          const WebDriverAnswer answer = OnElement("POST", *element, "/click");
          last = answer.Describe();
          return answer.ok();
        },
        timeout, 100ms);
    if (clicked) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "could not click " << css << ": " << last;
  }

  // Replaces the text of the input matching `css` with `text`.
  ::testing::AssertionResult Type(const std::string& css, const std::string& text,
                                  milliseconds timeout = kPageTimeout) {
    std::string last = "never found";
    Json body = new Poco::JSON::Object();
    body->set("text", text);
    const bool typed = Eventually(
        [&] {
          const std::optional<std::string> element = Find(css);
          if (!element) {
            last = last_error_;
            return false;
          }
          WebDriverAnswer answer = OnElement("POST", *element, "/clear");
          if (answer.ok()) answer = OnElement("POST", *element, "/value", JsonText(body));
          last = answer.Describe();
          return answer.ok();
        },
        timeout, 100ms);
    if (typed) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "could not type into " << css << ": " << last;
  }

  // The browser's log entries that report script errors or blocked content (a Content Security
  // Policy violation included); failed network requests (the 401s, 403s and 409s the tests
  // provoke) are left out.
  std::vector<std::string> ScriptErrors() {
    Json body = new Poco::JSON::Object();
    body->set("type", "browser");
    const WebDriverAnswer answer = Command("POST", "/se/log", JsonText(body));
    std::vector<std::string> errors;
    if (!answer.ok()) {
      errors.push_back("the browser log could not be read: " + answer.Describe());
      return errors;
    }
    const auto entries = answer.value.extract<Poco::JSON::Array::Ptr>();
    for (unsigned i = 0; entries && i < entries->size(); ++i) {
      const Json entry = entries->getObject(i);
      const std::string source = Text(entry, "source");
      const std::string message = Text(entry, "message");
      if (source == "network") continue;
      if (Text(entry, "level") == "SEVERE" ||
          message.find("Content Security Policy") != std::string::npos) {
        errors.push_back(source + ": " + message);
      }
    }
    return errors;
  }

  const std::string& last_error() const { return last_error_; }

 private:
  const TempDir& scratch_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> driver_;
  std::string session_;
  std::string last_error_;
};

std::map<std::string, std::string> Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// A 2pc transaction over two participants whose phase 2 may wait for an operator: wait false,
// and a longest backoff far beyond the test, so that nothing retries it meanwhile.
Spec TwoBranchSpec(const std::string& gid, const Participant& shop, const Participant& bank) {
  Spec spec{gid, {shop.BranchJson("order"), bank.BranchJson("payment")}};
  spec.wait = false;
  spec.retry_max_ms = 120'000;
  return spec;
}

class UiBrowserTest : public ApiTest {
 protected:
  void TearDown() override {
    if (browser_ != nullptr) {
      if (HasFailure()) {
        const WebDriverAnswer page =
            browser_->Script("return document.body ? document.body.innerText : ''");
        std::cerr << "---- the page's text ----\n"
                  << (page.ok() ? page.value.convert<std::string>() : page.Describe())
                  << "\n----\n";
      }
      browser_.reset();  // before txcoord stops, so the page stops calling it
    }
    ApiTest::TearDown();
  }

  ::testing::AssertionResult StartBrowser() {
    browser_ = std::make_unique<Browser>(scratch_);
    return browser_->Start();
  }
  Browser& browser() { return *browser_; }

  std::string PageUrl(const std::string& fragment = "") const {
    return "http://127.0.0.1:" + std::to_string(txc_->port()) + "/ui/" + fragment;
  }

  ::testing::AssertionResult OpenPage(const std::string& fragment = "") {
    const WebDriverAnswer answer = browser().Navigate(PageUrl(fragment));
    if (answer.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "could not open " << PageUrl(fragment) << ": " << answer.Describe();
  }

  // Polls `read` until what it reads matches; the failure names the last reading.
  template <typename T>
  ::testing::AssertionResult WaitForReading(const std::function<std::optional<T>()>& read,
                                            const Matcher<const T&>& matcher,
                                            const std::string& what,
                                            milliseconds timeout = kPageTimeout) {
    std::optional<T> last;
    const bool held = Eventually(
        [&] {
          last = read();
          return last.has_value() && matcher.Matches(*last);
        },
        timeout, 100ms);
    if (held) return ::testing::AssertionSuccess();
    std::ostringstream wanted;
    matcher.DescribeTo(&wanted);
    return ::testing::AssertionFailure()
           << what << " never " << wanted.str() << " within " << timeout.count() << " ms; last: "
           << (last ? ::testing::PrintToString(*last)
                    : "nothing could be read (" + browser().last_error() + ")");
  }

  ::testing::AssertionResult WaitForText(const std::string& css,
                                         const Matcher<const std::string&>& matcher,
                                         milliseconds timeout = kPageTimeout) {
    return WaitForReading<std::string>([&] { return browser().TextOf(css); }, matcher,
                                       "the text of " + css, timeout);
  }

  // The gids of the table's rows, in order.
  ::testing::AssertionResult WaitForListed(
      const Matcher<const std::vector<std::string>&>& matcher) {
    return WaitForReading<std::vector<std::string>>(
        [&] {
          return browser().Strings(
              "return Array.from(document.querySelectorAll('#transactions-body tr'))"
              ".map(row => row.dataset.gid);");
        },
        matcher, "the listed gids");
  }

  // The names of the detail view's branch rows, in order.
  ::testing::AssertionResult WaitForBranchRows(
      const Matcher<const std::vector<std::string>&>& matcher) {
    return WaitForReading<std::vector<std::string>>(
        [&] {
          return browser().Strings(
              "return Array.from(document.querySelectorAll('#detail-branches-body tr'))"
              ".map(row => row.dataset.branch);");
        },
        matcher, "the detail view's branches");
  }

  static std::string RowCell(const std::string& gid, const std::string& field) {
    return "#transactions-body tr[data-gid='" + gid + "'] td[data-field='" + field + "']";
  }
  static std::string BranchCell(const std::string& branch, const std::string& field) {
    return "#detail-branches-body tr[data-branch='" + branch + "'] td[data-field='" + field + "']";
  }
  static std::string ResolveForm(const std::string& branch) {
    return "#detail-branches-body form[data-resolve-branch='" + branch + "']";
  }

  void ExpectNoScriptErrors() {
    EXPECT_THAT(browser().ScriptErrors(), IsEmpty()) << "the page logged script errors";
  }

  std::unique_ptr<Browser> browser_;
};

// ---------------------------------------------------------------------------------------------
// Serving

TEST_F(UiBrowserTest, ThePageIsServedFromTheBinaryWithItsTypesAndSecurityHeaders) {
  StartTxcoord();
  const std::string source = std::string(TXC_SOURCE_DIR) + "/coordinator/ui/";
  for (const auto& [path, file, type] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/ui/", "index.html", "text/html"},
           {"/ui/app.js", "app.js", "text/javascript"},
           {"/ui/style.css", "style.css", "text/css"}}) {
    SCOPED_TRACE(path);
    const Reply reply = txc().Get(path);
    ASSERT_EQ(reply.status, 200) << reply;
    EXPECT_THAT(reply.Header("Content-Type"), StartsWith(type));
    EXPECT_EQ(reply.Header("Cache-Control"), "no-cache");
    EXPECT_THAT(reply.Header("Content-Security-Policy"), HasSubstr("default-src 'self'"));
    EXPECT_EQ(reply.Header("X-Content-Type-Options"), "nosniff");
    const std::string expected = ReadFileOrEmpty(source + file);
    ASSERT_FALSE(expected.empty()) << source + file;
    EXPECT_TRUE(reply.body == expected) << "the served " << file << " is not the source file";
  }

  const Reply bare = txc().Get("/ui");
  EXPECT_EQ(bare.status, 302) << bare;
  EXPECT_EQ(bare.Header("Location"), "/ui/");
  EXPECT_EQ(txc().Get("/ui/nothing.js").status, 404);
  const Reply posted = txc().Post("/ui/", "");
  EXPECT_EQ(posted.status, 405) << posted;
  EXPECT_EQ(posted.ErrorCode(), "method_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// In the browser

TEST_F(UiBrowserTest, AStuckTransactionIsListedAndRetriedFromThePageUntilItCommits) {
  StartTxcoord();
  ASSERT_TRUE(StartBrowser());
  std::atomic<bool> fixed{false};
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("commit", [&](const CapturedRequest& request, int) {
    Answer answer;
    if (request.Header("Txc-Gid") == "ui-stuck-1" && !fixed) {
      answer.status = 404;
      answer.body = "no such endpoint";
    }
    return answer;
  });
  ASSERT_EQ(txc()
                .Submit(Spec{"ui-done-1", {shop.BranchJson("order"), bank.BranchJson("payment")}})
                .status,
            200);
  ASSERT_EQ(txc().Submit(TwoBranchSpec("ui-stuck-1", shop, bank)).status, 202);
  const Json stuck = txc().WaitForDocument(
      "ui-stuck-1", [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
      "waited for an operator");
  ASSERT_TRUE(stuck);

  ASSERT_TRUE(OpenPage());
  EXPECT_TRUE(WaitForListed(ElementsAre("ui-done-1", "ui-stuck-1")));
  ASSERT_TRUE(browser().Click("#filter-stuck"));
  ASSERT_TRUE(WaitForListed(ElementsAre("ui-stuck-1")));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "stuck"), Eq("yes")));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "protocol"), Eq("2pc")));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "state"), Eq("committing")));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "branches"),
                          AllOf(HasSubstr("committed 1"), HasSubstr("prepared 1"),
                                HasSubstr("payment needs an operator"))));

  // The detail view: its branches, and only the actions that make sense after the decision.
  ASSERT_TRUE(browser().Click("a[data-gid='ui-stuck-1']"));
  ASSERT_TRUE(WaitForText("#detail-gid", Eq("ui-stuck-1")));
  ASSERT_TRUE(WaitForBranchRows(ElementsAre("order", "payment")));
  EXPECT_TRUE(WaitForText(BranchCell("order", "state"), Eq("committed")));
  EXPECT_TRUE(WaitForText(BranchCell("order", "needs_operator"), Eq("no")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "state"), Eq("prepared")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "needs_operator"), Eq("yes")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "attempts"),
                          Eq(std::to_string(Number(Branch(stuck, "payment"), "attempts")))));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "last_error"),
                          AllOf(HasSubstr("HTTP 404"), HasSubstr("no such endpoint"))));
  EXPECT_TRUE(WaitForText("#detail-state", Eq("committing")));
  EXPECT_TRUE(WaitForText("#detail-stuck", Eq("yes")));
  EXPECT_EQ(browser().Displayed("[data-action='retry'][data-gid='ui-stuck-1']"), true);
  EXPECT_EQ(browser().Displayed("#detail [data-action='abort']"), false)
      << "abort is offered only before the decision";
  EXPECT_EQ(browser().FindAll(ResolveForm("payment")).size(), 1u);
  EXPECT_EQ(browser().FindAll(ResolveForm("order")).size(), 0u);

  fixed = true;
  ASSERT_TRUE(browser().Click("#detail [data-action='retry']"));
  const Json document = txc().WaitFinal("ui-stuck-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
  EXPECT_EQ(bank.Count("ui-stuck-1", "commit"), 2u) << "one refused commit, one after the retry";

  EXPECT_TRUE(WaitForText("#detail-message", HasSubstr("Retry requested")));
  EXPECT_TRUE(WaitForText("#detail-state", Eq("committed")));
  EXPECT_TRUE(WaitForText("#detail-outcome", Eq("committed")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "state"), Eq("committed")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "needs_operator"), Eq("no")));
  EXPECT_EQ(browser().Displayed("#detail [data-action='retry']"), false)
      << "a finished transaction has nothing to retry";
  // Nothing is stuck any more; without the filter the table shows it committed.
  EXPECT_TRUE(WaitForListed(IsEmpty()));
  ASSERT_TRUE(browser().Click("#filter-stuck"));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "state"), Eq("committed")));
  EXPECT_TRUE(WaitForText(RowCell("ui-stuck-1", "stuck"), Eq("no")));
  ExpectNoScriptErrors();
}

TEST_F(UiBrowserTest, AResolveFromThePageEndsTheTransactionAndTheHistoryShowsItsReason) {
  StartTxcoord();
  ASSERT_TRUE(StartBrowser());
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  // Markup in the participant's answer reaches last_error: the page must show it as text.
  bank.Respond("commit", 404, R"(<img id="injected" src="x"> gone)");
  ASSERT_EQ(txc().Submit(TwoBranchSpec("ui-resolve-1", shop, bank)).status, 202);
  ASSERT_TRUE(txc().WaitForDocument(
      "ui-resolve-1", [](const Json& d) { return Flag(Branch(d, "payment"), "needs_operator"); },
      "waited for an operator"));

  // A link to the transaction opens its detail view directly.
  ASSERT_TRUE(OpenPage("#tx=ui-resolve-1"));
  ASSERT_TRUE(WaitForText("#detail-gid", Eq("ui-resolve-1")));
  ASSERT_TRUE(WaitForBranchRows(ElementsAre("order", "payment")));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "last_error"),
                          HasSubstr(R"(<img id="injected" src="x"> gone)")));
  const WebDriverAnswer injected =
      browser().Script("return document.getElementById('injected') === null;");
  ASSERT_TRUE(injected.ok()) << injected.Describe();
  EXPECT_TRUE(injected.value.convert<bool>()) << "the participant's markup became an element";
  EXPECT_TRUE(WaitForText("#detail-history-empty", HasSubstr("No operator action")));

  // Without a reason nothing is sent.
  const std::string form = ResolveForm("payment");
  ASSERT_TRUE(browser().Click(form + " [data-action='resolve']"));
  EXPECT_TRUE(WaitForText("#detail-message", HasSubstr("a reason is required")));
  EXPECT_TRUE(IsNull(txc().Document("ui-resolve-1").json(), "history"));

  // The server's refusal is shown with its own message.
  const Reply refused = txc().Post("/v1/transactions/ui-resolve-1/resolve",
                                   R"({"branch":"payment","outcome":"aborted","reason":"probe"})");
  ASSERT_EQ(refused.status, 409) << refused;
  ASSERT_FALSE(refused.ErrorMessage().empty());
  ASSERT_TRUE(browser().Click(form + " option[value='aborted']"));
  ASSERT_TRUE(browser().Type(form + " [data-field='reason']", "trying the wrong outcome"));
  ASSERT_TRUE(browser().Click(form + " [data-action='resolve']"));
  EXPECT_TRUE(
      WaitForText("#detail-message", AllOf(HasSubstr("409"), HasSubstr(refused.ErrorMessage()))));

  const std::string reason = "the bank confirmed the payment by phone <ticket 42>";
  ASSERT_TRUE(browser().Click(form + " option[value='committed']"));
  ASSERT_TRUE(browser().Type(form + " [data-field='reason']", reason));
  ASSERT_TRUE(browser().Click(form + " [data-action='resolve']"));

  const Json document = txc().WaitFinal("ui-resolve-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "committed");
  EXPECT_THAT(BranchStates(document), ElementsAre("committed", "committed"));
  ASSERT_TRUE(document->has("history"));
  const auto history = document->getArray("history");
  ASSERT_EQ(history->size(), 1u);
  const Json entry = history->getObject(0);
  EXPECT_EQ(Text(entry, "action"), "resolve");
  EXPECT_EQ(Text(entry, "branch"), "payment");
  EXPECT_EQ(Text(entry, "outcome"), "committed");
  EXPECT_EQ(Text(entry, "reason"), reason);
  EXPECT_EQ(bank.Count("ui-resolve-1", "commit"), 1u) << "a resolve calls no participant";

  EXPECT_TRUE(WaitForText("#detail-state", Eq("committed")));
  const std::string row = "#detail-history-body tr ";
  EXPECT_TRUE(WaitForText(row + "td[data-field='reason']", Eq(reason)));
  EXPECT_TRUE(WaitForText(row + "td[data-field='action']", Eq("resolve")));
  EXPECT_TRUE(WaitForText(row + "td[data-field='branch']", Eq("payment")));
  EXPECT_TRUE(WaitForText(row + "td[data-field='outcome']", Eq("committed")));
  EXPECT_TRUE(WaitForText(row + "td[data-field='by']", Eq(Text(entry, "by"))));
  EXPECT_TRUE(WaitForText(BranchCell("payment", "state"), Eq("committed")));
  EXPECT_TRUE(browser().FindAll(ResolveForm("payment")).empty())
      << "a finished transaction offers no resolve";
  ExpectNoScriptErrors();
}

TEST_F(UiBrowserTest, BeforeTheDecisionThePageOffersAbortAndRecordsItsReason) {
  StartTxcoord();
  ASSERT_TRUE(StartBrowser());
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  // The bank's prepare is held, so the transaction waits before its decision.
  const auto gate = bank.Block("prepare");
  Spec spec = TwoBranchSpec("ui-abort-1", shop, bank);
  spec.timeout_ms = 120'000;  // the deadline must not decide before the operator does
  ASSERT_EQ(txc().Submit(spec).status, 202);
  ASSERT_TRUE(WaitUntil([&] { return bank.Count("ui-abort-1", "prepare") == 1; }, 10s));

  ASSERT_TRUE(OpenPage("#tx=ui-abort-1"));
  ASSERT_TRUE(WaitForText("#detail-state", Eq("preparing")));
  EXPECT_TRUE(WaitForText("#detail-outcome", Eq("none yet")));
  EXPECT_EQ(browser().Displayed("#detail [data-action='abort']"), true);
  const std::string reason = "the customer cancelled the order";
  ASSERT_TRUE(browser().Type("#abort-reason", reason));
  ASSERT_TRUE(browser().Click("#detail [data-action='abort']"));
  EXPECT_TRUE(WaitForText("#detail-message", HasSubstr("Abort of ui-abort-1 decided")));
  gate->Open();

  const Json document = txc().WaitFinal("ui-abort-1");
  ASSERT_TRUE(document);
  EXPECT_EQ(Text(document, "outcome"), "aborted");
  ASSERT_TRUE(document->has("history"));
  const Json entry = document->getArray("history")->getObject(0);
  EXPECT_EQ(Text(entry, "action"), "abort");
  EXPECT_EQ(Text(entry, "reason"), reason);

  EXPECT_TRUE(WaitForText("#detail-state", Eq("aborted")));
  EXPECT_TRUE(WaitForText("#detail-history-body td[data-field='action']", Eq("abort")));
  EXPECT_TRUE(WaitForText("#detail-history-body td[data-field='reason']", Eq(reason)));
  EXPECT_EQ(browser().Displayed("#detail [data-action='abort']"), false);
  // A second abort, from the API: the page is not the only guard, the server refuses it.
  EXPECT_EQ(txc().Post("/v1/transactions/ui-abort-1/abort").status, 409);
  ExpectNoScriptErrors();
}

TEST_F(UiBrowserTest, WithTokensThePageAsksForOneAndSaysWhenItMayOnlyRead) {
  constexpr char kOperateToken[] = "ui-op-6d2e9b1c4a7f3e8d5b0c";
  constexpr char kReadToken[] = "ui-rd-3f8a1d6c9e2b7a4f0d5e";
  const std::string tokens = scratch_.File("tokens");
  std::ofstream(tokens) << "operate alice " << kOperateToken << "\nread viewer " << kReadToken
                        << "\n";
  ASSERT_EQ(::chmod(tokens.c_str(), 0600), 0);
  StartTxcoord({{"TXC_AUTH_TOKENS_FILE", tokens}});
  ASSERT_TRUE(StartBrowser());
  std::atomic<bool> fixed{false};
  Participant shop("shop", &journal_);
  Participant bank("bank", &journal_);
  bank.On("commit", [&](const CapturedRequest&, int) {
    Answer answer;
    if (!fixed) answer.status = 404;
    return answer;
  });
  const Reply submitted =
      Exchange(txc().port(), "POST", "/v1/transactions",
               TwoBranchSpec("ui-auth-1", shop, bank).ToJson(), 60s, Bearer(kOperateToken));
  ASSERT_EQ(submitted.status, 202) << submitted;
  const auto document = [&] {
    return Exchange(txc().port(), "GET", "/v1/transactions/ui-auth-1", "", 10s, Bearer(kReadToken))
        .json();
  };
  ASSERT_TRUE(Eventually([&] { return Flag(Branch(document(), "payment"), "needs_operator"); },
                         kFinalTimeout));

  // The page itself is open; its API calls are not.
  ASSERT_TRUE(OpenPage());
  EXPECT_TRUE(
      WaitForText("#list-message", AllOf(HasSubstr("401"), HasSubstr("requires an API token"))));

  ASSERT_TRUE(browser().Type("#token", kReadToken));
  ASSERT_TRUE(browser().Click("#token-save"));
  EXPECT_TRUE(WaitForText("#token-state", HasSubstr("a token is set")));
  ASSERT_TRUE(WaitForListed(ElementsAre("ui-auth-1")));
  EXPECT_EQ(browser().Displayed("#list-message"), false);

  ASSERT_TRUE(browser().Click("a[data-gid='ui-auth-1']"));
  ASSERT_TRUE(WaitForBranchRows(ElementsAre("order", "payment")));
  ASSERT_TRUE(browser().Click("#detail [data-action='retry']"));
  EXPECT_TRUE(WaitForText("#detail-message", AllOf(HasSubstr("403"), HasSubstr("operate role"))));

  fixed = true;
  ASSERT_TRUE(browser().Type("#token", kOperateToken));
  ASSERT_TRUE(browser().Click("#token-save"));
  ASSERT_TRUE(browser().Click("#detail [data-action='retry']"));
  EXPECT_TRUE(WaitForText("#detail-message", HasSubstr("Retry requested")));
  EXPECT_TRUE(Eventually([&] { return Text(document(), "outcome") == "committed"; }, kFinalTimeout))
      << "ui-auth-1 never committed after the operate token's retry";
  EXPECT_TRUE(WaitForText("#detail-state", Eq("committed")));

  // The token stays in the tab's sessionStorage, never in the page's text.
  const WebDriverAnswer text = browser().Script("return document.documentElement.outerHTML;");
  ASSERT_TRUE(text.ok()) << text.Describe();
  EXPECT_THAT(text.value.convert<std::string>(), Not(HasSubstr(kOperateToken)));
  ExpectNoScriptErrors();
}

}  // namespace
}  // namespace txc::testing
