#include "participants/http/http_participant.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <functional>
#include <istream>
#include <ostream>
#include <random>
#include <thread>
#include <utility>

#include "coordinator/common/check.h"
#include "participants/http/status_mapping.h"

namespace txc::participants::http {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;
using std::chrono::milliseconds;

// Longer than the API's limits (gid 56, branch name 64), short enough for any header.
constexpr size_t kIdentifierBytesMax = 128;

milliseconds Remaining(Deadline deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
}

// A socket timeout of zero means "no timeout" to the kernel: never let a rounding produce it.
Poco::Timespan SocketTimeout(milliseconds remaining) {
  return Poco::Timespan(std::max<int64_t>(remaining.count(), 1) * 1000);
}

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The gid and the branch name go into headers and into the Idempotency-Key
// "<gid>/<branch>/<op>"; the submission allows only [A-Za-z0-9._-] (API.md), so a '/' cannot make
// two keys collide and CR/LF cannot inject headers. Checked again here because this is where
// they reach the wire. A violation becomes a permanent failure of this call, not a crash: one
// branch waiting for an operator is better than a coordinator that aborts on every recovery.
Status CheckIdentifier(std::string_view what, std::string_view value) {
  const bool fits = !value.empty() && value.size() <= kIdentifierBytesMax &&
                    std::all_of(value.begin(), value.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                    });
  if (fits) return Status::Ok();
  return Status::InvalidArgument(std::string(what) +
                                 " is not 1-128 of [A-Za-z0-9._-] and cannot be sent in a header");
}

