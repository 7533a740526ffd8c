// txctl: the operator's command line for a running txcoord.
//
//   txctl [--url URL] health        is the process alive (GET /healthz)
//   txctl [--url URL] ready         is the log open and recovery finished (GET /readyz)
//   txctl [--url URL] info          version, node id, log kind (GET /v1/info)
//   txctl [--url URL] metrics       the Prometheus text (GET /metrics)
//   txctl [--url URL] submit FILE   submit a transaction (POST /v1/transactions)
//   txctl [--url URL] get GID       one transaction's document (GET /v1/transactions/GID)
//   txctl [--url URL] list [--stuck] [--state S] [--protocol P] [--limit N] [--all]
//                                   transactions, a row each (GET /v1/transactions)
//   txctl [--url URL] retry GID     run its waiting step now (POST .../GID/retry)
//   txctl [--url URL] abort GID [--reason TEXT]
//                                   abort it before its decision (POST .../GID/abort)
//   txctl [--url URL] resolve GID --branch NAME --outcome committed|aborted --reason TEXT
//                                   settle a branch by hand (POST .../GID/resolve)
//
// The URL defaults to $TXC_URL, then http://127.0.0.1:8080; the API token to $TXC_TOKEN (sent as
// `Authorization: Bearer`, never printed). Exit status: 0 when the coordinator answered 2xx, 1
// when it answered otherwise (health..metrics print the body; the other commands print txcoord's
// error code and message on stderr), 2 for usage, input-file or connection errors.
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <fcntl.h>
#include <unistd.h>

#include <Poco/JSON/Array.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "tools/txctl/coordinator_client.h"
#include "tools/txctl/document_table.h"

namespace {

using txc::txctl::CoordinatorClient;
using txc::txctl::Reply;

constexpr std::chrono::milliseconds kRequestTimeout{10'000};
// list --all stops there: a coordinator that keeps handing out cursors must not keep txctl busy
// for ever.
constexpr int kListPagesMax = 100'000;
// txcoord's default timeout_ms (API.md), for a submission that gives none.
constexpr int64_t kDefaultTransactionTimeoutMs = 30'000;

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kHelpHint = "(txctl --help lists the commands and options)\n";

void PrintUsage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: txctl [options] COMMAND [ARGUMENT]\n"
      "commands:\n"
      "  health        is txcoord alive (GET /healthz)\n"
      "  ready         is its log open and recovery finished (GET /readyz)\n"
      "  info          version, node_id and log kind (GET /v1/info)\n"
      "  metrics       Prometheus metrics (GET /metrics)\n"
      "  submit FILE   submit the transaction in FILE, the JSON body of POST /v1/transactions\n"
      "                ('-' reads standard input); prints the transaction document\n"
      "  get GID       print the document of transaction GID (GET /v1/transactions/GID)\n"
      "  list          transactions, a row each: gid, protocol, state, outcome, stuck, age,\n"
      "                branches (GET /v1/transactions)\n"
      "  retry GID     run the step GID waits for now, skipping the backoff\n"
      "  abort GID     abort GID; only before its decision (txcoord answers 409 after)\n"
      "  resolve GID   settle a branch of GID by hand: --branch, --outcome and --reason needed;\n"
      "                recorded in the log with who (the token's name) and why\n"
      "options:\n"
      "  --url URL            the coordinator (default: $TXC_URL or http://127.0.0.1:8080)\n"
      "  --token TOKEN        the API token when access control is on (default: $TXC_TOKEN,\n"
      "                       which keeps it out of the process list); never printed\n"
      "  -o, --output FORMAT  submit, get, list, retry, abort, resolve: 'table' (default) or\n"
      "                       'json' (as txcoord sent it)\n"
      "  --stuck              list: only stuck transactions\n"
      "  --state STATE        list: only transactions in STATE (committing, running, ...)\n"
      "  --protocol P         list: only transactions of protocol P (2pc, 3pc, saga, tcc)\n"
      "  --limit N            list: at most N transactions (per page with --all)\n"
      "  --all                list: every page, following next_cursor\n"
      "  --branch NAME        resolve: the branch to settle\n"
      "  --outcome OUTCOME    resolve: committed or aborted, what the branch did or must do\n"
      "  --reason TEXT        resolve (required), abort: why, recorded with the decision\n"
      "  --wait               submit: answer once the transaction is final (or its timeout_ms\n"
      "                       has passed), whatever FILE's \"wait\" says\n"
      "  --no-wait            submit: answer as soon as the transaction has started\n"
      "  -h, --help           this text\n"
      "exit status: 0 when txcoord answered 2xx; 1 when it answered with an error (every\n"
      "command but health..metrics prints its code and message); 2 for a usage error, an\n"
      "unreadable or non-JSON FILE, or no answer from txcoord.\n");
}

