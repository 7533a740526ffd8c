// dashboards/: the Grafana dashboard, the Prometheus alert rules and scrape configuration, checked
// against the tools that will load them and against what txcoord really exports.
//
// - promtool (Debian package `prometheus`) accepts alerts.yml and prometheus.yml and passes the
//   rule unit tests in alerts_test.yml. A missing promtool fails: CI must not go green without
//   having run them.
// - The dashboard is Grafana JSON whose panels all have a title, a description, the ${datasource}
//   variable and a query; the alert rules carry a severity and operator-facing annotations.
// - Every metric any panel, template variable or rule queries is one txcoord exports, scraped
//   from a real txcoord after a little traffic: its family has a `# TYPE` line, histograms are
//   queried through _bucket/_sum/_count, every label a query filters or groups by exists on
//   that metric, and every label value it matches exactly is one txcoord emits. A typo in a
//   dashboard otherwise shows up only as an empty panel, and in an alert as silence.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/api_harness.h"

namespace txc::testing {
namespace {

using ::testing::IsEmpty;

const std::string kDashboardsDir = std::string(TXC_SOURCE_DIR) + "/dashboards";
const std::string kDashboardPath = kDashboardsDir + "/txc-overview.json";
const std::string kAlertsPath = kDashboardsDir + "/alerts.yml";
const std::string kAlertsTestPath = kDashboardsDir + "/alerts_test.yml";
const std::string kPrometheusConfigPath = kDashboardsDir + "/prometheus.yml";

constexpr milliseconds kPromtoolTimeout{120'000};

// ---------------------------------------------------------------------------------------------
// promtool

// promtool's path from $PATH, "" when it is not installed.
std::string FindPromtool() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/promtool";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

struct CommandResult {
  std::optional<int> exit_code;  // nullopt: still running at the deadline (then killed)
  std::string output;            // stdout, then stderr
};

CommandResult RunPromtool(const TempDir& scratch, const std::string& promtool,
                          const std::vector<std::string>& args) {
  static int runs = 0;
  const std::string name = "promtool" + std::to_string(++runs);
  ChildProcess::Options options;
  options.program = promtool;
  options.args = args;
  options.environment = CurrentEnvironment();
  options.stdout_path = scratch.File(name + ".stdout");
  options.stderr_path = scratch.File(name + ".stderr");
  CommandResult result;
  {
    ChildProcess child(options);
    result.exit_code = child.WaitForExit(kPromtoolTimeout);
  }  // killed here if it hung
  result.output = ReadFileOrEmpty(options.stdout_path) + ReadFileOrEmpty(options.stderr_path);
  return result;
}

// ---------------------------------------------------------------------------------------------
// PromQL: just enough of it to find the metrics and labels an expression refers to

struct Matcher {
  std::string label;
  std::string op;  // = != =~ !~
  std::string value;
};

struct Selector {
  std::string name;
  std::vector<Matcher> matchers;
};

struct QueryReferences {
  std::vector<Selector> selectors;        // every metric name with its {matchers}
  std::set<std::string> grouping_labels;  // from by (...), on (...), ignoring (...), group_*
  std::vector<std::string> parse_errors;
};

bool IsIdentifierStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':';
}
bool IsIdentifierChar(char c) {
  return IsIdentifierStart(c) || std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// Identifiers that are not metric names even when no '(' follows them.
bool IsKeyword(const std::string& word) {
  static const std::set<std::string> keywords = {
      "by",      "without",  "on",           "ignoring", "group_left", "group_right", "bool",
      "offset",  "and",      "or",           "unless",   "inf",        "nan",         "sum",
      "min",     "max",      "avg",          "count",    "stddev",     "stdvar",      "topk",
      "bottomk", "quantile", "count_values", "group",    "atan2"};
  std::string lower = word;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return keywords.count(lower) > 0;
}

class QueryScanner {
 public:
  explicit QueryScanner(std::string text) : text_(std::move(text)) {}

  QueryReferences Scan() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"' || c == '\'' || c == '`') {
        SkipString();
      } else if (c == '[') {
        // A range or subquery duration: [5m], [$__rate_interval], [1h:1m].
        const size_t end = text_.find(']', pos_);
        pos_ = end == std::string::npos ? text_.size() : end + 1;
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.') {
        // A number (0.99, 1e3) or a duration after offset (5m): none of it is a name.
        while (pos_ < text_.size() && (IsIdentifierChar(text_[pos_]) || text_[pos_] == '.')) {
          ++pos_;
        }
      } else if (c == '{') {
        // A selector without a metric name ({__name__="..."}): its matchers name no metric.
        Selector anonymous;
        ParseMatchers(anonymous);
      } else if (IsIdentifierStart(c)) {
        Word();
      } else {
        ++pos_;
      }
    }
    return std::move(refs_);
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      ++pos_;
    }
  }

  std::string ReadIdentifier() {
    const size_t start = pos_;
    while (pos_ < text_.size() && IsIdentifierChar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // A quoted string at pos_, unescaped; pos_ ends after the closing quote.
  std::string ReadString() {
    const char quote = text_[pos_++];
    std::string value;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && quote != '`' && pos_ + 1 < text_.size()) ++pos_;
      value.push_back(text_[pos_++]);
    }
    if (pos_ >= text_.size()) refs_.parse_errors.push_back("unterminated string in: " + text_);
    ++pos_;
    return value;
  }
  void SkipString() { ReadString(); }

  void Word() {
    const std::string word = ReadIdentifier();
    SkipSpace();
    const bool call = pos_ < text_.size() && text_[pos_] == '(';
    if (word == "by" || word == "without" || word == "on" || word == "ignoring" ||
        word == "group_left" || word == "group_right") {
      if (call) ReadLabelList(word == "without" || word == "ignoring");
      return;
    }
    if (call || IsKeyword(word)) return;  // a function or an operator
    Selector selector;
    selector.name = word;
    if (pos_ < text_.size() && text_[pos_] == '{') ParseMatchers(selector);
    refs_.selectors.push_back(std::move(selector));
  }

  // (label, label, ...) after by/on/...; without/ignoring lists are not checked (dropping a label
  // a metric lacks is harmless).
  void ReadLabelList(bool excluding) {
    ++pos_;  // (
    while (pos_ < text_.size() && text_[pos_] != ')') {
      SkipSpace();
      if (pos_ < text_.size() && IsIdentifierStart(text_[pos_])) {
        const std::string label = ReadIdentifier();
        if (!excluding) refs_.grouping_labels.insert(label);
      } else if (pos_ < text_.size() && text_[pos_] != ')') {
        ++pos_;
      }
    }
    ++pos_;  // )
  }

  void ParseMatchers(Selector& selector) {
    ++pos_;  // {
    while (pos_ < text_.size()) {
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return;
      }
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      Matcher matcher;
      matcher.label = ReadIdentifier();
      SkipSpace();
      while (pos_ < text_.size() &&
             (text_[pos_] == '=' || text_[pos_] == '!' || text_[pos_] == '~')) {
        matcher.op.push_back(text_[pos_++]);
      }
      SkipSpace();
      if (matcher.label.empty() || matcher.op.empty() || pos_ >= text_.size() ||
          (text_[pos_] != '"' && text_[pos_] != '\'' && text_[pos_] != '`')) {
        refs_.parse_errors.push_back("cannot read the matchers of " + selector.name +
                                     " in: " + text_);
        pos_ = text_.find('}', pos_);
        pos_ = pos_ == std::string::npos ? text_.size() : pos_ + 1;
        return;
      }
      matcher.value = ReadString();
      selector.matchers.push_back(std::move(matcher));
    }
    refs_.parse_errors.push_back("unterminated selector in: " + text_);
  }

  std::string text_;
  size_t pos_ = 0;
  QueryReferences refs_;
};

