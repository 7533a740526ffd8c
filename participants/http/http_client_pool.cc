#include "participants/http/http_client_pool.h"

#include <Poco/Exception.h>
#include <Poco/Net/Socket.h>

#include <algorithm>
#include <exception>

#include "coordinator/common/check.h"

namespace txc::participants::http {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Whether an idle connection can carry the next request. An idle connection has nothing to read:
// if the socket is readable, the server closed it (EOF), reset it, or sent bytes nobody asked
// for, and in each case it must not be used.
bool IdleConnectionIsAlive(PooledSession& session) {
  try {
    if (!session.connected() || session.HasUnreadBytes()) return false;
    return !session.socket().poll(Poco::Timespan(0),
                                  Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR);
  } catch (const Poco::Exception&) {
    return false;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

PooledSession::PooledSession(const std::string& host, uint16_t port)
    : Poco::Net::HTTPClientSession(host, port) {
  setKeepAlive(true);
}

void PooledSession::Connect(Poco::Timespan timeout) {
  setTimeout(timeout, timeout, timeout);
  reconnect();
}

int PooledSession::write(const char* buffer, std::streamsize length) {
  return Poco::Net::HTTPSession::write(buffer, length);
}

HttpClientPool::Lease::Lease(HttpClientPool* pool, Key key, std::unique_ptr<PooledSession> session,
                             bool reused)
    : pool_(pool), key_(std::move(key)), session_(std::move(session)), reused_(reused) {
  TXC_CHECK(pool_ != nullptr && session_ != nullptr, "a lease holds a session of a pool");
}

HttpClientPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      key_(std::move(other.key_)),
      session_(std::move(other.session_)),
      reused_(other.reused_) {}

HttpClientPool::Lease::~Lease() {
  if (session_ != nullptr) pool_->Release(key_, std::move(session_), /*reusable=*/false);
}

PooledSession& HttpClientPool::Lease::session() {
  TXC_CHECK(session_ != nullptr, "a lease is used after ReturnToPool()");
  return *session_;
}

void HttpClientPool::Lease::Reconnect() {
  TXC_CHECK(session_ != nullptr, "a lease is used after ReturnToPool()");
  session_->reset();
  reused_ = false;
}

void HttpClientPool::Lease::ReturnToPool() {
  TXC_CHECK(session_ != nullptr, "a lease is returned twice");
  pool_->Release(key_, std::move(session_), /*reusable=*/true);
}

HttpClientPool::HttpClientPool(HttpClientPoolOptions options) : options_(options) {
  TXC_CHECK(options_.sessions_per_host_max >= 1, "sessions_per_host_max must be at least 1");
  TXC_CHECK(options_.sessions_max >= options_.sessions_per_host_max,
            "sessions_max must be at least sessions_per_host_max");
  TXC_CHECK(options_.idle_timeout_ms >= 1, "idle_timeout_ms must be positive");
  reaper_ = std::thread([this] { ReapLoop(); });
}

HttpClientPool::~HttpClientPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  reaper_wake_.notify_all();
  reaper_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, host] : hosts_) {
    // A lease returning into a destroyed pool would write freed memory.
    TXC_CHECK(host.in_use == 0, "an HttpClientPool is destroyed while a Lease is out");
  }
  hosts_.clear();
}

Result<HttpClientPool::Lease> HttpClientPool::Acquire(const std::string& host, uint16_t port,
                                                      Deadline deadline) {
  const Key key(host, port);
  Closing closing;  // declared before the lock: destroyed (sockets closed) after unlocking
  std::unique_lock<std::mutex> lock(mutex_);
  TXC_CHECK(!stopping_, "Acquire on an HttpClientPool being destroyed");
  while (true) {
    CloseExpiredLocked(SteadyClock::now(), closing);
    auto it = hosts_.find(key);
    if (it != hosts_.end()) {
      Host& entry = it->second;
      while (!entry.idle.empty()) {
        Idle idle = std::move(entry.idle.back());
        entry.idle.pop_back();
        if (IdleConnectionIsAlive(*idle.session)) {
          ++entry.in_use;
          ++stats_.reused;
          return Lease(this, key, std::move(idle.session), /*reused=*/true);
        }
        closing.push_back(std::move(idle.session));
        --sessions_;
        ++stats_.stale;
      }
    }
    const size_t host_sessions = it == hosts_.end() ? 0 : it->second.in_use;
    if (host_sessions < options_.sessions_per_host_max) {
      if (sessions_ >= options_.sessions_max) EvictOldestIdleLocked(closing);
      if (sessions_ < options_.sessions_max) {
        ++hosts_[key].in_use;
        ++sessions_;
        TXC_CHECK(sessions_ <= options_.sessions_max, "the pool's total bound holds");
        ++stats_.created;
        return Lease(this, key, std::make_unique<PooledSession>(host, port), /*reused=*/false);
      }
    }
    if (SteadyClock::now() >= deadline) {
      ++stats_.exhausted;
      if (it != hosts_.end()) EraseIfEmptyLocked(it);
      return Status::ResourceExhausted(
          "pool exhausted: no connection to " + host + ":" + std::to_string(port) +
          " came free in time (" + std::to_string(host_sessions) + " of at most " +
          std::to_string(options_.sessions_per_host_max) + " in use for this host, " +
          std::to_string(sessions_) + " of at most " + std::to_string(options_.sessions_max) +
          " in all)");
    }
    slot_freed_.wait_until(lock, deadline);
  }
}

