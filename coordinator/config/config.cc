#include "coordinator/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <set>
#include <sstream>
#include <string_view>

extern char** environ;  // NOLINT: POSIX

namespace txc::config {
namespace {

constexpr std::string_view kEnvPrefix = "TXC_";

// ---------------------------------------------------------------------------------------------
// Value checks. Each returns the message without the key path; the caller prefixes it.

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Result<uint64_t> ParseUnsigned(const std::string& raw, uint64_t min, uint64_t max) {
  const std::string kind = min >= 1 ? "a positive integer" : "a non-negative integer";
  uint64_t value = 0;
  const char* begin = raw.data();
  const char* end = raw.data() + raw.size();
  auto [ptr, error] = std::from_chars(begin, end, value);
  if (raw.empty() || error == std::errc::invalid_argument || ptr != end) {
    return Status::InvalidArgument("must be " + kind + ", got " + Quoted(raw));
  }
  if (error == std::errc::result_out_of_range || value > max) {
    return Status::InvalidArgument("must be at most " + std::to_string(max) + ", got " +
                                   Quoted(raw));
  }
  if (value < min) {
    return Status::InvalidArgument("must be at least " + std::to_string(min) + ", got " +
                                   Quoted(raw));
  }
  return value;
}

bool AllOf(std::string_view text, const std::function<bool(char)>& allowed) {
  return std::all_of(text.begin(), text.end(), allowed);
}

bool IsIdentifierChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

Status CheckNodeId(const std::string& raw) {
  if (raw.empty() || raw.size() > 32 || !AllOf(raw, IsIdentifierChar)) {
    return Status::InvalidArgument("must be 1-32 characters of [A-Za-z0-9_-], got " + Quoted(raw));
  }
  return Status::Ok();
}

Status CheckResourceName(const std::string& raw) {
  auto allowed = [](char c) { return IsIdentifierChar(c) || c == '.'; };
  if (raw.empty() || raw.size() > 64 || !AllOf(raw, allowed)) {
    return Status::InvalidArgument("must be 1-64 characters of [A-Za-z0-9._-], got " + Quoted(raw));
  }
  return Status::Ok();
}

Result<ListenAddress> ParseListen(const std::string& raw) {
  const Status bad = Status::InvalidArgument(
      "must be host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got " + Quoted(raw));
  std::string host;
  std::string port_text;
  if (!raw.empty() && raw.front() == '[') {
    size_t close = raw.find(']');
    if (close == std::string::npos || close + 1 >= raw.size() || raw[close + 1] != ':') return bad;
    host = raw.substr(1, close - 1);
    port_text = raw.substr(close + 2);
    auto ipv6_char = [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':';
    };
    if (host.empty() || !AllOf(host, ipv6_char)) return bad;
  } else {
    size_t colon = raw.rfind(':');
    if (colon == std::string::npos) return bad;
    host = raw.substr(0, colon);
    port_text = raw.substr(colon + 1);
    auto host_char = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-';
    };
    if (host.empty() || !AllOf(host, host_char)) return bad;
  }
  Result<uint64_t> port = ParseUnsigned(port_text, 0, 65535);
  if (!port.ok()) {
    return Status::InvalidArgument("port " + port.status().message() + " (in " + Quoted(raw) + ")");
  }
  ListenAddress address;
  address.host = host;
  address.port = static_cast<uint16_t>(*port);
  return address;
}

Status CheckParticipantPattern(const std::string& raw) {
  size_t scheme_bytes = 0;
  if (raw.rfind("http://", 0) == 0) scheme_bytes = std::string_view("http://").size();
  if (raw.rfind("https://", 0) == 0) scheme_bytes = std::string_view("https://").size();
  auto no_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) == 0; };
  if (scheme_bytes == 0 || raw.size() == scheme_bytes || !AllOf(raw, no_space)) {
    return Status::InvalidArgument(
        "must be an http:// or https:// URL pattern (`*` matches any characters), got " +
        Quoted(raw));
  }
  return Status::Ok();
}