struct Arguments {
  std::string url;
  std::string token;  // never printed
  std::string command;
  std::vector<std::string> operands;
  std::optional<std::string> output;  // "table" | "json", as given
  std::optional<bool> wait;           // --wait / --no-wait
  bool help = false;
  // list
  bool stuck = false;
  bool all = false;
  std::optional<std::string> state;
  std::optional<std::string> protocol;
  std::optional<std::string> limit;  // a positive integer, checked when parsed
  // resolve (and --reason for abort)
  std::optional<std::string> branch;
  std::optional<std::string> outcome;
  std::optional<std::string> reason;
};

// False after saying what is wrong on stderr.
bool ParseArguments(int argc, char** argv, Arguments* args) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    // --option=value is taken as --option value.
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (const size_t equals = arg.find('='); equals != std::string::npos) {
        inline_value = arg.substr(equals + 1);
        arg = arg.substr(0, equals);
      }
    }
    auto value = [&](std::string* out) {
      if (inline_value) {
        *out = *inline_value;
        return true;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "txctl: %s needs a value\n", arg.c_str());
        return false;
      }
      *out = argv[++i];
      return true;
    };
    auto no_value = [&] {
      if (!inline_value) return true;
      std::fprintf(stderr, "txctl: %s takes no value\n", arg.c_str());
      return false;
    };
    auto optional_value = [&](std::optional<std::string>* out) {
      std::string text;
      if (!value(&text)) return false;
      *out = text;
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      if (!no_value()) return false;
      args->help = true;
    } else if (arg == "--url") {
      if (!value(&args->url)) return false;
    } else if (arg == "--token") {
      if (!value(&args->token)) return false;
    } else if (arg == "--stuck" || arg == "--all") {
      if (!no_value()) return false;
      (arg == "--stuck" ? args->stuck : args->all) = true;
    } else if (arg == "--state") {
      if (!optional_value(&args->state)) return false;
    } else if (arg == "--protocol") {
      if (!optional_value(&args->protocol)) return false;
    } else if (arg == "--limit") {
      if (!optional_value(&args->limit)) return false;
      uint64_t limit = 0;
      const std::string& text = *args->limit;
      const auto parsed = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (text.empty() || parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() ||
          limit == 0) {
        std::fprintf(stderr, "txctl: --limit must be a positive integer, got '%s'\n", text.c_str());
        return false;
      }
    } else if (arg == "--branch") {
      if (!optional_value(&args->branch)) return false;
    } else if (arg == "--outcome") {
      if (!optional_value(&args->outcome)) return false;
      if (*args->outcome != "committed" && *args->outcome != "aborted") {
        std::fprintf(stderr, "txctl: --outcome must be committed or aborted, got '%s'\n",
                     args->outcome->c_str());
        return false;
      }
    } else if (arg == "--reason") {
      if (!optional_value(&args->reason)) return false;
    } else if (arg == "-o" || arg == "--output") {
      std::string format;
      if (!value(&format)) return false;
      if (format != "table" && format != "json") {
        std::fprintf(stderr, "txctl: %s must be table or json, got '%s'\n", arg.c_str(),
                     format.c_str());
        return false;
      }
      args->output = format;
    } else if (arg == "--wait" || arg == "--no-wait") {
      if (!no_value()) return false;
      if (args->wait && *args->wait != (arg == "--wait")) {
        std::fprintf(stderr, "txctl: --wait and --no-wait together\n");
        return false;
      }
      args->wait = arg == "--wait";
    } else if (arg.size() > 1 && arg[0] == '-') {
      // "-" alone is an operand (standard input for submit).
      std::fprintf(stderr, "txctl: unknown option '%s'\n", arg.c_str());
      return false;
    } else if (args->command.empty()) {
      args->command = arg;
    } else {
      args->operands.push_back(arg);
    }
  }
  return true;
}

// The commands that print a transaction document (or, for list, documents).
bool PrintsDocuments(const std::string& c) {
  return c == "submit" || c == "get" || c == "list" || c == "retry" || c == "abort" ||
         c == "resolve";
}