Poco::Net::HTTPRequest BuildRequest(const HttpCall& call, const CallContext& context,
                                    const std::string& traceparent) {
  Poco::Net::HTTPRequest request(call.method(), call.url().target,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  request.set("Host", call.url().HostHeader());
  // The call's own headers first; ours are set after them and replace any same-named one
  // (NameValueCollection::set is case-insensitive). HttpCall::Create already refuses reserved
  // names; the order makes sure anyway.
  for (const auto& [name, value] : call.headers()) request.set(name, value);
  if (!call.body().empty() && !request.has("Content-Type")) {
    request.setContentType("application/json");
  }
  request.set("Txc-Gid", context.gid);
  request.set("Txc-Branch", context.branch);
  request.set("Txc-Op", OpName(context.op));
  request.set("Idempotency-Key", IdempotencyKey(context));
  request.set("traceparent", traceparent);
  // Always a Content-Length for methods that may carry a body: without one, POCO would frame a
  // POST by closing the connection.
  const std::string& method = call.method();
  if (!call.body().empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    request.setContentLength(static_cast<std::streamsize>(call.body().size()));
  }
  request.setKeepAlive(true);
  return request;
}

// Reads the response body until its end, keeping the first kResponseBodyKeptBytesMax bytes in
// `kept`. False when the body could not be read to its end (error, deadline, or longer than the
// drain bound): the connection then cannot carry another request.
bool ReadBody(PooledSession& session, std::istream& in, Deadline deadline, std::string& kept) {
  std::array<char, 8192> buffer{};
  size_t total = 0;
  while (true) {
    const milliseconds remaining = Remaining(deadline);
    if (remaining <= milliseconds(0)) return false;
    session.socket().setReceiveTimeout(SocketTimeout(remaining));
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto count = static_cast<size_t>(in.gcount());
    if (kept.size() < kResponseBodyKeptBytesMax) {
      kept.append(buffer.data(), std::min(count, kResponseBodyKeptBytesMax - kept.size()));
    }
    total += count;
    // POCO's stream buffers report socket errors (timeouts included) as badbit.
    if (in.bad()) return false;
    if (in.eof()) return true;
    if (!in.good()) return false;
    if (total > kResponseBodyKeptBytesMax + kResponseBodyDrainBytesMax) return false;
  }
}

struct Attempt {
  HttpOutcome outcome;
  // Failed on a reused connection before any byte of a reply: the server most likely closed the
  // idle connection as we sent. Worth one retry on a new connection.
  bool stale = false;
  // The connection may carry the next request.
  bool reusable = false;
};

// One request over `session`, bounded by `deadline`. Each step knows how far the request got,
// which is what the outcome depends on: before the request was complete, the participant cannot
// have acted (transient); after, it may have (unknown), unless it answered.
Attempt Exchange(PooledSession& session, bool reused, const HttpCall& call,
                 const CallContext& context, const std::string& traceparent, Deadline deadline,
                 int64_t timeout_ms) {
  Attempt attempt;
  HttpOutcome& outcome = attempt.outcome;
  outcome.url = call.url().Redacted();
  const std::string no_reply = "no reply within " + std::to_string(timeout_ms) + " ms";
  const std::string no_time_to_send =
      "the call's " + std::to_string(timeout_ms) + " ms passed before it could be sent";

  // 1. Connect. Name lookup, refused connections, unreachable hosts and connect timeouts all
  //    happen here, before a byte of the request left.
  if (!session.connected()) {
    const milliseconds remaining = Remaining(deadline);
    outcome.delivery = Delivery::kNotSent;
    if (remaining <= milliseconds(0)) {
      outcome.detail = no_time_to_send;
      return attempt;
    }
    try {
      session.Connect(SocketTimeout(remaining));
    } catch (const Poco::TimeoutException&) {
      outcome.detail = "connect timed out after " + std::to_string(remaining.count()) + " ms";
      return attempt;
    } catch (const Poco::Exception& e) {
      outcome.detail = "could not connect: " + e.displayText();
      return attempt;
    } catch (const std::exception& e) {
      outcome.detail = std::string("could not connect: ") + e.what();
      return attempt;
    }
  }

  // 2. Send. A failure here leaves the request incomplete: with a Content-Length, a server does
  //    not act on a request it has not fully received.
  try {
    const milliseconds remaining = Remaining(deadline);
    if (remaining <= milliseconds(0)) {
      outcome.delivery = Delivery::kNotSent;
      outcome.detail = no_time_to_send;
      return attempt;
    }
    session.socket().setSendTimeout(SocketTimeout(remaining));
    session.socket().setReceiveTimeout(SocketTimeout(remaining));
    Poco::Net::HTTPRequest request = BuildRequest(call, context, traceparent);
    std::ostream& body = session.sendRequest(request);
    body.write(call.body().data(), static_cast<std::streamsize>(call.body().size()));
    body.flush();
    if (!body.good() || session.networkException() != nullptr) {
      attempt.stale = reused;
      outcome.delivery = Delivery::kNotSent;
      outcome.detail = "sending failed: " + (session.networkException() != nullptr
                                                 ? session.networkException()->displayText()
                                                 : std::string("stream error"));
      return attempt;
    }
  } catch (const Poco::Exception& e) {
    attempt.stale = reused;
    outcome.delivery = Delivery::kNotSent;
    outcome.detail = "sending failed: " + e.displayText();
    return attempt;
  }

  // 3. Wait for the first byte of the reply without consuming it. This tells "the connection
  //    ended before any reply" (on a reused connection: stale, retry) from "the reply broke off"
  //    (the participant was already answering: never retried here).
  try {
    const milliseconds remaining = Remaining(deadline);
    if (remaining <= milliseconds(0)) {
      outcome.delivery = Delivery::kTimedOutAfterSend;
      outcome.detail = no_reply;
      return attempt;
    }
    if (!session.HasUnreadBytes()) {
      session.socket().setReceiveTimeout(SocketTimeout(remaining));
      char first = 0;
      if (session.socket().receiveBytes(&first, 1, MSG_PEEK) <= 0) {
        attempt.stale = reused;
        outcome.delivery = Delivery::kLostAfterSend;
        outcome.detail = "the server closed the connection without replying";
        return attempt;
      }
    }
  } catch (const Poco::TimeoutException&) {
    outcome.delivery = Delivery::kTimedOutAfterSend;
    outcome.detail = no_reply;
    return attempt;
  } catch (const Poco::Net::ConnectionResetException&) {
    attempt.stale = reused;
    outcome.delivery = Delivery::kLostAfterSend;
    outcome.detail = "the connection was reset before any reply";
    return attempt;
  } catch (const Poco::Exception& e) {
    outcome.delivery = Delivery::kLostAfterSend;
    outcome.detail = e.displayText();
    return attempt;
  }

  // 4. Status line and headers.
  Poco::Net::HTTPResponse response;
  std::istream* body = nullptr;
  try {
    session.socket().setReceiveTimeout(SocketTimeout(Remaining(deadline)));
    body = &session.receiveResponse(response);
  } catch (const Poco::TimeoutException&) {
    outcome.delivery = Delivery::kTimedOutAfterSend;
    outcome.detail = no_reply + " (the reply started but did not finish its headers)";
    return attempt;
  } catch (const Poco::Exception& e) {
    outcome.delivery = Delivery::kLostAfterSend;
    outcome.detail = "the reply broke off or is not HTTP: " + e.displayText();
    return attempt;
  }
  outcome.delivery = Delivery::kAnswered;
  outcome.status = static_cast<int>(response.getStatus());

  // 5. Body. The status has decided already; the body is read for last_error and so that the
  //    connection can be reused. 1xx, 204 and 304 have none (RFC 9112 §6.3).
  const int status = outcome.status;
  const bool has_body = !(status < 200 || status == 204 || status == 304);
  bool complete = true;
  try {
    if (has_body) complete = ReadBody(session, *body, deadline, outcome.body);
  } catch (const Poco::Exception&) {
    complete = false;
  } catch (const std::exception&) {
    complete = false;
  }
  attempt.reusable = complete && response.getKeepAlive();
  return attempt;
}

HttpOutcome Perform(const std::map<Op, HttpCall>& calls, HttpClientPool& pool,
                    const CallContext& context) {
  HttpOutcome outcome;
  const auto found = calls.find(context.op);
  if (found == calls.end()) {
    outcome.delivery = Delivery::kNoCallForOp;
    outcome.detail = "branch '" + context.branch + "' has no " + OpName(context.op) +
                     " call: its protocol does not send " + OpName(context.op) + " to it";
    return outcome;
  }
  const HttpCall& call = found->second;
  outcome.url = call.url().Redacted();
  for (const Status& status :
       {CheckIdentifier("gid", context.gid), CheckIdentifier("branch name", context.branch)}) {
    if (!status.ok()) {
      outcome.delivery = Delivery::kInvalidRequest;
      outcome.detail = status.message();
      return outcome;
    }
  }
  const int64_t timeout_ms = std::min(call.timeout_ms(), context.timeout_ms);
  if (timeout_ms <= 0) {
    outcome.delivery = Delivery::kNotSent;
    outcome.detail = "no time left for the call (timeout " + std::to_string(timeout_ms) + " ms)";
    return outcome;
  }
  const Deadline deadline = SteadyClock::now() + milliseconds(timeout_ms);
  const std::string traceparent =
      IsValidTraceparent(context.traceparent) ? context.traceparent : NewTraceparent();

  Result<HttpClientPool::Lease> lease = pool.Acquire(call.url().host, call.url().port, deadline);
  if (!lease.ok()) {
    outcome.delivery = Delivery::kNotSent;
    outcome.detail = lease.status().message();
    return outcome;
  }
  Attempt attempt =
      Exchange(lease->session(), lease->reused(), call, context, traceparent, deadline, timeout_ms);
  // Negative space: an attempt that got an answer is never taken for a stale connection, and a
  // fresh connection is never retried.
  TXC_CHECK(!attempt.stale || (attempt.outcome.delivery != Delivery::kAnswered && lease->reused()),
            "only a reused connection that gave no answer is retried");
  if (attempt.stale) {
    // The reused connection ended before any byte of a reply: almost always the server closing
    // an idle keep-alive connection just as the request went out. Retrying once on a new
    // connection hides that race from the engine. The request may nonetheless have reached the
    // server and been acted on before it closed; sending it again is acceptable only because
    // every call carries the same Idempotency-Key (<gid>/<branch>/<op>), which the participant
    // contract requires participants to honour. A second failure is reported as it is.
    lease->Reconnect();
    attempt = Exchange(lease->session(), /*reused=*/false, call, context, traceparent, deadline,
                       timeout_ms);
    if (attempt.outcome.delivery != Delivery::kAnswered) {
      attempt.outcome.detail += " (after a retry on a new connection)";
    }
  }
  TXC_CHECK(!attempt.reusable || attempt.outcome.delivery == Delivery::kAnswered,
            "only a connection that carried a complete exchange goes back to the pool");
  if (attempt.reusable) lease->ReturnToPool();
  return attempt.outcome;
}

}  // namespace