Status CheckDsn(const std::string& kind, const std::string& dsn) {
  if (dsn.empty()) return Status::InvalidArgument("must not be empty");
  bool ok = false;
  std::string expected;
  if (kind == "postgres") {
    ok = dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0 ||
         dsn.find('=') != std::string::npos;
    expected = "a postgresql:// URI or a keyword=value connection string";
  } else if (kind == "mysql") {
    ok = dsn.rfind("mysql://", 0) == 0;
    expected = "a mysql:// URI";
  } else {
    return Status::Ok();  // the kind's own error is reported instead
  }
  if (!ok) {
    // Never echo a DSN unredacted: it may carry a password.
    return Status::InvalidArgument("must be " + expected + ", got " + Quoted(RedactDsn(dsn)));
  }
  return Status::Ok();
}

Status CheckOneOf(const std::string& raw, const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), raw) != choices.end()) return Status::Ok();
  std::string list;
  for (const std::string& choice : choices) list += (list.empty() ? "" : " | ") + choice;
  return Status::InvalidArgument("must be one of " + list + ", got " + Quoted(raw));
}

// ---------------------------------------------------------------------------------------------
// The key table.

enum class Shape {
  kScalar,        // one value
  kList,          // a list of scalars; from the environment: comma-separated or a YAML flow list
  kResourceList,  // a list of {name, kind, dsn}; from the environment: a YAML flow list
};

struct KeySpec {
  std::string path;
  Shape shape = Shape::kScalar;
  std::string default_text;
  std::string meaning;
  // kScalar: parse and store one value.
  std::function<Status(Config&, const std::string&)> set_scalar;
  // kList: check one item, then store them all.
  std::function<Status(const std::string&)> check_item;
  std::function<void(Config&, std::vector<std::string>)> set_list;
};

// A setter for an unsigned integer field within [min, max].
std::function<Status(Config&, const std::string&)> UnsignedSetter(uint64_t Config::*field,
                                                                  uint64_t min, uint64_t max) {
  return [=](Config& config, const std::string& raw) -> Status {
    Result<uint64_t> value = ParseUnsigned(raw, min, max);
    if (!value.ok()) return value.status();
    config.*field = *value;
    return Status::Ok();
  };
}

template <typename Section>
std::function<Status(Config&, const std::string&)> UnsignedSetter(Section Config::*section,
                                                                  uint64_t Section::*field,
                                                                  uint64_t min, uint64_t max) {
  return [=](Config& config, const std::string& raw) -> Status {
    Result<uint64_t> value = ParseUnsigned(raw, min, max);
    if (!value.ok()) return value.status();
    (config.*section).*field = *value;
    return Status::Ok();
  };
}

KeySpec Scalar(std::string path, std::string default_text, std::string meaning,
               std::function<Status(Config&, const std::string&)> set_scalar) {
  return {std::move(path),
          Shape::kScalar,
          std::move(default_text),
          std::move(meaning),
          std::move(set_scalar),
          {},
          {}};
}

KeySpec List(std::string path, std::string default_text, std::string meaning,
             std::function<Status(const std::string&)> check_item,
             std::function<void(Config&, std::vector<std::string>)> set_list) {
  return {std::move(path),    Shape::kList, std::move(default_text),
          std::move(meaning), {},           std::move(check_item),
          std::move(set_list)};
}

// Resources are parsed by ApplyResources: the only list of maps.
KeySpec ResourceList(std::string path, std::string default_text, std::string meaning) {
  return {std::move(path),
          Shape::kResourceList,
          std::move(default_text),
          std::move(meaning),
          {},
          {},
          {}};
}