// What each command accepts; false after saying what does not fit on stderr.
bool CheckCommandArguments(const Arguments& args) {
  const std::string& c = args.command;
  const bool takes_operand =
      c == "submit" || c == "get" || c == "retry" || c == "abort" || c == "resolve";
  const char* operand_name = c == "submit" ? "FILE" : "GID";
  if (takes_operand && args.operands.size() != 1) {
    if (args.operands.empty()) {
      std::fprintf(stderr, "txctl: %s needs %s\n", c.c_str(), operand_name);
    } else {
      std::fprintf(stderr, "txctl: %s takes one %s, got also '%s'\n", c.c_str(), operand_name,
                   args.operands[1].c_str());
    }
    return false;
  }
  if (!takes_operand && !args.operands.empty()) {
    std::fprintf(stderr, "txctl: unexpected argument '%s'\n", args.operands[0].c_str());
    return false;
  }
  if (args.output && !PrintsDocuments(c)) {
    std::fprintf(stderr,
                 "txctl: -o/--output applies to submit, get, list, retry, abort and resolve, not "
                 "to %s\n",
                 c.c_str());
    return false;
  }
  // Each option that belongs to some commands only, and the first of them given to another.
  struct Scoped {
    const char* option;
    bool given;
    std::vector<std::string> commands;
  };
  const std::vector<Scoped> scoped = {
      {"--stuck", args.stuck, {"list"}},
      {"--all", args.all, {"list"}},
      {"--state", args.state.has_value(), {"list"}},
      {"--protocol", args.protocol.has_value(), {"list"}},
      {"--limit", args.limit.has_value(), {"list"}},
      {"--branch", args.branch.has_value(), {"resolve"}},
      {"--outcome", args.outcome.has_value(), {"resolve"}},
      {"--reason", args.reason.has_value(), {"resolve", "abort"}},
  };
  for (const Scoped& option : scoped) {
    if (!option.given) continue;
    if (std::find(option.commands.begin(), option.commands.end(), c) != option.commands.end()) {
      continue;
    }
    std::string list;
    for (const std::string& command : option.commands) {
      list += (list.empty() ? "" : " and ") + command;
    }
    std::fprintf(stderr, "txctl: %s applies to %s only, not to %s\n", option.option, list.c_str(),
                 c.c_str());
    return false;
  }
  if (c == "resolve") {
    for (const auto& [option, given] : std::vector<std::pair<const char*, bool>>{
             {"--branch NAME", args.branch.has_value()},
             {"--outcome committed|aborted", args.outcome.has_value()},
             {"--reason TEXT", args.reason.has_value()}}) {
      if (!given) {
        std::fprintf(stderr, "txctl: resolve needs %s\n", option);
        return false;
      }
    }
  }
  if (args.wait && c != "submit") {
    std::fprintf(stderr, "txctl: %s applies to submit only, not to %s\n",
                 *args.wait ? "--wait" : "--no-wait", c.c_str());
    return false;
  }
  return true;
}

// JSON bodies are printed indented; anything else as it came.
std::string Pretty(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    auto value = parser.parse(body);
    std::ostringstream out;
    Poco::JSON::Stringifier::stringify(value, out, 2);
    return out.str() + "\n";
  } catch (const Poco::Exception&) {
    return body;
  }
}

// health, ready, info, metrics: the body as it came (JSON indented), 0 on 2xx.
int RunSimple(const CoordinatorClient& client, const std::string& command) {
  const std::map<std::string, std::string> paths = {
      {"health", "/healthz"}, {"ready", "/readyz"}, {"info", "/v1/info"}, {"metrics", "/metrics"}};
  const Reply reply = client.Send("GET", paths.at(command), "", kRequestTimeout);
  std::cout << (command == "metrics" ? reply.body : Pretty(reply.body));
  return reply.ok() ? kExitOk : kExitServerError;
}

// A transaction document on stdout in the chosen format; an error answer on stderr.
int PrintDocumentReply(const Reply& reply, const std::string& format) {
  if (!reply.ok()) {
    std::fprintf(stderr, "txctl: %s\n", txc::txctl::DescribeError(reply).c_str());
    return kExitServerError;
  }
  if (format == "json") {
    std::cout << reply.body;
    if (reply.body.empty() || reply.body.back() != '\n') std::cout << '\n';
    return kExitOk;
  }
  std::string table, error;
  if (!txc::txctl::FormatDocumentTable(reply.body, &table, &error)) {
    // A 2xx without a document is not what txcoord sends; show what came instead.
    std::fprintf(stderr, "txctl: HTTP %d, but %s:\n%s\n", reply.status, error.c_str(),
                 reply.body.c_str());
    return kExitServerError;
  }
  std::cout << table;
  return kExitOk;
}

