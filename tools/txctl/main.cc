// txctl: the operator's command line for a running txcoord.
//
//   txctl [--url URL] health     is the process alive (GET /healthz)
//   txctl [--url URL] ready      is the log open and recovery finished (GET /readyz)
//   txctl [--url URL] info       version, node id, log kind (GET /v1/info)
//   txctl [--url URL] metrics    the Prometheus text (GET /metrics)
//
// The URL defaults to $TXC_URL, then http://127.0.0.1:8080. Exit status: 0 when the coordinator
// answered 2xx, 1 when it answered otherwise (the body is printed), 2 for usage or connection
// errors.
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

namespace {

constexpr int kTimeoutSeconds = 10;

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: txctl [--url URL] COMMAND\n"
               "commands:\n"
               "  health    is txcoord alive (GET /healthz)\n"
               "  ready     is its log open and recovery finished (GET /readyz)\n"
               "  info      version, node_id and log kind (GET /v1/info)\n"
               "  metrics   Prometheus metrics (GET /metrics)\n"
               "options:\n"
               "  --url URL   the coordinator (default: $TXC_URL or http://127.0.0.1:8080)\n");
}

struct Reply {
  int status = 0;
  std::string body;
};

Reply Get(const Poco::URI& base, const std::string& path) {
  Poco::Net::HTTPClientSession session(base.getHost(), base.getPort());
  session.setTimeout(Poco::Timespan(kTimeoutSeconds, 0));
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  Reply reply;
  reply.status = static_cast<int>(response.getStatus());
  Poco::StreamCopier::copyToString(in, reply.body);
  return reply;
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

}  // namespace

int main(int argc, char** argv) {
  const char* env_url = std::getenv("TXC_URL");
  std::string url = env_url != nullptr && *env_url != '\0' ? env_url : "http://127.0.0.1:8080";
  std::string command;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage(stdout);
      return 0;
    }
    if (arg == "--url") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "txctl: --url needs a value\n");
        return 2;
      }
      url = argv[++i];
    } else if (command.empty()) {
      command = arg;
    } else {
      std::fprintf(stderr, "txctl: unexpected argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  const std::map<std::string, std::string> paths = {
      {"health", "/healthz"}, {"ready", "/readyz"}, {"info", "/v1/info"}, {"metrics", "/metrics"}};
  auto path = paths.find(command);
  if (path == paths.end()) {
    if (!command.empty()) std::fprintf(stderr, "txctl: unknown command '%s'\n", command.c_str());
    PrintUsage(stderr);
    return 2;
  }
  try {
    Poco::URI base(url);
    if (base.getScheme() != "http" || base.getHost().empty()) {
      std::fprintf(stderr, "txctl: --url must be http://HOST:PORT, got '%s'\n", url.c_str());
      return 2;
    }
    const Reply reply = Get(base, path->second);
    std::cout << (command == "metrics" ? reply.body : Pretty(reply.body));
    return reply.status >= 200 && reply.status < 300 ? 0 : 1;
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "txctl: cannot reach txcoord at %s: %s\n", url.c_str(),
                 e.displayText().c_str());
    return 2;
  }
}