// One query and where it comes from, for the failure messages.
struct Query {
  std::string where;
  std::string expr;
};

// ---------------------------------------------------------------------------------------------
// The scraped exposition, by family

struct Family {
  std::string type;
  std::set<std::string> label_names;
  std::map<std::string, std::set<std::string>> label_values;
  size_t samples = 0;
};

class Exposition {
 public:
  explicit Exposition(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::vector<std::string> samples;
    while (std::getline(in, line)) {
      if (line.rfind("# TYPE ", 0) == 0) {
        std::istringstream fields(line.substr(7));
        std::string name, type;
        fields >> name >> type;
        families_[name].type = type;
      } else if (!line.empty() && line[0] != '#') {
        samples.push_back(line);
      }
    }
    for (const std::string& sample : samples) AddSample(sample);
  }

  const Family* Find(const std::string& family) const {
    auto it = families_.find(family);
    return it == families_.end() ? nullptr : &it->second;
  }

 private:
  void AddSample(const std::string& line) {
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos) return;
    Family* family = FamilyOfSeries(line.substr(0, name_end));
    if (family == nullptr) return;
    ++family->samples;
    if (line[name_end] != '{') return;
    size_t pos = name_end + 1;
    while (pos < line.size() && line[pos] != '}') {
      const size_t equals = line.find('=', pos);
      if (equals == std::string::npos || equals + 1 >= line.size()) return;
      const std::string key = line.substr(pos, equals - pos);
      std::string value;
      size_t i = equals + 2;  // after ="
      for (; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        value.push_back(line[i]);
      }
      family->label_names.insert(key);
      family->label_values[key].insert(value);
      pos = i + 1;
      if (pos < line.size() && line[pos] == ',') ++pos;
    }
  }

  Family* FamilyOfSeries(const std::string& series) {
    auto it = families_.find(series);
    if (it != families_.end()) return &it->second;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (series.size() > s.size() && series.compare(series.size() - s.size(), s.size(), s) == 0) {
        it = families_.find(series.substr(0, series.size() - s.size()));
        if (it != families_.end()) return &it->second;
      }
    }
    return nullptr;
  }

  std::map<std::string, Family> families_;
};

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The family a queried series name belongs to: the name itself, or for a histogram's
// name_bucket / name_sum / name_count the histogram. "" when txcoord exports no such family.
std::string FamilyName(const Exposition& exposition, const std::string& series) {
  if (exposition.Find(series) != nullptr) return series;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (!EndsWith(series, suffix)) continue;
    const std::string base = series.substr(0, series.size() - std::string(suffix).size());
    const Family* family = exposition.Find(base);
    if (family != nullptr && (family->type == "histogram" || family->type == "summary")) {
      return base;
    }
  }
  return "";
}

