// HttpClientPool: keep-alive HTTP connections to participants, pooled per (host, port).
//
//  - Bounded: at most sessions_per_host_max connections per (host, port) and sessions_max in
//    all, idle ones included. When every slot is taken, Acquire waits, but never past the
//    caller's deadline (then ResourceExhausted "pool exhausted ..."). When the total is reached
//    but another host has an idle connection, that one is closed to make room.
//  - A session goes back to the pool only through Lease::ReturnToPool(), which the caller does
//    after a complete, keep-alive response. Every other way of ending a lease (an error, an
//    exception unwinding, a half-read body) closes the connection: a session that failed is
//    never reused.
//  - Idle connections are closed after idle_timeout_ms by a reaper thread. The default (4 s)
//    stays under the keep-alive timeouts servers commonly use (5 s and up), so txcoord usually
//    closes first and seldom meets a connection the server has just closed.
//  - Before an idle connection is handed out, it is checked: if the server has closed it (or
//    sent something unasked), it is dropped and another one taken. A server can still close it
//    between that check and the request; the caller retries once on a new connection for that
//    race (HttpBranch).
//  - Thread-safe. The pool must outlive its leases.
#pragma once

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Timespan.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::participants::http {

struct HttpClientPoolOptions {
  size_t sessions_per_host_max = 16;
  size_t sessions_max = 256;  // at least sessions_per_host_max
  int64_t idle_timeout_ms = 4'000;
};

// One keep-alive connection to one (host, port): POCO's session, with what HttpBranch needs that
// POCO keeps protected, and without POCO's own silent reconnects, so that the one retry policy
// lives in one place (HttpBranch), where it is known whether a connection was reused.
class PooledSession final : public Poco::Net::HTTPClientSession {
 public:
  PooledSession(const std::string& host, uint16_t port);

  // Opens the connection now: name lookup and TCP connect, bounded by `timeout` (the lookup
  // itself is the system resolver's, not bounded by it). Separate from sendRequest so that a
  // failure here is known to be "not sent". Throws Poco::Exception (the caller maps it).
  void Connect(Poco::Timespan timeout);

  // Bytes already read from the socket but not consumed. On an idle connection: the server sent
  // something nobody asked for, and the connection cannot be trusted to frame the next response.
  bool HasUnreadBytes() const { return buffered() > 0; }

 protected:
  // POCO reconnects before a request when its own keep-alive timer says so; the pool decides
  // instead (idle timeout, liveness check), so a connection is never swapped behind our back.
  bool mustReconnect() const override { return false; }
  // POCO retries a failed first write on a new connection by itself; skip that so a send
  // failure reaches HttpBranch, which knows whether the connection was reused.
  int write(const char* buffer, std::streamsize length) override;
};

class HttpClientPool {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  // Holds one session out of the pool.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // Closes the connection and frees its slot, unless ReturnToPool() was called.
    ~Lease();

    PooledSession& session();
    // True when the connection was opened by an earlier call: it may have gone stale.
    bool reused() const { return reused_; }
    // Closes the connection but keeps the slot: the next request opens a new connection.
    void Reconnect();
    // Gives the session back for the next call to this (host, port). Only after a response that
    // was read to its end and that did not ask to close the connection.
    void ReturnToPool();

   private:
    friend class HttpClientPool;
    using Key = std::pair<std::string, uint16_t>;
    Lease(HttpClientPool* pool, Key key, std::unique_ptr<PooledSession> session, bool reused);

    HttpClientPool* pool_;
    Key key_;
    std::unique_ptr<PooledSession> session_;
    bool reused_;
  };

  struct Stats {
    size_t idle = 0;         // now
    size_t in_use = 0;       // now
    uint64_t created = 0;    // sessions made (each opens one connection, or tries to)
    uint64_t reused = 0;     // leases served from an idle connection
    uint64_t stale = 0;      // idle connections found closed (or unreadable) when taken
    uint64_t expired = 0;    // idle connections closed after idle_timeout_ms
    uint64_t evicted = 0;    // idle connections closed to make room for another host
    uint64_t discarded = 0;  // leases ended without ReturnToPool()
    uint64_t exhausted = 0;  // Acquire calls that reached their deadline waiting
  };

  // Invalid options (a zero bound, sessions_max < sessions_per_host_max, a non-positive idle
  // timeout) are a programmer error: configuration is checked before a pool is made.
  explicit HttpClientPool(HttpClientPoolOptions options = {});
  ~HttpClientPool();
  HttpClientPool(const HttpClientPool&) = delete;
  HttpClientPool& operator=(const HttpClientPool&) = delete;

  // A session for (host, port) (host as in HttpUrl: lowercase, IPv6 without brackets): an idle
  // connection when one is alive, else a new unconnected session when the bounds allow, else
  // waits until `deadline` → ResourceExhausted("pool exhausted: ...").
  Result<Lease> Acquire(const std::string& host, uint16_t port, Deadline deadline);

  Stats stats() const;
  const HttpClientPoolOptions& options() const { return options_; }

 private:
  using Key = Lease::Key;
  struct Idle {
    std::unique_ptr<PooledSession> session;
    std::chrono::steady_clock::time_point since;
  };
  struct Host {
    std::vector<Idle> idle;  // most recently used last: taken first, so older ones expire
    size_t in_use = 0;
  };
  using Closing = std::vector<std::unique_ptr<PooledSession>>;

  void Release(const Key& key, std::unique_ptr<PooledSession> session, bool reusable);
  // The helpers below run with mutex_ held; sessions to close are moved into `closing`, which the
  // caller destroys after unlocking (closing a socket is a system call).
  void CloseExpiredLocked(std::chrono::steady_clock::time_point now, Closing& closing);
  bool EvictOldestIdleLocked(Closing& closing);
  void EraseIfEmptyLocked(std::map<Key, Host>::iterator it);
  void ReapLoop();

  const HttpClientPoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable slot_freed_;  // a session went back or was closed
  std::condition_variable reaper_wake_;
  std::map<Key, Host> hosts_;  // guarded by mutex_
  size_t sessions_ = 0;        // idle + in use over all hosts; guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  Stats stats_;                // counters only; guarded by mutex_
  std::thread reaper_;
};

}  // namespace txc::participants::http
