#include "tools/txc-bench/trivial_participant_server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/NullStream.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <atomic>
#include <string_view>

namespace txc::bench {

struct TrivialParticipantServer::State {
  std::atomic<uint64_t> prepare{0};
  std::atomic<uint64_t> commit{0};
  std::atomic<uint64_t> abort{0};
  std::atomic<uint64_t> action{0};
  std::atomic<uint64_t> compensate{0};
  std::atomic<uint64_t> tcc_try{0};
  std::atomic<uint64_t> confirm{0};
  std::atomic<uint64_t> cancel{0};
  std::atomic<uint64_t> other{0};
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  uint16_t port = 0;
};

namespace {

constexpr std::string_view kReply = "{}";

class OkHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit OkHandler(TrivialParticipantServer::State* state) : state_(state) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Poco::NullOutputStream discard;
    Poco::StreamCopier::copyStream(request.stream(), discard);  // keep-alive needs the body read
    const std::string& uri = request.getURI();
    const std::string_view op = std::string_view(uri).substr(uri.rfind('/') + 1);
    if (op == "prepare") {
      ++state_->prepare;
    } else if (op == "commit") {
      ++state_->commit;
    } else if (op == "abort") {
      ++state_->abort;
    } else if (op == "action") {
      ++state_->action;
    } else if (op == "compensate") {
      ++state_->compensate;
    } else if (op == "try") {
      ++state_->tcc_try;
    } else if (op == "confirm") {
      ++state_->confirm;
    } else if (op == "cancel") {
      ++state_->cancel;
    } else {
      ++state_->other;
    }
    response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    response.setContentType("application/json");
    response.setContentLength(static_cast<std::streamsize>(kReply.size()));
    response.send().write(kReply.data(), static_cast<std::streamsize>(kReply.size()));
  }

 private:
  TrivialParticipantServer::State* state_;
};

class OkHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit OkHandlerFactory(TrivialParticipantServer::State* state) : state_(state) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new OkHandler(state_);
  }

 private:
  TrivialParticipantServer::State* state_;
};

}  // namespace

TrivialParticipantServer::TrivialParticipantServer(int threads)
    : state_(std::make_unique<State>()) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0), /*backlog=*/256);
  state_->port = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams();  // HTTPServer takes ownership
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(0);  // unlimited
  params->setKeepAliveTimeout(Poco::Timespan(60, 0));
  params->setMaxThreads(threads);
  params->setMaxQueued(std::max(64, threads));
  state_->pool = std::make_unique<Poco::ThreadPool>(2, threads);
  state_->server = std::make_unique<Poco::Net::HTTPServer>(new OkHandlerFactory(state_.get()),
                                                           *state_->pool, socket, params);
  state_->server->start();
}

TrivialParticipantServer::~TrivialParticipantServer() {
  state_->server->stopAll(/*abortCurrent=*/true);
  state_->pool->joinAll();
}

uint16_t TrivialParticipantServer::port() const { return state_->port; }

TrivialParticipantServer::Counts TrivialParticipantServer::counts() const {
  return Counts{state_->prepare.load(), state_->commit.load(),     state_->abort.load(),
                state_->action.load(),  state_->compensate.load(), state_->tcc_try.load(),
                state_->confirm.load(), state_->cancel.load(),     state_->other.load()};
}

}  // namespace txc::bench
