// TrivialParticipantServer: the bench's own HTTP participant, served in the bench process. It
// does no work at all, so that a transaction (2PC, saga, TCC) over it costs only what the
// coordinator (or the client making the calls by hand) and HTTP cost.
//
//  - POCO HTTPServer on 127.0.0.1, on a free port; keep-alive with no request limit; one thread
//    per connection (`threads` connections at once).
//  - Every request: the body is read to its end, and the answer is 200 with `{}` and its
//    Content-Length (without which keep-alive breaks).
//  - Counts requests by the last segment of their path (`/b0/prepare` → prepare), so the bench
//    can check afterwards that every prepare got its commit and nothing was aborted (2PC), that
//    no saga step was compensated, or that every try was confirmed and none cancelled (TCC).
#pragma once

#include <cstdint>
#include <memory>

namespace txc::bench {

class TrivialParticipantServer {
 public:
  struct Counts {
    uint64_t prepare = 0;
    uint64_t commit = 0;
    uint64_t abort = 0;
    uint64_t action = 0;  // saga steps
    uint64_t compensate = 0;
    uint64_t tcc_try = 0;  // TCC's try (`try` is a keyword)
    uint64_t confirm = 0;
    uint64_t cancel = 0;
    uint64_t other = 0;
  };

  // Starts serving at once; throws Poco::Exception when it cannot listen.
  explicit TrivialParticipantServer(int threads);
  ~TrivialParticipantServer();  // stops serving (open connections are cut)

  TrivialParticipantServer(const TrivialParticipantServer&) = delete;
  TrivialParticipantServer& operator=(const TrivialParticipantServer&) = delete;

  uint16_t port() const;
  Counts counts() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace txc::bench
