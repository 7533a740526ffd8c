#include "tools/txc-bench/bench_http.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <cstdio>
#include <exception>
#include <ostream>

namespace txc::bench {

std::string HttpEndpoint::ToString() const { return "http://" + host + ":" + std::to_string(port); }

Result<HttpEndpoint> ParseHttpUrl(const std::string& url) {
  try {
    const Poco::URI uri(url);
    if (uri.getScheme() != "http" || uri.getHost().empty()) {
      return Status::InvalidArgument("\"" + url + "\" is not an http://host:port URL");
    }
    if (!uri.getPath().empty() && uri.getPath() != "/") {
      return Status::InvalidArgument("\"" + url + "\": give the coordinator's root URL, no path");
    }
    return HttpEndpoint{uri.getHost(), uri.getPort()};
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("\"" + url + "\" is not a URL: " + e.displayText());
  }
}

KeepAliveClient::KeepAliveClient(const HttpEndpoint& endpoint, std::chrono::milliseconds timeout)
    : endpoint_(endpoint), session_(endpoint.host, endpoint.port) {
  session_.setKeepAlive(true);
  session_.setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) *
                                     Poco::Timespan::MILLISECONDS));
}

Result<HttpReply> KeepAliveClient::Send(
    const std::string& method, const std::string& path, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  try {
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty()) request.setContentType("application/json");
    if (!body.empty() || method != Poco::Net::HTTPRequest::HTTP_GET) {
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session_.sendRequest(request);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session_.receiveResponse(response);
    HttpReply reply;
    reply.status = static_cast<int>(response.getStatus());
    Poco::StreamCopier::copyToString(in, reply.body);
    return reply;
  } catch (const Poco::Exception& e) {
    session_.reset();
    return Status::Unavailable(method + " " + endpoint_.ToString() + path + ": " + e.displayText());
  } catch (const std::exception& e) {
    session_.reset();
    return Status::Unavailable(method + " " + endpoint_.ToString() + path + ": " + e.what());
  }
}

std::optional<std::string> JsonStringField(std::string_view json, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\"";
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  for (size_t at = json.find(quoted); at != std::string_view::npos;
       at = json.find(quoted, at + 1)) {
    size_t i = at + quoted.size();
    while (i < json.size() && is_space(json[i])) ++i;
    if (i >= json.size() || json[i] != ':') continue;  // the text was a value, not a key
    ++i;
    while (i < json.size() && is_space(json[i])) ++i;
    if (json.substr(i, 4) == "null") return std::string("null");
    if (i >= json.size() || json[i] != '"') return std::nullopt;
    std::string value;
    for (++i; i < json.size() && json[i] != '"'; ++i) {
      if (json[i] == '\\' && i + 1 < json.size()) value.push_back(json[i++]);
      value.push_back(json[i]);
    }
    return value;
  }
  return std::nullopt;
}

std::string DescribeReply(const HttpReply& reply) {
  std::string text = "HTTP " + std::to_string(reply.status);
  if (auto message = JsonStringField(reply.body, "message")) return text + ": " + *message;
  if (reply.body.empty()) return text;
  return text + ": " + reply.body.substr(0, 300);
}

bool CheckCoordinatorReady(const char* scenario, const HttpEndpoint& txcoord) {
  KeepAliveClient client(txcoord, std::chrono::seconds(5));
  auto reply = client.Send("GET", "/readyz", "");
  if (!reply.ok()) {
    std::fprintf(stderr, "txc-bench %s: txcoord not reachable at %s: %s\n", scenario,
                 txcoord.ToString().c_str(), reply.status().message().c_str());
    return false;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "txc-bench %s: txcoord at %s is not ready: %s\n", scenario,
                 txcoord.ToString().c_str(), DescribeReply(*reply).c_str());
    return false;
  }
  return true;
}

bool SubmitExpectingCommit(KeepAliveClient& client, const std::string& body,
                           const std::string& what, std::string* error) {
  auto reply = client.Send("POST", "/v1/transactions", body);
  if (!reply.ok()) {
    *error = reply.status().message();
    return false;
  }
  if (reply->status != 200) {
    *error = "POST /v1/transactions: " + DescribeReply(*reply);
    return false;
  }
  const auto outcome = JsonStringField(reply->body, "outcome");
  if (!outcome || *outcome != "committed") {
    *error = what + " not committed: outcome " + outcome.value_or("(none)") + ", " +
             reply->body.substr(0, 400);
    return false;
  }
  return true;
}

}  // namespace txc::bench