bool IsValidTraceparent(std::string_view value) {
  // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
  if (value.size() != 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') return false;
  const std::string_view version = value.substr(0, 2);
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (version != "00") return false;
  if (!IsLowerHex(trace_id) || !IsLowerHex(parent_id) || !IsLowerHex(flags)) return false;
  return trace_id != std::string(32, '0') && parent_id != std::string(16, '0');
}

std::string NewTraceparent() {
  // Trace ids need to be unique, not unpredictable; a per-thread generator avoids a lock.
  thread_local std::mt19937_64 generator([] {
    std::random_device device;
    std::seed_seq seed{
        device(),
        device(),
        device(),
        device(),
        static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id())),
        static_cast<unsigned>(SteadyClock::now().time_since_epoch().count())};
    return std::mt19937_64(seed);
  }());
  constexpr std::string_view kHex = "0123456789abcdef";
  const auto hex = [&](size_t digits) {
    std::string text;
    while (true) {
      text.clear();
      for (size_t i = 0; i < digits; i += 16) {
        uint64_t bits = generator();
        for (size_t k = 0; k < 16 && i + k < digits; ++k, bits >>= 4)
          text.push_back(kHex[bits & 0xf]);
      }
      if (text != std::string(digits, '0')) return text;  // all zeros is invalid (W3C §3.2.2)
    }
  };
  return "00-" + hex(32) + "-" + hex(16) + "-01";
}

HttpBranch::HttpBranch(std::map<Op, HttpCall> calls, HttpClientPool& pool)
    : calls_(std::move(calls)), pool_(pool) {
  TXC_CHECK(!calls_.empty(), "an HTTP branch has at least one call");
}

CallResult HttpBranch::Call(const CallContext& context) {
  // The edge of the adapter: whatever escapes the steps above (which catch what they expect) is
  // unexpected, and whether the request went out is not known, so the call's outcome is unknown.
  const auto unexpected = [&](const std::string& what) {
    HttpOutcome outcome;
    outcome.delivery = Delivery::kLostAfterSend;
    const auto found = calls_.find(context.op);
    outcome.url = found != calls_.end() ? found->second.url().Redacted() : "(no url)";
    outcome.detail = "unexpected error: " + what;
    return MapHttpOutcome(outcome);
  };
  try {
    return MapHttpOutcome(Perform(calls_, pool_, context));
  } catch (const Poco::Exception& e) {
    return unexpected(e.displayText());
  } catch (const std::exception& e) {
    return unexpected(e.what());
  } catch (...) {
    return unexpected("unknown exception");
  }
}

}  // namespace txc::participants::http