void HttpClientPool::Release(const Key& key, std::unique_ptr<PooledSession> session,
                             bool reusable) {
  std::unique_ptr<PooledSession> closing;  // destroyed after unlocking
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = hosts_.find(key);
    TXC_CHECK(it != hosts_.end() && it->second.in_use > 0, "a lease returns to the wrong pool");
    --it->second.in_use;
    if (reusable && !stopping_ && session->connected()) {
      it->second.idle.push_back(Idle{std::move(session), SteadyClock::now()});
    } else {
      closing = std::move(session);
      --sessions_;
      if (!reusable) ++stats_.discarded;
    }
    EraseIfEmptyLocked(it);
  }
  slot_freed_.notify_all();
}

void HttpClientPool::CloseExpiredLocked(SteadyClock::time_point now, Closing& closing) {
  const auto idle_timeout = std::chrono::milliseconds(options_.idle_timeout_ms);
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    auto& idle = it->second.idle;
    const auto expired = std::stable_partition(idle.begin(), idle.end(), [&](const Idle& item) {
      return now - item.since < idle_timeout;
    });
    for (auto item = expired; item != idle.end(); ++item) {
      closing.push_back(std::move(item->session));
      --sessions_;
      ++stats_.expired;
    }
    idle.erase(expired, idle.end());
    auto next = std::next(it);
    EraseIfEmptyLocked(it);
    it = next;
  }
}

bool HttpClientPool::EvictOldestIdleLocked(Closing& closing) {
  auto oldest_host = hosts_.end();
  for (auto it = hosts_.begin(); it != hosts_.end(); ++it) {
    if (it->second.idle.empty()) continue;
    // idle.front() is the longest idle of its host (most recently used is pushed last).
    if (oldest_host == hosts_.end() ||
        it->second.idle.front().since < oldest_host->second.idle.front().since) {
      oldest_host = it;
    }
  }
  if (oldest_host == hosts_.end()) return false;
  auto& idle = oldest_host->second.idle;
  closing.push_back(std::move(idle.front().session));
  idle.erase(idle.begin());
  --sessions_;
  ++stats_.evicted;
  EraseIfEmptyLocked(oldest_host);
  return true;
}

void HttpClientPool::EraseIfEmptyLocked(std::map<Key, Host>::iterator it) {
  if (it->second.in_use == 0 && it->second.idle.empty()) hosts_.erase(it);
}

void HttpClientPool::ReapLoop() {
  // Half the idle timeout: an idle connection is closed at most 1.5 idle timeouts after its last
  // use, even when no call comes to notice it.
  const auto interval = std::max(std::chrono::milliseconds(options_.idle_timeout_ms / 2),
                                 std::chrono::milliseconds(5));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    reaper_wake_.wait_for(lock, interval, [this] { return stopping_; });
    Closing closing;
    CloseExpiredLocked(SteadyClock::now(), closing);
    if (closing.empty()) continue;
    lock.unlock();
    closing.clear();
    slot_freed_.notify_all();
    lock.lock();
  }
}

HttpClientPool::Stats HttpClientPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats stats = stats_;
  stats.idle = 0;
  stats.in_use = 0;
  for (const auto& [key, host] : hosts_) {
    stats.idle += host.idle.size();
    stats.in_use += host.in_use;
  }
  return stats;
}

}  // namespace txc::participants::http
