// txctl: the operator's command line for a running txcoord.
//
//   txctl [--url URL] health        is the process alive (GET /healthz)
//   txctl [--url URL] ready         is the log open and recovery finished (GET /readyz)
//   txctl [--url URL] info          version, node id, log kind (GET /v1/info)
//   txctl [--url URL] metrics       the Prometheus text (GET /metrics)
//   txctl [--url URL] submit FILE   submit a transaction (POST /v1/transactions)
//   txctl [--url URL] get GID       one transaction's document (GET /v1/transactions/GID)
//
// The URL defaults to $TXC_URL, then http://127.0.0.1:8080. Exit status: 0 when the coordinator
// answered 2xx, 1 when it answered otherwise (health..metrics print the body; submit and get
// print txcoord's error code and message on stderr), 2 for usage, input-file or connection
// errors.
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
      "options:\n"
      "  --url URL            the coordinator (default: $TXC_URL or http://127.0.0.1:8080)\n"
      "  -o, --output FORMAT  submit, get: 'table' (default: the transaction, then a row per\n"
      "                       branch) or 'json' (the document as txcoord sent it)\n"
      "  --wait               submit: answer once the transaction is final (or its timeout_ms\n"
      "                       has passed), whatever FILE's \"wait\" says\n"
      "  --no-wait            submit: answer as soon as the transaction has started\n"
      "  -h, --help           this text\n"
      "exit status: 0 when txcoord answered 2xx; 1 when it answered with an error (submit and\n"
      "get print its code and message); 2 for a usage error, an unreadable or non-JSON FILE,\n"
      "or no answer from txcoord.\n");
}

struct Arguments {
  std::string url;
  std::string command;
  std::vector<std::string> operands;
  std::optional<std::string> output;  // "table" | "json", as given
  std::optional<bool> wait;           // --wait / --no-wait
  bool help = false;
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
    if (arg == "--help" || arg == "-h") {
      if (!no_value()) return false;
      args->help = true;
    } else if (arg == "--url") {
      if (!value(&args->url)) return false;
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

// What each command accepts; false after saying what does not fit on stderr.
bool CheckCommandArguments(const Arguments& args) {
  const std::string& c = args.command;
  const bool takes_operand = c == "submit" || c == "get";
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
  if (args.output && !takes_operand) {
    std::fprintf(stderr, "txctl: -o/--output applies to submit and get, not to %s\n", c.c_str());
    return false;
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

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  const char* env_url = std::getenv("TXC_URL");
  args.url = env_url != nullptr && *env_url != '\0' ? env_url : "http://127.0.0.1:8080";
  if (!ParseArguments(argc, argv, &args)) {
    std::fprintf(stderr, "%s", kHelpHint);
    return kExitUsage;
  }
  if (args.help) {
    PrintUsage(stdout);
    return kExitOk;
  }
  static const char* const kCommands[] = {"health", "ready", "info", "metrics", "submit", "get"};
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
    const CoordinatorClient client(args.url);
    if (args.command == "submit") return RunSubmit(client, args);
    if (args.command == "get") return RunGet(client, args);
    return RunSimple(client, args.command);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "txctl: %s\n", e.what());
    return kExitUsage;
  } catch (const txc::txctl::TransportError& e) {
    std::fprintf(stderr, "txctl: %s\n", e.what());
    return kExitUsage;
  }
}