// Labels Prometheus attaches to every scraped series.
bool IsTargetLabel(const std::string& label) { return label == "instance" || label == "job"; }

// Everything that is wrong with one query against the scraped exposition, in words.
std::vector<std::string> CheckQuery(const Query& query, const Exposition& exposition,
                                    std::set<std::string>* families_used) {
  std::vector<std::string> problems;
  const QueryReferences refs = QueryScanner(query.expr).Scan();
  for (const std::string& error : refs.parse_errors) problems.push_back(query.where + ": " + error);
  if (refs.selectors.empty())
    problems.push_back(query.where + ": no metric in `" + query.expr + "`");

  std::set<std::string> known_labels = {"instance", "job"};
  for (const Selector& selector : refs.selectors) {
    const std::string where = query.where + ": " + selector.name;
    if (selector.name == "up") {
      // Prometheus's own per-target series; it only has the target labels.
      for (const Matcher& m : selector.matchers) {
        if (!IsTargetLabel(m.label)) problems.push_back(where + " has no label " + m.label);
      }
      continue;
    }
    if (selector.name.rfind("txc_", 0) != 0) {
      problems.push_back(where +
                         ": txcoord does not export this metric (only txc_* and up "
                         "may be queried)");
      continue;
    }
    const std::string family_name = FamilyName(exposition, selector.name);
    if (family_name.empty()) {
      problems.push_back(where + ": no `# TYPE` line for it (or its histogram) in /metrics");
      continue;
    }
    families_used->insert(family_name);
    const Family& family = *exposition.Find(family_name);
    if (family.type == "histogram" && family_name == selector.name) {
      problems.push_back(where + " is a histogram: query " + selector.name + "_bucket, _sum or " +
                         "_count; the bare name has no series");
    }
    if (family.samples == 0) problems.push_back(where + ": no series in /metrics");
    std::set<std::string> labels = family.label_names;
    labels.insert("instance");
    labels.insert("job");
    if (!EndsWith(selector.name, "_bucket")) labels.erase("le");
    known_labels.insert(labels.begin(), labels.end());
    for (const Matcher& m : selector.matchers) {
      if (labels.count(m.label) == 0) {
        problems.push_back(where + " has no label " + m.label +
                           " (it has: " + ::testing::PrintToString(family.label_names) + ")");
        continue;
      }
      // A literal equality must name a value txcoord emits, or the query matches nothing.
      if (m.op == "=" && !IsTargetLabel(m.label) && m.value.find('$') == std::string::npos) {
        auto values = family.label_values.find(m.label);
        if (values == family.label_values.end() || values->second.count(m.value) == 0) {
          problems.push_back(where + ": no series with " + m.label + "=\"" + m.value + "\"");
        }
      }
    }
  }
  for (const std::string& label : refs.grouping_labels) {
    if (known_labels.count(label) == 0) {
      problems.push_back(query.where + ": groups by " + label +
                         ", a label none of its metrics has: `" + query.expr + "`");
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Reading the files

std::string ReadSource(const std::string& path) {
  std::string text = ReadFileOrEmpty(path);
  EXPECT_FALSE(text.empty()) << path << " is missing or empty";
  return text;
}

Json LoadDashboard() {
  const std::string text = ReadSource(kDashboardPath);
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(text);
    if (parsed.type() == typeid(Json)) return parsed.extract<Json>();
    ADD_FAILURE() << kDashboardPath << " is JSON but not an object";
  } catch (const Poco::Exception& e) {
    ADD_FAILURE() << kDashboardPath << " is not valid JSON: " << e.displayText();
  }
  return nullptr;
}

// Every panel, rows' nested panels included.
std::vector<Json> AllPanels(const Json& dashboard) {
  std::vector<Json> panels;
  std::function<void(const Poco::JSON::Array::Ptr&)> add = [&](const Poco::JSON::Array::Ptr& list) {
    for (unsigned i = 0; list && i < list->size(); ++i) {
      Json panel = list->getObject(i);
      if (!panel) continue;
      panels.push_back(panel);
      if (panel->has("panels")) add(panel->getArray("panels"));
    }
  };
  if (dashboard && dashboard->has("panels")) add(dashboard->getArray("panels"));
  return panels;
}

Json Variable(const Json& dashboard, const std::string& name) {
  if (!dashboard || !dashboard->has("templating")) return nullptr;
  auto list = dashboard->getObject("templating")->getArray("list");
  for (unsigned i = 0; list && i < list->size(); ++i) {
    if (Text(list->getObject(i), "name") == name) return list->getObject(i);
  }
  return nullptr;
}

// The datasource a panel or target uses, as "type/uid".
std::string DatasourceOf(const Json& object) {
  if (!object || !object->has("datasource") || object->isNull("datasource")) return "";
  if (object->isObject("datasource")) {
    Json ds = object->getObject("datasource");
    return Text(ds, "type") + "/" + Text(ds, "uid");
  }
  return object->get("datasource").convert<std::string>();
}

std::vector<Query> DashboardQueries(const Json& dashboard) {
  std::vector<Query> queries;
  for (const Json& panel : AllPanels(dashboard)) {
    if (!panel->has("targets")) continue;
    auto targets = panel->getArray("targets");
    for (unsigned i = 0; targets && i < targets->size(); ++i) {
      Json target = targets->getObject(i);
      queries.push_back({"panel \"" + Text(panel, "title") + "\" target " + Text(target, "refId"),
                         Text(target, "expr")});
    }
  }
  // label_values(SELECTOR, LABEL) of the query variables: the selector is a query, and LABEL must
  // be one of its metric's labels, which "by (LABEL)" expresses.
  for (const std::string name : {"instance", "protocol"}) {
    const std::string definition = Text(Variable(dashboard, name), "definition");
    const std::string prefix = "label_values(";
    const size_t comma = definition.rfind(',');
    if (definition.rfind(prefix, 0) != 0 || comma == std::string::npos ||
        !EndsWith(definition, ")")) {
      ADD_FAILURE() << "variable " << name
                    << " is not label_values(SELECTOR, LABEL): " << definition;
      continue;
    }
    std::string label = definition.substr(comma + 1, definition.size() - comma - 2);
    label.erase(0, label.find_first_not_of(' '));
    queries.push_back(
        {"variable " + name, "group by (" + label + ") (" +
                                 definition.substr(prefix.size(), comma - prefix.size()) + ")"});
  }
  return queries;
}

struct Rule {
  std::string alert;
  std::string expr;
  std::string severity;
  std::string summary;
  std::string description;
  std::string for_duration;
};

std::vector<Rule> LoadRules(std::string* group_names) {
  std::vector<Rule> rules;
  try {
    YAML::Node root = YAML::LoadFile(kAlertsPath);
    for (const YAML::Node& group : root["groups"]) {
      *group_names += group["name"].as<std::string>("") + " ";
      for (const YAML::Node& node : group["rules"]) {
        Rule rule;
        rule.alert = node["alert"].as<std::string>("");
        rule.expr = node["expr"].as<std::string>("");
        rule.for_duration = node["for"].as<std::string>("");
        if (node["labels"]) rule.severity = node["labels"]["severity"].as<std::string>("");
        if (node["annotations"]) {
          rule.summary = node["annotations"]["summary"].as<std::string>("");
          rule.description = node["annotations"]["description"].as<std::string>("");
        }
        rules.push_back(rule);
      }
    }
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << kAlertsPath << ": " << e.what();
  }
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Tests

class DashboardsTest : public ApiTest {
 protected:
  // promtool, or a failure that says which package brings it.
  std::string RequirePromtool() {
    const std::string promtool = FindPromtool();
    if (promtool.empty()) {
      ADD_FAILURE() << "promtool is not on PATH: install the Debian package `prometheus` "
                       "(scripts/setup.sh installs it); the dashboards cannot be checked without "
                       "it";
    }
    return promtool;
  }

  void ExpectPromtoolAccepts(const std::vector<std::string>& args) {
    const std::string promtool = RequirePromtool();
    if (promtool.empty()) return;
    const CommandResult result = RunPromtool(scratch_, promtool, args);
    std::string command = "promtool";
    for (const auto& arg : args) command += " " + arg;
    ASSERT_TRUE(result.exit_code.has_value())
        << command << " did not finish in " << kPromtoolTimeout.count() << " ms";
    EXPECT_EQ(*result.exit_code, 0) << command << " failed:\n" << result.output;
  }
};

TEST_F(DashboardsTest, PromtoolAcceptsTheAlertRules) {
  ExpectPromtoolAccepts({"check", "rules", kAlertsPath});
}

TEST_F(DashboardsTest, PromtoolPassesTheAlertRuleUnitTests) {
  ExpectPromtoolAccepts({"test", "rules", kAlertsTestPath});
}

TEST_F(DashboardsTest, PromtoolAcceptsTheScrapeConfig) {
  // Also loads the rule_files it names, relative to the config file.
  ExpectPromtoolAccepts({"check", "config", kPrometheusConfigPath});
}

TEST_F(DashboardsTest, ScrapeConfigScrapesTxcoordAndLoadsTheRules) {
  try {
    YAML::Node config = YAML::LoadFile(kPrometheusConfigPath);
    std::vector<std::string> rule_files;
    for (const YAML::Node& file : config["rule_files"])
      rule_files.push_back(file.as<std::string>());
    EXPECT_THAT(rule_files, ::testing::Contains("alerts.yml"));
    bool found = false;
    for (const YAML::Node& job : config["scrape_configs"]) {
      if (job["job_name"].as<std::string>("") != "txcoord") continue;
      found = true;
      std::vector<std::string> targets;
      for (const YAML::Node& statics : job["static_configs"]) {
        for (const YAML::Node& target : statics["targets"]) {
          targets.push_back(target.as<std::string>());
        }
      }
      // scripts/run.sh's and the README's address.
      EXPECT_THAT(targets, ::testing::Contains("127.0.0.1:8080"));
    }
    // TxcCoordinatorDown selects up{job="txcoord"}.
    EXPECT_TRUE(found) << "no scrape job named txcoord in " << kPrometheusConfigPath;
  } catch (const YAML::Exception& e) {
    FAIL() << kPrometheusConfigPath << ": " << e.what();
  }
}

TEST_F(DashboardsTest, AlertRulesCarrySeverityAndInstructions) {
  std::string groups;
  const std::vector<Rule> rules = LoadRules(&groups);
  EXPECT_EQ(groups, "txc ");
  std::set<std::string> names;
  for (const Rule& rule : rules) {
    SCOPED_TRACE(rule.alert);
    EXPECT_FALSE(rule.alert.empty()) << "a rule without an alert name (recording rules belong "
                                        "elsewhere): "
                                     << rule.expr;
    EXPECT_TRUE(names.insert(rule.alert).second) << "alert defined twice";
    EXPECT_THAT(rule.severity, ::testing::AnyOf("critical", "warning"));
    EXPECT_FALSE(rule.for_duration.empty()) << "an alert without `for:` pages on one bad scrape";
    EXPECT_FALSE(rule.summary.empty());
    EXPECT_GT(rule.description.size(), 80u) << "the description must tell the operator what to do";
  }
  for (const char* required : {"TxcStuckTransactions", "TxcConvergenceSlow",
                               "TxcPermanentBranchErrors", "TxcSlowFsync", "TxcCoordinatorDown"}) {
    EXPECT_EQ(names.count(required), 1u) << required << " is missing from " << kAlertsPath;
  }
}

// Every alert has a promtool case in which it fires, so none of them is untested text.
TEST_F(DashboardsTest, EveryAlertHasAUnitTestWhereItFires) {
  std::string groups;
  const std::vector<Rule> rules = LoadRules(&groups);
  std::set<std::string> fired;
  try {
    YAML::Node root = YAML::LoadFile(kAlertsTestPath);
    for (const YAML::Node& test : root["tests"]) {
      for (const YAML::Node& check : test["alert_rule_test"]) {
        if (check["exp_alerts"] && check["exp_alerts"].size() > 0) {
          fired.insert(check["alertname"].as<std::string>(""));
        }
      }
    }
  } catch (const YAML::Exception& e) {
    FAIL() << kAlertsTestPath << ": " << e.what();
  }
  for (const Rule& rule : rules) {
    EXPECT_EQ(fired.count(rule.alert), 1u) << rule.alert << " never fires in " << kAlertsTestPath;
  }
}

TEST_F(DashboardsTest, DashboardIsGrafanaJsonWithDescribedPanelsOnThePrometheusVariable) {
  Json dashboard = LoadDashboard();
  ASSERT_TRUE(dashboard);
  EXPECT_FALSE(Text(dashboard, "title").empty());
  EXPECT_FALSE(Text(dashboard, "uid").empty());
  // 36 is where panels name their datasource as {type, uid} objects, as this file does.
  EXPECT_GE(Number(dashboard, "schemaVersion"), 36);

  Json datasource = Variable(dashboard, "datasource");
  ASSERT_TRUE(datasource) << "no datasource template variable";
  EXPECT_EQ(Text(datasource, "type"), "datasource");
  EXPECT_EQ(Text(datasource, "query"), "prometheus");
  for (const std::string name : {"instance", "protocol"}) {
    Json variable = Variable(dashboard, name);
    ASSERT_TRUE(variable) << "no " << name << " template variable";
    EXPECT_EQ(Text(variable, "type"), "query") << name;
    EXPECT_EQ(DatasourceOf(variable), "prometheus/${datasource}") << name;
  }

  const std::vector<Json> panels = AllPanels(dashboard);
  EXPECT_GE(panels.size(), 10u);
  std::set<int64_t> ids;
  for (const Json& panel : panels) {
    const std::string title = Text(panel, "title");
    SCOPED_TRACE("panel \"" + title + "\"");
    EXPECT_FALSE(title.empty()) << "a panel without a title";
    EXPECT_TRUE(ids.insert(Number(panel, "id")).second) << "panel id used twice";
    ASSERT_TRUE(panel->has("gridPos"));
    Json grid = panel->getObject("gridPos");
    EXPECT_GT(Number(grid, "w"), 0);
    EXPECT_GT(Number(grid, "h"), 0);
    EXPECT_LE(Number(grid, "x") + Number(grid, "w"), 24);
    if (Text(panel, "type") == "row") continue;  // a heading: no query of its own

    EXPECT_GT(Text(panel, "description").size(), 40u) << "say what it means for an operator";
    EXPECT_EQ(DatasourceOf(panel), "prometheus/${datasource}");
    ASSERT_TRUE(panel->has("targets") && panel->getArray("targets")->size() > 0)
        << "a panel without a query";
    auto targets = panel->getArray("targets");
    std::set<std::string> ref_ids;
    for (unsigned i = 0; i < targets->size(); ++i) {
      Json target = targets->getObject(i);
      const std::string expr = Text(target, "expr");
      EXPECT_FALSE(expr.empty()) << "target " << i << " has no expr";
      EXPECT_TRUE(ref_ids.insert(Text(target, "refId")).second) << "refId used twice";
      EXPECT_EQ(DatasourceOf(target), "prometheus/${datasource}") << expr;
      // The instance picker must narrow every panel, or it silently shows the whole fleet.
      EXPECT_NE(expr.find("$instance"), std::string::npos) << expr;
    }
  }
}

// The metrics the dashboard and the rules query exist, with the labels and values they use, in
// what a real txcoord serves after committing one 2pc transaction and aborting another.
TEST_F(DashboardsTest, EveryQueriedMetricIsExportedByTxcoord) {
  Json dashboard = LoadDashboard();
  ASSERT_TRUE(dashboard);
  std::string groups;
  std::vector<Query> rule_queries;
  for (const Rule& rule : LoadRules(&groups)) {
    rule_queries.push_back({"alert " + rule.alert, rule.expr});
  }
  ASSERT_THAT(rule_queries, ::testing::Not(IsEmpty()));

  // One database resource, so that txc_indoubt_resolved_total has its series (they are created
  // per configured resource). Nothing listens on its port: the in-doubt scan only logs that.
  const std::string resources =
      "[{name: orders, kind: postgres, dsn: \"host=127.0.0.1 port=" + std::to_string(ClosedPort()) +
      " dbname=orders user=txc connect_timeout=1\"}]";
  ASSERT_NO_FATAL_FAILURE(StartTxcoord({{"TXC_RESOURCES", resources}}));

  Participant a("a", &journal_);
  Participant b("b", &journal_);
  Spec committed;
  committed.gid = "dash-commit";
  committed.branches = {a.BranchJson("a"), b.BranchJson("b")};
  Reply reply = txc().Submit(committed);
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_EQ(Text(reply.json(), "outcome"), "committed") << reply;

  b.Respond("prepare", 409, "no");
  Spec refused = committed;
  refused.gid = "dash-refuse";
  reply = txc().Submit(refused);
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_EQ(Text(reply.json(), "outcome"), "aborted") << reply;
  // The abort calls may still run after the answer; the scrape should see them.
  ASSERT_TRUE(Eventually([&] { return a.Count("dash-refuse", "abort") == 1; }, kFinalTimeout));

  const std::string text = txc().Metrics();
  const Exposition exposition(text);
  // The traffic shows up under the label values the panels split by.
  EXPECT_GE(MetricValue(text, "txc_transactions_finished_total",
                        {{"protocol", "2pc"}, {"outcome", "committed"}}),
            1);
  EXPECT_GE(MetricValue(text, "txc_transactions_finished_total",
                        {{"protocol", "2pc"}, {"outcome", "aborted"}}),
            1);
  EXPECT_GE(MetricValue(text, "txc_branch_calls_total",
                        {{"protocol", "2pc"}, {"op", "prepare"}, {"result", "refused"}}),
            1);
  EXPECT_GE(MetricValue(text, "txc_transaction_duration_seconds_count", {{"protocol", "2pc"}}), 2);
  EXPECT_GE(MetricValue(text, "txc_log_fsync_duration_seconds_count"), 1);

  std::set<std::string> dashboard_families;
  std::set<std::string> rule_families;
  std::vector<std::string> problems;
  for (const Query& query : DashboardQueries(dashboard)) {
    for (auto& problem : CheckQuery(query, exposition, &dashboard_families)) {
      problems.push_back(problem);
    }
  }
  for (const Query& query : rule_queries) {
    for (auto& problem : CheckQuery(query, exposition, &rule_families)) {
      problems.push_back(problem);
    }
  }
  EXPECT_THAT(problems, IsEmpty());

  // The brief of the dashboard and the rules: these families at least are on them.
  for (const char* family :
       {"txc_transactions_finished_total", "txc_transactions_started_total",
        "txc_transactions_in_flight", "txc_transactions_stuck", "txc_transaction_duration_seconds",
        "txc_branch_calls_total", "txc_branch_call_duration_seconds", "txc_retries_total",
        "txc_log_fsync_duration_seconds", "txc_log_group_commit_records",
        "txc_requests_rejected_total", "txc_recovered_transactions_total",
        "txc_indoubt_resolved_total"}) {
    EXPECT_EQ(dashboard_families.count(family), 1u) << family << " has no panel";
  }
  for (const char* family : {"txc_transactions_stuck", "txc_transaction_duration_seconds",
                             "txc_branch_calls_total", "txc_log_fsync_duration_seconds"}) {
    EXPECT_EQ(rule_families.count(family), 1u) << family << " has no alert";
  }
  // Every family the checks relied on really is announced with # TYPE.
  for (const auto& family : dashboard_families) {
    EXPECT_NE(text.find("# TYPE " + family + " "), std::string::npos) << family;
  }
  for (const auto& family : rule_families) {
    EXPECT_NE(text.find("# TYPE " + family + " "), std::string::npos) << family;
  }
}

// The scanner itself, on the shapes of query the files use, so that a check that finds nothing
// wrong is not a scanner that finds nothing at all.
TEST(QueryScannerTest, FindsMetricsMatchersAndGroupingLabels) {
  const QueryReferences refs =
      QueryScanner(
          "histogram_quantile(0.99, sum by (le, protocol) "
          "(rate(txc_transaction_duration_seconds_bucket{instance=~\"$instance\", "
          "outcome=\"aborted\"}[$__rate_interval]))) / ignoring (x) up{job='txcoord'} > 1e3")
          .Scan();
  EXPECT_THAT(refs.parse_errors, IsEmpty());
  ASSERT_EQ(refs.selectors.size(), 2u);
  EXPECT_EQ(refs.selectors[0].name, "txc_transaction_duration_seconds_bucket");
  ASSERT_EQ(refs.selectors[0].matchers.size(), 2u);
  EXPECT_EQ(refs.selectors[0].matchers[0].label, "instance");
  EXPECT_EQ(refs.selectors[0].matchers[0].op, "=~");
  EXPECT_EQ(refs.selectors[0].matchers[1].value, "aborted");
  EXPECT_EQ(refs.selectors[1].name, "up");
  EXPECT_EQ(refs.selectors[1].matchers[0].value, "txcoord");
  EXPECT_EQ(refs.grouping_labels, (std::set<std::string>{"le", "protocol"}));
}

TEST(QueryScannerTest, CheckReportsUnknownMetricsLabelsAndValues) {
  const Exposition exposition(
      "# TYPE txc_branch_calls_total counter\n"
      "txc_branch_calls_total{protocol=\"2pc\",op=\"commit\",result=\"permanent\"} 0\n"
      "# TYPE txc_log_fsync_duration_seconds histogram\n"
      "txc_log_fsync_duration_seconds_bucket{le=\"+Inf\"} 1\n"
      "txc_log_fsync_duration_seconds_sum 0.1\n"
      "txc_log_fsync_duration_seconds_count 1\n");
  std::set<std::string> used;
  auto problems = [&](const std::string& expr) {
    return CheckQuery({"q", expr}, exposition, &used);
  };
  EXPECT_THAT(problems("rate(txc_branch_calls_total{result=\"permanent\"}[5m])"), IsEmpty());
  EXPECT_THAT(problems("sum by (le) (rate(txc_log_fsync_duration_seconds_bucket[5m]))"), IsEmpty());
  EXPECT_EQ(used,
            (std::set<std::string>{"txc_branch_calls_total", "txc_log_fsync_duration_seconds"}));
  EXPECT_EQ(problems("rate(txc_branch_calls_total{result=\"permanant\"}[5m])").size(), 1u);
  EXPECT_EQ(problems("rate(txc_branch_calls_total{outcome=\"x\"}[5m])").size(), 1u);
  EXPECT_EQ(problems("sum by (reason) (rate(txc_branch_calls_total[5m]))").size(), 1u);
  EXPECT_EQ(problems("rate(txc_log_fsync_duration_seconds[5m])").size(), 1u);
  EXPECT_EQ(problems("rate(txc_log_fsync_duration_seconds_sum{le=\"1\"}[5m])").size(), 1u);
  EXPECT_EQ(problems("txc_not_exported_total").size(), 1u);
  EXPECT_EQ(problems("process_start_time_seconds").size(), 1u);
}

}  // namespace
}  // namespace txc::testing
