// Configuration: defaults, the YAML file, TXC_* overrides, and that every rejection names its key.
#include "coordinator/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "tests/support/test_env.h"

namespace txc::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Config LoadOk(const std::string& yaml, const Environment& env = {}) {
  Result<LoadedConfig> loaded = LoadConfigFromString(yaml, env);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? loaded->config : Config{};
}

Status LoadError(const std::string& yaml, const Environment& env = {}) {
  Result<LoadedConfig> loaded = LoadConfigFromString(yaml, env);
  EXPECT_FALSE(loaded.ok()) << "accepted: " << yaml;
  return loaded.ok() ? Status::Ok() : loaded.status();
}

TEST(ConfigTest, DefaultsServeOnOneMachine) {
  Result<LoadedConfig> loaded = LoadConfig(std::nullopt, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config& config = loaded->config;
  EXPECT_EQ(config.node_id, "c1");
  EXPECT_EQ(config.listen.host, "127.0.0.1");
  EXPECT_EQ(config.listen.port, 8080);
  EXPECT_EQ(config.log.kind, "file");
  EXPECT_EQ(config.log.dir, "./var/txc");
  EXPECT_EQ(config.stuck_after_ms, 60'000u);
  EXPECT_EQ(config.participants.allow, std::vector<std::string>{"http://127.0.0.1:*"});
  EXPECT_TRUE(config.resources.empty());
  EXPECT_EQ(config.limits.max_body_bytes, 1'048'576u);
  EXPECT_EQ(config.limits.max_branches, 64u);
  EXPECT_EQ(config.limits.max_in_flight, 10'000u);
  EXPECT_EQ(config.retention.finished_ms, 86'400'000u);
  EXPECT_TRUE(loaded->warnings.empty());
  EXPECT_EQ(config, Config{});
}

TEST(ConfigTest, EmptyFileAndEmptySectionsMeanDefaults) {
  EXPECT_EQ(LoadOk(""), Config{});
  EXPECT_EQ(LoadOk("limits:\nlog:\n"), Config{});
}

TEST(ConfigTest, ReadsEveryKeyFromAFile) {
  testing::TempDir dir;
  const std::string path = dir.File("txc.yaml");
  std::ofstream(path) << R"(
node_id: coord-7
listen: 0.0.0.0:9090
log: {kind: file, dir: /data/txc, segment_bytes_max: 2097152, compact_after_bytes: 4194304}
stuck_after_ms: 5000
participants: {allow: ["http://127.0.0.1:*", "https://payments.internal/*"]}
resources:
  - {name: orders, kind: postgres, dsn: "postgresql://user:pw@127.0.0.1:5432/orders"}
  - {name: payments, kind: mysql, dsn: "mysql://user:pw@127.0.0.1:3306/payments"}
limits: {max_body_bytes: 2048, max_branches: 8, max_in_flight: 100}
retention: {finished_ms: 1000}
http: {threads: 4, queue_max: 8, keep_alive_timeout_ms: 2000, request_timeout_ms: 3000}
shutdown_grace_ms: 250
)";
  Result<LoadedConfig> loaded = LoadConfig(path, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config& c = loaded->config;
  EXPECT_EQ(c.node_id, "coord-7");
  EXPECT_EQ(c.listen.ToString(), "0.0.0.0:9090");
  EXPECT_EQ(c.log.dir, "/data/txc");
  EXPECT_EQ(c.log.segment_bytes_max, 2'097'152u);
  EXPECT_EQ(c.log.compact_after_bytes, 4'194'304u);
  EXPECT_EQ(c.stuck_after_ms, 5000u);
  EXPECT_EQ(c.participants.allow,
            (std::vector<std::string>{"http://127.0.0.1:*", "https://payments.internal/*"}));
  ASSERT_EQ(c.resources.size(), 2u);
  EXPECT_EQ(c.resources[0],
            (ResourceConfig{"orders", "postgres", "postgresql://user:pw@127.0.0.1:5432/orders"}));
  EXPECT_EQ(c.resources[1].name, "payments");
  EXPECT_EQ(c.resources[1].kind, "mysql");
  EXPECT_EQ(c.limits.max_body_bytes, 2048u);
  EXPECT_EQ(c.limits.max_branches, 8u);
  EXPECT_EQ(c.limits.max_in_flight, 100u);
  EXPECT_EQ(c.retention.finished_ms, 1000u);
  EXPECT_EQ(c.http.threads, 4u);
  EXPECT_EQ(c.http.queue_max, 8u);
  EXPECT_EQ(c.http.keep_alive_timeout_ms, 2000u);
  EXPECT_EQ(c.http.request_timeout_ms, 3000u);
  EXPECT_EQ(c.shutdown_grace_ms, 250u);
}

TEST(ConfigTest, ListenAcceptsIpv6AndPortZero) {
  Config c = LoadOk("listen: \"[::1]:0\"");
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.listen.ToString(), "[::1]:0");
  EXPECT_EQ(LoadOk("listen: localhost:1").listen.host, "localhost");
}

TEST(ConfigTest, EnvironmentOverridesTheFile) {
  const Environment env = {
      {"TXC_LISTEN", "127.0.0.1:9999"},   {"TXC_LOG_DIR", "/tmp/elsewhere"},
      {"TXC_LOG_KIND", "file"},           {"TXC_NODE_ID", "from_env"},
      {"TXC_STUCK_AFTER_MS", "42"},       {"TXC_LIMITS_MAX_BODY_BYTES", "77"},
      {"TXC_RETENTION_FINISHED_MS", "0"}, {"TXC_HTTP_THREADS", "3"},
  };
  Config c = LoadOk("node_id: from_file\nlisten: 127.0.0.1:1\nlimits: {max_body_bytes: 5}\n", env);
  EXPECT_EQ(c.listen.port, 9999);
  EXPECT_EQ(c.log.dir, "/tmp/elsewhere");
  EXPECT_EQ(c.node_id, "from_env");
  EXPECT_EQ(c.stuck_after_ms, 42u);
  EXPECT_EQ(c.limits.max_body_bytes, 77u);
  EXPECT_EQ(c.retention.finished_ms, 0u);
  EXPECT_EQ(c.http.threads, 3u);
}

TEST(ConfigTest, ListFromEnvironmentIsCommaSeparatedOrAYamlFlowList) {
  Config comma = LoadOk("", {{"TXC_PARTICIPANTS_ALLOW", " http://a:*, https://b/* ,"}});
  EXPECT_EQ(comma.participants.allow, (std::vector<std::string>{"http://a:*", "https://b/*"}));
  Config flow = LoadOk("", {{"TXC_PARTICIPANTS_ALLOW", "[\"http://a,b:*\", \"http://c\"]"}});
  EXPECT_EQ(flow.participants.allow, (std::vector<std::string>{"http://a,b:*", "http://c"}));
  Config empty = LoadOk("", {{"TXC_PARTICIPANTS_ALLOW", ""}});
  EXPECT_TRUE(empty.participants.allow.empty());
}

TEST(ConfigTest, ResourcesFromEnvironmentAreAYamlFlowList) {
  Config c =
      LoadOk("resources: [{name: old, kind: mysql, dsn: \"mysql://h/db\"}]",
             {{"TXC_RESOURCES", "[{name: orders, kind: postgres, dsn: \"host=h dbname=o\"}]"}});
  ASSERT_EQ(c.resources.size(), 1u);
  EXPECT_EQ(c.resources[0].name, "orders");
  EXPECT_EQ(c.resources[0].dsn, "host=h dbname=o");
}

TEST(ConfigTest, UnknownEnvironmentVariableIsAWarningNotAnError) {
  Result<LoadedConfig> loaded = LoadConfigFromString("", {{"TXC_LSITEN", "x"}, {"PATH", "/bin"}});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_THAT(loaded->warnings[0], HasSubstr("TXC_LSITEN"));
}

TEST(ConfigTest, MissingFileIsNamed) {
  Result<LoadedConfig> loaded = LoadConfig("/nonexistent/txc.yaml", {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("/nonexistent/txc.yaml"));
}

// One bad input and the start of the message it must produce (which names the key).
struct BadInput {
  std::string yaml;
  Environment env;
  std::string expected;
};

class ConfigErrorTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(ConfigErrorTest, NamesTheKey) {
  const BadInput& input = GetParam();
  Status status = LoadError(input.yaml, input.env);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(input.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ConfigErrorTest,
    ::testing::Values(
        // Wrong values and types.
        BadInput{"limits: {max_body_bytes: abc}",
                 {},
                 "limits.max_body_bytes: must be a positive integer, got \"abc\""},
        BadInput{"limits: {max_body_bytes: 0}", {}, "limits.max_body_bytes: must be at least 1"},
        BadInput{"limits: {max_body_bytes: -5}",
                 {},
                 "limits.max_body_bytes: must be a positive integer, got \"-5\""},
        BadInput{"limits: {max_body_bytes: 99999999999}",
                 {},
                 "limits.max_body_bytes: must be at most 67108864"},
        BadInput{"limits: {max_body_bytes: 99999999999999999999999}",
                 {},
                 "limits.max_body_bytes: must be at most"},
        BadInput{"limits: {max_body_bytes: [1]}",
                 {},
                 "limits.max_body_bytes: must be a single value, got a list"},
        BadInput{"limits: {max_body_bytes: }",
                 {},
                 "limits.max_body_bytes: must be a single value, got nothing"},
        BadInput{"limits: {max_branches: 1.5}", {}, "limits.max_branches: must be a positive"},
        BadInput{"limits: {max_in_flight: 0}", {}, "limits.max_in_flight: must be at least 1"},
        BadInput{"limits: 5", {}, "limits: must be a map of max_body_bytes, max_branches"},
        BadInput{"stuck_after_ms: soon", {}, "stuck_after_ms: must be a positive integer"},
        BadInput{"retention: {finished_ms: -1}",
                 {},
                 "retention.finished_ms: must be a non-negative integer"},
        BadInput{"http: {threads: 0}", {}, "http.threads: must be at least 1"},
        BadInput{"http: {threads: 5000}", {}, "http.threads: must be at most 1024"},
        BadInput{"http: {queue_max: x}", {}, "http.queue_max: must be a positive integer"},
        BadInput{"shutdown_grace_ms: 600001", {}, "shutdown_grace_ms: must be at most 600000"},
        BadInput{"node_id: \"has space\"", {}, "node_id: must be 1-32 characters"},
        BadInput{"node_id: \"\"", {}, "node_id: must be 1-32 characters"},
        BadInput{"node_id: " + std::string(33, 'a'), {}, "node_id: must be 1-32 characters"},
        BadInput{"listen: \"8080\"", {}, "listen: must be host:port"},
        BadInput{"listen: \":8080\"", {}, "listen: must be host:port"},
        BadInput{"listen: \"127.0.0.1:70000\"", {}, "listen: port must be at most 65535"},
        BadInput{"listen: \"127.0.0.1:http\"", {}, "listen: port must be a non-negative integer"},
        BadInput{
            "log: {kind: sqlite}", {}, "log.kind: must be one of file | postgres, got \"sqlite\""},
        BadInput{"log: {kind: postgres}", {}, "log.dsn: is required when log.kind is postgres"},
        BadInput{"log: {dir: \"\"}", {}, "log.dir: must not be empty"},
        BadInput{"log: {segment_bytes_max: 10}", {}, "log.segment_bytes_max: must be at least"},
        BadInput{"log: {dsn: \"mysql://u:pw@h/db\"}", {}, "log.dsn: must be a postgresql://"},
        BadInput{"participants: {allow: \"http://x\"}",
                 {},
                 "participants.allow: must be a list, got a scalar"},
        BadInput{"participants: {allow: [\"ftp://x\"]}",
                 {},
                 "participants.allow[0]: must be an http:// or https:// URL pattern"},
        BadInput{"participants: {allow: [\"http://\"]}",
                 {},
                 "participants.allow[0]: must be an http:// or https:// URL pattern"},
        BadInput{"participants: {allow: [\"http://ok\", {a: b}]}",
                 {},
                 "participants.allow[1]: must be a string, got a map"},
        BadInput{"resources: {name: x}", {}, "resources: must be a list of {name, kind, dsn}"},
        BadInput{"resources: [orders]", {}, "resources[0]: must be a map {name, kind, dsn}"},
        BadInput{"resources: [{name: a, kind: mysql, dsn: \"mysql://h/a\"},"
                 " {name: b, kind: oracle, dsn: x}]",
                 {},
                 "resources[1].kind: must be one of postgres | mysql, got \"oracle\""},
        BadInput{"resources: [{name: orders, kind: postgres, dsn: \"host=a\"},"
                 " {name: orders, kind: mysql, dsn: \"mysql://h/b\"}]",
                 {},
                 "resources[1].name: \"orders\" is already the name of resources[0]"},
        BadInput{
            "resources: [{name: orders, kind: postgres}]", {}, "resources[0].dsn: is required"},
        BadInput{"resources: [{nmae: orders, kind: postgres, dsn: x}]",
                 {},
                 "resources[0].nmae: unknown key (known keys: name, kind, dsn)"},
        BadInput{"resources: [{name: \"a b\", kind: postgres, dsn: \"host=a\"}]",
                 {},
                 "resources[0].name: must be 1-64 characters"},
        BadInput{"resources: [{name: a, kind: mysql, dsn: \"postgresql://u:pw@h/db\"}]",
                 {},
                 "resources[0].dsn: must be a mysql:// URI"},
        BadInput{"resources: [{name: a, kind: postgres, dsn: [x]}]",
                 {},
                 "resources[0].dsn: must be a string, got a list"},
        // Unknown keys, at every level.
        BadInput{"limtis: {max_body_bytes: 5}", {}, "limtis: unknown key (known keys here: "},
        BadInput{"limits: {max_body_byte: 5}",
                 {},
                 "limits.max_body_byte: unknown key (known keys here: max_body_bytes, "
                 "max_branches, max_in_flight)"},
        BadInput{"log: {kind: file, path: /x}", {}, "log.path: unknown key"},
        BadInput{"node_id: a\nnode_id: b\n", {}, "node_id: given twice"},
        // Not YAML, or not a map.
        BadInput{"node_id: [", {}, "invalid YAML at line 1"},
        BadInput{"- a\n- b\n", {}, "must be a YAML map of keys, got a list"},
        // Environment overrides name both the key and the variable.
        BadInput{"",
                 {{"TXC_LIMITS_MAX_BODY_BYTES", "abc"}},
                 "limits.max_body_bytes (from TXC_LIMITS_MAX_BODY_BYTES): must be a positive "
                 "integer, got \"abc\""},
        BadInput{"", {{"TXC_NODE_ID", "bad id"}}, "node_id (from TXC_NODE_ID): must be 1-32"},
        BadInput{"", {{"TXC_LOG_KIND", "s3"}}, "log.kind (from TXC_LOG_KIND): must be one of"},
        BadInput{"",
                 {{"TXC_PARTICIPANTS_ALLOW", "http://ok,ftp://bad"}},
                 "participants.allow[1] (from TXC_PARTICIPANTS_ALLOW): must be an http://"},
        BadInput{"",
                 {{"TXC_RESOURCES", "[{name: a, kind: x, dsn: y}]"}},
                 "resources[0].kind (from TXC_RESOURCES): must be one of postgres | mysql"},
        BadInput{"", {{"TXC_RESOURCES", "[{name: a"}}, "resources (from TXC_RESOURCES): "}));

TEST(ConfigTest, ErrorsNeverEchoADsnPassword) {
  Status status =
      LoadError("resources: [{name: a, kind: mysql, dsn: \"postgresql://u:hunter2@h/db\"}]");
  EXPECT_THAT(status.message(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(status.message(), HasSubstr("u:***@h"));
}

// A valid value for every key: the table must grow with the keys (a key without an entry here
// fails KeyTableCoversEveryKey), and each is checked to be settable through its variable.
const std::map<std::string, std::string>& SampleValues() {
  static const std::map<std::string, std::string> samples = {
      {"node_id", "n9"},
      {"log_format", "json"},
      {"listen", "127.0.0.1:1234"},
      {"log.kind", "postgres"},
      {"log.dir", "/var/lib/x"},
      {"log.dsn", "postgresql://u@h/db"},
      {"log.segment_bytes_max", "1048577"},
      {"log.compact_after_bytes", "1048578"},
      {"stuck_after_ms", "11"},
      {"participants.allow", "http://h:*"},
      {"resources", "[{name: r, kind: mysql, dsn: \"mysql://h/r\"}]"},
      {"limits.max_body_bytes", "12"},
      {"limits.max_branches", "13"},
      {"limits.max_in_flight", "14"},
      {"retention.finished_ms", "15"},
      {"http.threads", "16"},
      {"http.queue_max", "17"},
      {"http.keep_alive_timeout_ms", "18"},
      {"http.request_timeout_ms", "19"},
      {"shutdown_grace_ms", "20"},
      {"auth.tokens_file", "/etc/txc/tokens"},
  };
  return samples;
}

TEST(ConfigTest, KeyTableCoversEveryKey) {
  std::set<std::string> env_names;
  for (const std::string& key : ConfigKeyPaths()) {
    EXPECT_EQ(SampleValues().count(key), 1u) << "no sample value for " << key;
    EXPECT_TRUE(env_names.insert(EnvironmentVariableFor(key)).second) << key;
  }
  EXPECT_EQ(SampleValues().size(), ConfigKeyPaths().size());
  EXPECT_EQ(EnvironmentVariableFor("limits.max_body_bytes"), "TXC_LIMITS_MAX_BODY_BYTES");
  EXPECT_EQ(EnvironmentVariableFor("log.dir"), "TXC_LOG_DIR");
}

TEST(ConfigTest, EveryKeyIsSettableThroughItsEnvironmentVariable) {
  Environment env;
  for (const auto& [key, value] : SampleValues()) env[EnvironmentVariableFor(key)] = value;
  Result<LoadedConfig> loaded = LoadConfigFromString("", env);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(loaded->warnings.empty());
  const Config& c = loaded->config;
  EXPECT_EQ(c.node_id, "n9");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.listen.port, 1234);
  EXPECT_EQ(c.log.kind, "postgres");
  EXPECT_EQ(c.log.dir, "/var/lib/x");
  EXPECT_EQ(c.log.dsn, "postgresql://u@h/db");
  EXPECT_EQ(c.log.segment_bytes_max, 1'048'577u);
  EXPECT_EQ(c.log.compact_after_bytes, 1'048'578u);
  EXPECT_EQ(c.stuck_after_ms, 11u);
  EXPECT_EQ(c.participants.allow, std::vector<std::string>{"http://h:*"});
  ASSERT_EQ(c.resources.size(), 1u);
  EXPECT_EQ(c.resources[0].name, "r");
  EXPECT_EQ(c.limits.max_body_bytes, 12u);
  EXPECT_EQ(c.limits.max_branches, 13u);
  EXPECT_EQ(c.limits.max_in_flight, 14u);
  EXPECT_EQ(c.retention.finished_ms, 15u);
  EXPECT_EQ(c.http.threads, 16u);
  EXPECT_EQ(c.http.queue_max, 17u);
  EXPECT_EQ(c.http.keep_alive_timeout_ms, 18u);
  EXPECT_EQ(c.http.request_timeout_ms, 19u);
  EXPECT_EQ(c.shutdown_grace_ms, 20u);
  EXPECT_EQ(c.auth.tokens_file, "/etc/txc/tokens");
}

TEST(ConfigTest, HelpListsEveryKeyWithDefaultAndVariable) {
  const std::string help = ConfigHelpText();
  for (const std::string& key : ConfigKeyPaths()) {
    EXPECT_THAT(help, HasSubstr("  " + key + "\n")) << key;
    EXPECT_THAT(help, HasSubstr(EnvironmentVariableFor(key))) << key;
  }
  EXPECT_THAT(help, HasSubstr("default: 127.0.0.1:8080"));
  EXPECT_THAT(help, HasSubstr("default: ./var/txc"));
  EXPECT_THAT(help, HasSubstr("default: 1048576"));
}

TEST(ConfigTest, RenderedConfigLoadsBackToTheSameConfig) {
  Environment env;
  for (const auto& [key, value] : SampleValues()) env[EnvironmentVariableFor(key)] = value;
  Result<LoadedConfig> original = LoadConfigFromString("", env);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  const std::string rendered = RenderEffectiveConfig(original->config);
  Result<LoadedConfig> again = LoadConfigFromString(rendered, {});
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << rendered;
  EXPECT_EQ(again->config, original->config) << rendered;
}

TEST(ConfigTest, RenderedConfigRedactsEveryPassword) {
  Config c = LoadOk(R"(
log: {kind: postgres, dsn: "postgresql://txc:logsecret@db:5432/txc"}
resources:
  - {name: a, kind: postgres, dsn: "host=db user=u password=pgsecret dbname=a"}
  - {name: b, kind: mysql, dsn: "mysql://u:mysqlsecret@db:3306/b"}
)");
  const std::string rendered = RenderEffectiveConfig(c);
  for (const char* secret : {"logsecret", "pgsecret", "mysqlsecret"}) {
    EXPECT_THAT(rendered, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(rendered, HasSubstr("postgresql://txc:***@db:5432/txc"));
  EXPECT_THAT(rendered, HasSubstr("password=***"));
  EXPECT_THAT(rendered, HasSubstr("mysql://u:***@db:3306/b"));
}

TEST(RedactDsnTest, RemovesPasswordsInEveryForm) {
  EXPECT_EQ(RedactDsn("postgresql://user:pw@host:5432/db"), "postgresql://user:***@host:5432/db");
  EXPECT_EQ(RedactDsn("postgresql://user@host/db"), "postgresql://user@host/db");
  EXPECT_EQ(RedactDsn("postgresql://host/db"), "postgresql://host/db");
  EXPECT_EQ(RedactDsn("mysql://u:p@ss:w0rd@h/db"), "mysql://u:***@h/db");
  EXPECT_EQ(RedactDsn("postgresql://h/db?sslmode=require&password=pw"),
            "postgresql://h/db?sslmode=require&password=***");
  EXPECT_EQ(RedactDsn("host=h password=pw user=u"), "host=h password=*** user=u");
  EXPECT_EQ(RedactDsn("host=h PASSWORD='a b\\' c' user=u"), "host=h PASSWORD=*** user=u");
  EXPECT_EQ(RedactDsn("host=h passwordless=1"), "host=h passwordless=1");
  EXPECT_EQ(RedactDsn(""), "");
}

}  // namespace
}  // namespace txc::config