// The whole of FILE, or of standard input for "-"; nullopt after saying why on stderr. Plain
// read(2), so that a directory or an I/O error is reported with its reason.
std::optional<std::string> ReadInput(const std::string& file, const std::string& source) {
  const int fd = file == "-" ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "txctl: cannot open %s: %s\n", source.c_str(), std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      std::fprintf(stderr, "txctl: cannot read %s: %s\n", source.c_str(), std::strerror(errno));
      if (fd != STDIN_FILENO) ::close(fd);
      return std::nullopt;
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return text;
}

int RunSubmit(const CoordinatorClient& client, const Arguments& args) {
  const std::string& file = args.operands[0];
  const std::string source = file == "-" ? "standard input" : file;
  const std::optional<std::string> text = ReadInput(file, source);
  if (!text) return kExitUsage;

  // Checked here rather than by txcoord so that a wrong file is named as the culprit, and
  // parsed keeping the key order so that a --wait rewrite changes nothing else.
  Poco::JSON::Object::Ptr submission;
  try {
    Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(/*preserveObjectOrder=*/true));
    const Poco::Dynamic::Var parsed = parser.parse(*text);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
      std::fprintf(stderr,
                   "txctl: %s must hold one JSON object (the transaction: gid, protocol, "
                   "branches...)\n",
                   source.c_str());
      return kExitUsage;
    }
    submission = parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "txctl: %s is not JSON: %s\n", source.c_str(), e.displayText().c_str());
    return kExitUsage;
  }

  std::string body = *text;
  if (args.wait) {
    submission->set("wait", *args.wait);
    std::ostringstream out;
    submission->stringify(out);
    body = out.str();
  }
  // With wait, txcoord answers when the transaction is final or at its timeout_ms: the client
  // waits that long and a margin. txcoord checks the field itself; a wrong one is its 400.
  bool wait = false;
  int64_t timeout_ms = kDefaultTransactionTimeoutMs;
  try {
    if (submission->has("wait")) wait = submission->get("wait").convert<bool>();
    if (submission->has("timeout_ms")) {
      timeout_ms = submission->get("timeout_ms").convert<int64_t>();
    }
  } catch (const Poco::Exception&) {
  }
  const auto timeout =
      wait ? std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0)) + kRequestTimeout
           : kRequestTimeout;
  const Reply reply = client.Send("POST", "/v1/transactions", body, timeout);
  return PrintDocumentReply(reply, args.output.value_or("table"));
}

int RunGet(const CoordinatorClient& client, const Arguments& args) {
  const std::string path = "/v1/transactions/" + txc::txctl::EncodePathSegment(args.operands[0]);
  const Reply reply = client.Send("GET", path, "", kRequestTimeout);
  return PrintDocumentReply(reply, args.output.value_or("table"));
}

// A parsed list page: its documents and the cursor of the next page (empty on the last).
struct ListPage {
  Poco::JSON::Array::Ptr transactions;
  std::string next_cursor;
};

// nullopt after saying on stderr what is wrong with a 2xx answer that is not a list page.
std::optional<ListPage> ParseListPage(const Reply& reply) {
  try {
    Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(/*preserveObjectOrder=*/true));
    const Poco::Dynamic::Var parsed = parser.parse(reply.body);
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
      const auto page = parsed.extract<Poco::JSON::Object::Ptr>();
      ListPage out;
      out.transactions = page->getArray("transactions");
      if (out.transactions) {
        if (page->has("next_cursor") && !page->isNull("next_cursor")) {
          out.next_cursor = page->getValue<std::string>("next_cursor");
        }
        return out;
      }
    }
  } catch (const Poco::Exception&) {
  } catch (const std::exception&) {
  }
  std::fprintf(stderr, "txctl: HTTP %d, but the answer is not a page of transactions:\n%s\n",
               reply.status, reply.body.substr(0, 300).c_str());
  return std::nullopt;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// GET /v1/transactions with the filters; with --all, page after page until next_cursor is null.