// The table itself: one entry per key, in --help order.
std::vector<KeySpec> BuildKeys() {
  constexpr uint64_t kHourMs = 3'600'000;
  constexpr uint64_t kYearMs = 366 * 24 * kHourMs;
  std::vector<KeySpec> k;
  k.push_back(
      Scalar("node_id", "c1",
             "Names this coordinator in logs, metrics, leases and database XIDs: 1-32 "
             "characters of [A-Za-z0-9_-]. Never change it while transactions are in flight.",
             [](Config& c, const std::string& raw) {
               TXC_RETURN_IF_ERROR(CheckNodeId(raw));
               c.node_id = raw;
               return Status::Ok();
             }));
  k.push_back(Scalar("log_format", "logfmt",
                     "txcoord's own log on stderr, one line per event: logfmt (key=value) or "
                     "json (one object per line). Either way each line names its event and a "
                     "transaction's lines carry its gid.",
                     [](Config& c, const std::string& raw) {
                       if (raw != "logfmt" && raw != "json") {
                         return Status::InvalidArgument("must be logfmt or json, got '" + raw +
                                                        "'");
                       }
                       c.log_format = raw;
                       return Status::Ok();
                     }));
  k.push_back(Scalar("listen", "127.0.0.1:8080",
                     "host:port the HTTP API listens on ([::1]:8080 for IPv6; port 0 picks a free "
                     "port, logged at start).",
                     [](Config& c, const std::string& raw) {
                       Result<ListenAddress> address = ParseListen(raw);
                       if (!address.ok()) return address.status();
                       c.listen = *address;
                       return Status::Ok();
                     }));
  k.push_back(Scalar("log.kind", "file",
                     "Where decisions are made durable: file (a local data directory) or postgres "
                     "(a shared store; not supported by this build yet).",
                     [](Config& c, const std::string& raw) {
                       TXC_RETURN_IF_ERROR(CheckOneOf(raw, {"file", "postgres"}));
                       c.log.kind = raw;
                       return Status::Ok();
                     }));
  k.push_back(Scalar("log.dir", "./var/txc",
                     "The file log's data directory (created when missing; locked while in use).",
                     [](Config& c, const std::string& raw) {
                       if (raw.empty()) return Status::InvalidArgument("must not be empty");
                       c.log.dir = raw;
                       return Status::Ok();
                     }));
  k.push_back(Scalar("log.dsn", "\"\"",
                     "The postgres log's connection string (postgresql://user:pw@host:port/db). "
                     "Its password is never logged.",
                     [](Config& c, const std::string& raw) {
                       if (!raw.empty()) TXC_RETURN_IF_ERROR(CheckDsn("postgres", raw));
                       c.log.dsn = raw;
                       return Status::Ok();
                     }));
  k.push_back(
      Scalar("log.segment_bytes_max", "67108864",
             "A file log segment is sealed and a new one started past this many bytes "
             "(1 MiB to 16 GiB).",
             UnsignedSetter(&Config::log, &LogConfig::segment_bytes_max, 1ull << 20, 16ull << 30)));
  k.push_back(Scalar(
      "log.compact_after_bytes", "268435456",
      "The file log compacts itself once this many bytes were written since the last "
      "compaction (1 MiB to 1 TiB).",
      UnsignedSetter(&Config::log, &LogConfig::compact_after_bytes, 1ull << 20, 1ull << 40)));
  k.push_back(Scalar("stuck_after_ms", "60000",
                     "A transaction not final after this long is reported stuck (API, metrics).",
                     UnsignedSetter(&Config::stuck_after_ms, 1, kYearMs)));
  k.push_back(List("participants.allow", "[\"http://127.0.0.1:*\"]",
                   "URL patterns of the HTTP participants a transaction may call (`*` matches any "
                   "characters); other targets are refused at submission. Environment: "
                   "comma-separated or a YAML flow list.",
                   CheckParticipantPattern, [](Config& c, std::vector<std::string> items) {
                     c.participants.allow = std::move(items);
                   }));
  k.push_back(
      ResourceList("resources", "[]",
                   "Database participants, by name: a list of {name, kind: postgres|mysql, dsn}. "
                   "Names are 1-64 of [A-Za-z0-9._-] and unique. Environment: a YAML flow list, "
                   "e.g. [{name: orders, kind: postgres, dsn: \"postgresql://...\"}]. DSN "
                   "passwords are never logged."));
  k.push_back(
      Scalar("limits.max_body_bytes", "1048576",
             "Largest request body accepted; larger ones get 413 body_too_large without "
             "being read (1 to 67108864).",
             UnsignedSetter(&Config::limits, &LimitsConfig::max_body_bytes, 1, 64ull << 20)));
  k.push_back(Scalar("limits.max_branches", "64",
                     "Most branches one transaction may have (1 to 10000).",
                     UnsignedSetter(&Config::limits, &LimitsConfig::max_branches, 1, 10'000)));
  k.push_back(Scalar("limits.max_in_flight", "10000",
                     "Most transactions in flight at once; beyond it submissions are shed with 503 "
                     "(1 to 10000000).",
                     UnsignedSetter(&Config::limits, &LimitsConfig::max_in_flight, 1, 10'000'000)));
  k.push_back(
      Scalar("retention.finished_ms", "86400000",
             "How long a finished transaction stays readable (and its gid taken).",
             UnsignedSetter(&Config::retention, &RetentionConfig::finished_ms, 0, kYearMs)));
  k.push_back(Scalar("http.threads", "16",
                     "HTTP connections served at once; each open keep-alive connection holds one "
                     "(1 to 1024).",
                     UnsignedSetter(&Config::http, &HttpConfig::threads, 1, 1024)));
  k.push_back(
      Scalar("http.queue_max", "64",
             "Accepted connections waiting for a thread; beyond it they are closed and counted "
             "in txc_requests_rejected_total{reason=\"queue_full\"} (1 to 100000).",
             UnsignedSetter(&Config::http, &HttpConfig::queue_max, 1, 100'000)));
  k.push_back(
      Scalar("http.keep_alive_timeout_ms", "10000",
             "An idle keep-alive connection is closed after this long.",
             UnsignedSetter(&Config::http, &HttpConfig::keep_alive_timeout_ms, 1, kHourMs)));
  k.push_back(
      Scalar("http.request_timeout_ms", "30000",
             "Longest wait for a client to send or take the bytes of a request or response.",
             UnsignedSetter(&Config::http, &HttpConfig::request_timeout_ms, 1, kHourMs)));
  k.push_back(Scalar("shutdown_grace_ms", "10000",
                     "On SIGTERM/SIGINT: how long in-flight requests may take to finish before "
                     "their connections are cut (0 to 600000).",
                     UnsignedSetter(&Config::shutdown_grace_ms, 0, 600'000)));
  k.push_back(Scalar("auth.tokens_file", "\"\"",
                     "API tokens: a file of `<role> <name> <token>` lines (roles read and "
                     "operate), readable by its owner only (chmod 600). Empty: access control is "
                     "off and every request is served. Tokens are never logged.",
                     [](Config& c, const std::string& raw) {
                       c.auth.tokens_file = raw;
                       return Status::Ok();
                     }));
  return k;
}

const std::vector<KeySpec>& Keys() {
  static const std::vector<KeySpec> keys = BuildKeys();
  return keys;
}

const KeySpec* FindKey(std::string_view path) {
  for (const KeySpec& spec : Keys()) {
    if (spec.path == path) return &spec;
  }
  return nullptr;
}

// True when `path` is a section holding keys (log, limits, ...).
bool IsSection(std::string_view path) {
  std::string prefix = std::string(path) + ".";
  for (const KeySpec& spec : Keys()) {
    if (spec.path.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// Names of the keys and sections directly inside `section` ("" for the top level).
std::string KnownChildren(const std::string& section) {
  std::string prefix = section.empty() ? "" : section + ".";
  std::vector<std::string> names;
  for (const KeySpec& spec : Keys()) {
    if (spec.path.rfind(prefix, 0) != 0) continue;
    std::string rest = spec.path.substr(prefix.size());
    rest = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), rest) == names.end()) names.push_back(rest);
  }
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string EnvName(const std::string& path) {
  std::string name(kEnvPrefix);
  for (char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// Raw values: what the file and the environment said, before parsing.

struct RawResource {
  std::map<std::string, std::string> fields;
};

struct RawValue {
  std::string origin;  // the environment variable, or "" for the file
  std::string scalar;
  std::vector<std::string> items;
  std::vector<RawResource> resources;
};

using RawValues = std::map<std::string, RawValue>;

std::string KeyPrefix(const std::string& path, const std::string& origin) {
  return origin.empty() ? path : path + " (from " + origin + ")";
}

Status KeyError(const std::string& path, const std::string& origin, const std::string& message) {
  return Status::InvalidArgument(KeyPrefix(path, origin) + ": " + message);
}

const char* NodeKindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "something else";
}

Status ReadResources(const YAML::Node& node, const std::string& origin, RawValue* raw) {
  if (!node.IsSequence()) {
    return KeyError("resources", origin,
                    std::string("must be a list of {name, kind, dsn}, got ") + NodeKindName(node));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_path = "resources[" + std::to_string(i) + "]";
    const YAML::Node& item = node[i];
    if (!item.IsMap()) {
      return KeyError(item_path, origin,
                      std::string("must be a map {name, kind, dsn}, got ") + NodeKindName(item));
    }
    RawResource resource;
    for (const auto& field : item) {
      if (!field.first.IsScalar()) return KeyError(item_path, origin, "keys must be plain names");
      const std::string name = field.first.Scalar();
      const std::string field_path = item_path + "." + name;
      if (name != "name" && name != "kind" && name != "dsn") {
        return KeyError(field_path, origin, "unknown key (known keys: name, kind, dsn)");
      }
      if (resource.fields.count(name) != 0) return KeyError(field_path, origin, "given twice");
      if (!field.second.IsScalar()) {
        return KeyError(field_path, origin,
                        std::string("must be a string, got ") + NodeKindName(field.second));
      }
      resource.fields[name] = field.second.Scalar();
    }
    raw->resources.push_back(std::move(resource));
  }
  return Status::Ok();
}

Status ReadList(const YAML::Node& node, const std::string& path, const std::string& origin,
                RawValue* raw) {
  if (!node.IsSequence()) {
    return KeyError(path, origin, std::string("must be a list, got ") + NodeKindName(node));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      return KeyError(path + "[" + std::to_string(i) + "]", origin,
                      std::string("must be a string, got ") + NodeKindName(node[i]));
    }
    raw->items.push_back(node[i].Scalar());
  }
  return Status::Ok();
}

// Walks a YAML map at `section` ("" for the document), recording every known key and refusing
// unknown ones.
Status ReadMap(const YAML::Node& map, const std::string& section, RawValues* values) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) {
      return KeyError(section.empty() ? "(top level)" : section, "", "keys must be plain names");
    }
    const std::string name = entry.first.Scalar();
    const std::string path = section.empty() ? name : section + "." + name;
    if (!seen.insert(name).second) return KeyError(path, "", "given twice");
    const YAML::Node& value = entry.second;
    if (IsSection(path)) {
      if (value.IsNull()) continue;  // `limits:` with nothing under it: all defaults
      if (!value.IsMap()) {
        return KeyError(path, "",
                        std::string("must be a map of ") + KnownChildren(path) + ", got " +
                            NodeKindName(value));
      }
      TXC_RETURN_IF_ERROR(ReadMap(value, path, values));
      continue;
    }
    const KeySpec* spec = FindKey(path);
    if (spec == nullptr) {
      return KeyError(path, "", "unknown key (known keys here: " + KnownChildren(section) + ")");
    }
    RawValue raw;
    switch (spec->shape) {
      case Shape::kScalar:
        if (!value.IsScalar()) {
          return KeyError(path, "",
                          std::string("must be a single value, got ") + NodeKindName(value));
        }
        raw.scalar = value.Scalar();
        break;
      case Shape::kList:
        TXC_RETURN_IF_ERROR(ReadList(value, path, "", &raw));
        break;
      case Shape::kResourceList:
        TXC_RETURN_IF_ERROR(ReadResources(value, "", &raw));
        break;
    }
    (*values)[path] = std::move(raw);
  }
  return Status::Ok();
}

std::string Trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

Result<YAML::Node> ParseYaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(origin + ": invalid YAML at line " +
                                   std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

// Replaces file values by TXC_* environment values; names no key → a warning.
Status ReadEnvironment(const Environment& env, RawValues* values,
                       std::vector<std::string>* warnings) {
  std::set<std::string> known;
  for (const KeySpec& spec : Keys()) {
    const std::string name = EnvName(spec.path);
    known.insert(name);
    auto found = env.find(name);
    if (found == env.end()) continue;
    const std::string& text = found->second;
    RawValue raw;
    raw.origin = name;
    switch (spec.shape) {
      case Shape::kScalar:
        raw.scalar = text;
        break;
      case Shape::kList: {
        std::string trimmed = Trim(text);
        if (!trimmed.empty() && trimmed.front() == '[') {
          Result<YAML::Node> node = ParseYaml(trimmed, name);
          if (!node.ok()) return KeyError(spec.path, name, node.status().message());
          TXC_RETURN_IF_ERROR(ReadList(*node, spec.path, name, &raw));
        } else {
          std::stringstream stream(text);
          std::string item;
          while (std::getline(stream, item, ',')) {
            item = Trim(item);
            if (!item.empty()) raw.items.push_back(item);
          }
        }
        break;
      }
      case Shape::kResourceList: {
        Result<YAML::Node> node = ParseYaml(text, name);
        if (!node.ok()) return KeyError(spec.path, name, node.status().message());
        if (node->IsNull()) break;  // TXC_RESOURCES="" clears the list
        TXC_RETURN_IF_ERROR(ReadResources(*node, name, &raw));
        break;
      }
    }
    (*values)[spec.path] = std::move(raw);
  }
  for (const auto& [name, value] : env) {
    if (name.rfind(kEnvPrefix, 0) == 0 && known.count(name) == 0) {
      warnings->push_back("environment variable " + name +
                          " names no configuration key and is ignored (see txcoord --help)");
    }
  }
  return Status::Ok();
}

Status ApplyResources(const RawValue& raw, Config* config) {
  std::vector<ResourceConfig> resources;
  for (size_t i = 0; i < raw.resources.size(); ++i) {
    const std::string item_path = "resources[" + std::to_string(i) + "]";
    const auto& fields = raw.resources[i].fields;
    ResourceConfig resource;
    for (const char* field : {"name", "kind", "dsn"}) {
      if (fields.count(field) == 0) {
        return KeyError(item_path + "." + field, raw.origin, "is required");
      }
    }
    resource.name = fields.at("name");
    resource.kind = fields.at("kind");
    resource.dsn = fields.at("dsn");
    Status status = CheckResourceName(resource.name);
    if (!status.ok()) return KeyError(item_path + ".name", raw.origin, status.message());
    status = CheckOneOf(resource.kind, {"postgres", "mysql"});
    if (!status.ok()) return KeyError(item_path + ".kind", raw.origin, status.message());
    status = CheckDsn(resource.kind, resource.dsn);
    if (!status.ok()) return KeyError(item_path + ".dsn", raw.origin, status.message());
    for (size_t j = 0; j < resources.size(); ++j) {
      if (resources[j].name == resource.name) {
        return KeyError(item_path + ".name", raw.origin,
                        Quoted(resource.name) + " is already the name of resources[" +
                            std::to_string(j) + "]; names must be unique");
      }
    }
    resources.push_back(std::move(resource));
  }
  config->resources = std::move(resources);
  return Status::Ok();
}

Status Apply(const RawValues& values, Config* config) {
  for (const KeySpec& spec : Keys()) {
    auto found = values.find(spec.path);
    if (found == values.end()) continue;
    const RawValue& raw = found->second;
    switch (spec.shape) {
      case Shape::kScalar: {
        Status status = spec.set_scalar(*config, raw.scalar);
        if (!status.ok()) return KeyError(spec.path, raw.origin, status.message());
        break;
      }
      case Shape::kList: {
        for (size_t i = 0; i < raw.items.size(); ++i) {
          Status status = spec.check_item(raw.items[i]);
          if (!status.ok()) {
            return KeyError(spec.path + "[" + std::to_string(i) + "]", raw.origin,
                            status.message());
          }
        }
        spec.set_list(*config, raw.items);
        break;
      }
      case Shape::kResourceList:
        TXC_RETURN_IF_ERROR(ApplyResources(raw, config));
        break;
    }
  }
  return Status::Ok();
}

// Rules that tie keys together.
Status CheckCombination(const Config& config) {
  if (config.log.kind == "postgres" && config.log.dsn.empty()) {
    return Status::InvalidArgument("log.dsn: is required when log.kind is postgres");
  }
  return Status::Ok();
}

Result<LoadedConfig> Load(const YAML::Node& document, const Environment& env,
                          const std::string& origin) {
  RawValues values;
  if (document.IsDefined() && !document.IsNull()) {
    if (!document.IsMap()) {
      return Status::InvalidArgument(origin + ": must be a YAML map of keys, got " +
                                     NodeKindName(document));
    }
    try {
      TXC_RETURN_IF_ERROR(ReadMap(document, "", &values));
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument(origin + ": " + e.msg);
    }
  }
  LoadedConfig loaded;
  TXC_RETURN_IF_ERROR(ReadEnvironment(env, &values, &loaded.warnings));
  TXC_RETURN_IF_ERROR(Apply(values, &loaded.config));
  TXC_RETURN_IF_ERROR(CheckCombination(loaded.config));
  return loaded;
}

bool StartsWithNoCase(std::string_view text, size_t at, std::string_view word) {
  if (at + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  }
  return true;
}
}  // namespace

std::string ListenAddress::ToString() const {
  std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return shown + ":" + std::to_string(port);
}

Environment ProcessEnvironment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (text.rfind(kEnvPrefix, 0) != 0) continue;
    size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

Result<LoadedConfig> LoadConfigFromString(const std::string& yaml_text, const Environment& env,
                                          const std::string& origin) {
  Result<YAML::Node> document = ParseYaml(yaml_text, origin);
  if (!document.ok()) return document.status();
  return Load(*document, env, origin);
}

Result<LoadedConfig> LoadConfig(const std::optional<std::string>& file, const Environment& env) {
  if (!file.has_value()) return Load(YAML::Node(), env, "defaults");
  YAML::Node document;
  try {
    document = YAML::LoadFile(*file);
  } catch (const YAML::BadFile&) {
    return Status::InvalidArgument("config file " + *file + ": cannot be opened for reading");
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("config file " + *file + ": invalid YAML at line " +
                                   std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return Load(document, env, "config file " + *file);
}

std::vector<std::string> ConfigKeyPaths() {
  std::vector<std::string> paths;
  for (const KeySpec& spec : Keys()) paths.push_back(spec.path);
  return paths;
}

std::string EnvironmentVariableFor(const std::string& key_path) { return EnvName(key_path); }

std::string ConfigHelpText() {
  std::ostringstream out;
  out << "Configuration: one YAML file (--config FILE); without one, the defaults serve on one\n"
         "machine. Every key can be overridden by its environment variable (TXC_ + the key path\n"
         "in capitals, '.' as '_'). Unknown keys are errors.\n\n";
  for (const KeySpec& spec : Keys()) {
    out << "  " << spec.path << "\n"
        << "      default: " << spec.default_text << "\n"
        << "      env:     " << EnvName(spec.path) << "\n"
        << "      " << spec.meaning << "\n\n";
  }
  return out.str();
}

std::string RedactDsn(const std::string& dsn) {
  std::string out = dsn;
  // URI form: scheme://user:password@host...
  size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    size_t authority_begin = scheme_end + 3;
    size_t authority_end = out.find_first_of("/?#", authority_begin);
    if (authority_end == std::string::npos) authority_end = out.size();
    size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority_begin) {
      size_t colon = out.find(':', authority_begin);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=... as a URI query parameter or a keyword/value pair (possibly quoted).
  constexpr std::string_view kWord = "password=";
  for (size_t i = 0; i < out.size(); ++i) {
    bool boundary = i == 0 || out[i - 1] == '?' || out[i - 1] == '&' || out[i - 1] == ';' ||
                    std::isspace(static_cast<unsigned char>(out[i - 1]));
    if (!boundary || !StartsWithNoCase(out, i, kWord)) continue;
    size_t value_begin = i + kWord.size();
    size_t value_end = value_begin;
    if (value_end < out.size() && out[value_end] == '\'') {
      ++value_end;
      while (value_end < out.size() && out[value_end] != '\'') {
        value_end += out[value_end] == '\\' ? 2 : 1;
      }
      value_end = std::min(out.size(), value_end + 1);
    } else {
      while (value_end < out.size() && out[value_end] != '&' && out[value_end] != ';' &&
             !std::isspace(static_cast<unsigned char>(out[value_end]))) {
        ++value_end;
      }
    }
    out.replace(value_begin, value_end - value_begin, "***");
    i = value_begin + 2;
  }
  return out;
}

std::string RenderEffectiveConfig(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "node_id" << YAML::Value << config.node_id;
  out << YAML::Key << "log_format" << YAML::Value << config.log_format;
  out << YAML::Key << "listen" << YAML::Value << config.listen.ToString();
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << config.log.kind;
  out << YAML::Key << "dir" << YAML::Value << config.log.dir;
  out << YAML::Key << "dsn" << YAML::Value << YAML::DoubleQuoted << RedactDsn(config.log.dsn);
  out << YAML::Key << "segment_bytes_max" << YAML::Value << config.log.segment_bytes_max;
  out << YAML::Key << "compact_after_bytes" << YAML::Value << config.log.compact_after_bytes;
  out << YAML::EndMap;
  out << YAML::Key << "stuck_after_ms" << YAML::Value << config.stuck_after_ms;
  out << YAML::Key << "participants" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "allow" << YAML::Value << YAML::BeginSeq;
  for (const std::string& pattern : config.participants.allow) {
    out << YAML::DoubleQuoted << pattern;
  }
  out << YAML::EndSeq << YAML::EndMap;
  out << YAML::Key << "resources" << YAML::Value << YAML::BeginSeq;
  for (const ResourceConfig& resource : config.resources) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << resource.name;
    out << YAML::Key << "kind" << YAML::Value << resource.kind;
    out << YAML::Key << "dsn" << YAML::Value << YAML::DoubleQuoted << RedactDsn(resource.dsn);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_body_bytes" << YAML::Value << config.limits.max_body_bytes;
  out << YAML::Key << "max_branches" << YAML::Value << config.limits.max_branches;
  out << YAML::Key << "max_in_flight" << YAML::Value << config.limits.max_in_flight;
  out << YAML::EndMap;
  out << YAML::Key << "retention" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "finished_ms" << YAML::Value << config.retention.finished_ms;
  out << YAML::EndMap;
  out << YAML::Key << "http" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "threads" << YAML::Value << config.http.threads;
  out << YAML::Key << "queue_max" << YAML::Value << config.http.queue_max;
  out << YAML::Key << "keep_alive_timeout_ms" << YAML::Value << config.http.keep_alive_timeout_ms;
  out << YAML::Key << "request_timeout_ms" << YAML::Value << config.http.request_timeout_ms;
  out << YAML::EndMap;
  out << YAML::Key << "shutdown_grace_ms" << YAML::Value << config.shutdown_grace_ms;
  out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "tokens_file" << YAML::Value << YAML::DoubleQuoted << config.auth.tokens_file;
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace txc::config
