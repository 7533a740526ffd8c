#include "tools/txctl/coordinator_client.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <cctype>
#include <cstdio>
#include <exception>
#include <ostream>
#include <typeinfo>

namespace txc::txctl {

CoordinatorClient::CoordinatorClient(const std::string& url, const std::string& token)
    : url_(url), token_(token) {
  // Printable ASCII without blanks: anything else would break the header (or inject another).
  for (const char c : token_) {
    if (c <= 0x20 || c >= 0x7f) {
      throw std::invalid_argument(
          "the API token (--token or $TXC_TOKEN) holds a blank or a character outside printable "
          "ASCII; it is not shown");
    }
  }
  try {
    const Poco::URI uri(url);
    if (uri.getScheme() != "http" || uri.getHost().empty()) {
      throw std::invalid_argument("--url must be http://HOST:PORT, got '" + url + "'");
    }
    host_ = uri.getHost();
    port_ = uri.getPort();
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument("--url '" + url + "' is not a URL: " + e.displayText());
  }
}

Reply CoordinatorClient::Send(const std::string& method, const std::string& path,
                              const std::string& body, std::chrono::milliseconds timeout) const {
  try {
    Poco::Net::HTTPClientSession session(host_, port_);
    session.setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) *
                                      Poco::Timespan::MILLISECONDS));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token_.empty()) request.set("Authorization", "Bearer " + token_);
    if (method != Poco::Net::HTTPRequest::HTTP_GET) {
      request.setContentLength(static_cast<std::streamsize>(body.size()));
      if (!body.empty()) request.setContentType("application/json");
    }
    std::ostream& out = session.sendRequest(request);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Reply reply;
    reply.status = static_cast<int>(response.getStatus());
    Poco::StreamCopier::copyToString(in, reply.body);
    return reply;
  } catch (const Poco::TimeoutException&) {
    throw TransportError("txcoord at " + url_ + " did not answer " + method + " " + path +
                         " within " + std::to_string(timeout.count() / 1000) + " s");
  } catch (const Poco::Exception& e) {
    throw TransportError("cannot reach txcoord at " + url_ + ": " + e.displayText());
  }
}

std::string DescribeError(const Reply& reply) {
  const std::string status = "HTTP " + std::to_string(reply.status);
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(reply.body);
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
      const auto error = parsed.extract<Poco::JSON::Object::Ptr>()->getObject("error");
      if (error && error->has("message")) {
        const std::string code = error->has("code") ? error->getValue<std::string>("code") : "";
        const std::string message = error->getValue<std::string>("message");
        return (code.empty() ? status : code + " (" + status + ")") + ": " + message;
      }
    }
  } catch (const std::exception&) {
    // Not txcoord's error object (a proxy's page, say): shown as it came, below.
  }
  std::string start = reply.body.substr(0, 300);
  while (!start.empty() && std::isspace(static_cast<unsigned char>(start.back()))) start.pop_back();
  return start.empty() ? status : status + ": " + start;
}

std::string EncodePathSegment(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '.' || c == '_' || c == '~' || c == '-') {
      out.push_back(c);
    } else {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", u);
      out += escaped;
    }
  }
  return out;
}

}  // namespace txc::txctl