int RunList(const CoordinatorClient& client, const Arguments& args) {
  using txc::txctl::EncodePathSegment;
  std::string query;
  auto add = [&query](const std::string& name, const std::string& value) {
    query += (query.empty() ? "?" : "&") + name + "=" + EncodePathSegment(value);
  };
  if (args.stuck) add("stuck", "true");
  if (args.state) add("state", *args.state);
  if (args.protocol) add("protocol", *args.protocol);
  if (args.limit) add("limit", *args.limit);
  const std::string format = args.output.value_or("table");

  Poco::JSON::Array::Ptr all = new Poco::JSON::Array;
  std::string cursor;
  std::string last_body;
  std::string next_cursor;
  for (int pages = 1;; ++pages) {
    std::string path = "/v1/transactions" + query;
    if (!cursor.empty()) {
      path += (query.empty() ? "?" : "&") + ("cursor=" + EncodePathSegment(cursor));
    }
    const Reply reply = client.Send("GET", path, "", kRequestTimeout);
    if (!reply.ok()) {
      std::fprintf(stderr, "txctl: %s\n", txc::txctl::DescribeError(reply).c_str());
      return kExitServerError;
    }
    const std::optional<ListPage> page = ParseListPage(reply);
    if (!page) return kExitServerError;
    for (unsigned i = 0; i < page->transactions->size(); ++i) all->add(page->transactions->get(i));
    last_body = reply.body;
    next_cursor = page->next_cursor;
    if (!args.all || next_cursor.empty()) break;
    if (pages == kListPagesMax) {
      std::fprintf(stderr, "txctl: still more after %d pages; give a larger --limit or filters\n",
                   kListPagesMax);
      return kExitServerError;
    }
    if (next_cursor == cursor) {
      // The same page again would loop for ever.
      std::fprintf(stderr, "txctl: txcoord answered the cursor '%s' with itself as the next one\n",
                   cursor.c_str());
      return kExitServerError;
    }
    cursor = next_cursor;
  }

  if (format == "json") {
    if (!args.all) {
      std::cout << last_body;  // one page, as txcoord sent it
      if (last_body.empty() || last_body.back() != '\n') std::cout << '\n';
      return kExitOk;
    }
    Poco::JSON::Object::Ptr merged = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    merged->set("transactions", all);
    merged->set("next_cursor", Poco::Dynamic::Var());
    std::ostringstream out;
    merged->stringify(out);
    std::cout << out.str() << '\n';
    return kExitOk;
  }
  std::cout << txc::txctl::FormatTransactionList(all, NowUnixMs());
  if (!next_cursor.empty()) {
    std::fprintf(stderr, "txctl: more transactions follow; --all lists every page\n");
  }
  return kExitOk;
}

// retry, abort and resolve: a POST on the transaction, answered with its document.
int RunOperatorVerb(const CoordinatorClient& client, const Arguments& args) {
  const std::string path =
      "/v1/transactions/" + txc::txctl::EncodePathSegment(args.operands[0]) + "/" + args.command;
  std::string body;
  if (args.command == "resolve" || args.reason) {
    Poco::JSON::Object::Ptr request = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    if (args.branch) request->set("branch", *args.branch);
    if (args.outcome) request->set("outcome", *args.outcome);
    if (args.reason) request->set("reason", *args.reason);
    std::ostringstream out;
    request->stringify(out);
    body = out.str();
  }
  const Reply reply = client.Send("POST", path, body, kRequestTimeout);
  return PrintDocumentReply(reply, args.output.value_or("table"));
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  const char* env_url = std::getenv("TXC_URL");
  args.url = env_url != nullptr && *env_url != '\0' ? env_url : "http://127.0.0.1:8080";
  const char* env_token = std::getenv("TXC_TOKEN");
  args.token = env_token != nullptr ? env_token : "";
  if (!ParseArguments(argc, argv, &args)) {
    std::fprintf(stderr, "%s", kHelpHint);
    return kExitUsage;
  }
  if (args.help) {
    PrintUsage(stdout);
    return kExitOk;
  }
  static const char* const kCommands[] = {"health", "ready", "info",  "metrics", "submit",
                                          "get",    "list",  "retry", "abort",   "resolve"};
  bool known = false;
  for (const char* command : kCommands) known = known || args.command == command;
  if (!known) {
    if (!args.command.empty()) {
      std::fprintf(stderr, "txctl: unknown command '%s'\n", args.command.c_str());
    }
    PrintUsage(stderr);
    return kExitUsage;
  }
  if (!CheckCommandArguments(args)) {
    std::fprintf(stderr, "%s", kHelpHint);
    return kExitUsage;
  }
  try {
    const CoordinatorClient client(args.url, args.token);
    if (args.command == "submit") return RunSubmit(client, args);
    if (args.command == "get") return RunGet(client, args);
    if (args.command == "list") return RunList(client, args);
    if (args.command == "retry" || args.command == "abort" || args.command == "resolve") {
      return RunOperatorVerb(client, args);
    }
    return RunSimple(client, args.command);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "txctl: %s\n", e.what());
    return kExitUsage;
  } catch (const txc::txctl::TransportError& e) {
    std::fprintf(stderr, "txctl: %s\n", e.what());
    return kExitUsage;
  }
}
