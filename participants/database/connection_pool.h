// ConnectionPool<Connection>: a bounded set of database connections shared by the calls of one
// resource. At most size_max connections exist at a time (idle + leased + being opened); a caller
// waits for one at most until its deadline, then gets Unavailable. A connection that broke is
// discarded by its lease (closed, its slot freed) and replaced by a new one on demand.
//
// Thread-safe. Every Lease must be gone before the pool is destroyed (checked).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/common/check.h"
#include "coordinator/common/status.h"

namespace txc::participants::database {

template <typename Connection>
class ConnectionPool {
 public:
  using Clock = std::chrono::steady_clock;
  // Opens one connection, giving up at the deadline. Called without the pool's lock held.
  using Factory = std::function<Result<std::unique_ptr<Connection>>(Clock::time_point deadline)>;

  // Exclusive use of one connection; gives it back to the pool when destroyed, or closes it when
  // Discard() was called.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        Release();
        pool_ = std::exchange(other.pool_, nullptr);
        connection_ = std::move(other.connection_);
        discard_ = std::exchange(other.discard_, false);
        reused_ = std::exchange(other.reused_, false);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }

    explicit operator bool() const { return connection_ != nullptr; }
    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_.get(); }

    // True when the connection had been idle in the pool (it may have gone stale meanwhile);
    // false when it was opened for this lease.
    bool reused() const { return reused_; }
    // The connection is broken or in an unknown state: close it instead of pooling it.
    void Discard() { discard_ = true; }
    bool discarded() const { return discard_; }
    // Gives the connection back now (or closes it, after Discard()).
    void Release() {
      if (pool_ != nullptr) std::exchange(pool_, nullptr)->Return(std::move(connection_), discard_);
      connection_.reset();
      discard_ = false;
    }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection, bool reused)
        : pool_(pool), connection_(std::move(connection)), reused_(reused) {}

    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> connection_;
    bool discard_ = false;
    bool reused_ = false;
  };

  ConnectionPool(std::size_t size_max, Factory factory)
      : size_max_(size_max), factory_(std::move(factory)) {
    TXC_CHECK(size_max_ > 0, "a connection pool needs room for at least one connection");
    TXC_CHECK(factory_ != nullptr, "a connection pool needs a factory");
  }
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  ~ConnectionPool() {
    std::vector<std::unique_ptr<Connection>> idle;
    {
      std::lock_guard lock(mutex_);
      TXC_CHECK(open_ == idle_.size(), "a connection pool destroyed while connections are leased");
      idle.swap(idle_);
      open_ = 0;
    }
  }

  // A connection: an idle one (most recently used first: the likeliest to be alive), or a new
  // one when fewer than size_max exist. Waits until `deadline` at most; then Unavailable.
  // A failure to open a connection is returned as the factory's Status.
  Result<Lease> Acquire(Clock::time_point deadline) {
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        if (!idle_.empty()) {
          std::unique_ptr<Connection> connection = std::move(idle_.back());
          idle_.pop_back();
          return Lease(this, std::move(connection), /*reused=*/true);
        }
        if (open_ < size_max_) break;
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= size_max_) {
          return Status::Unavailable("all " + std::to_string(size_max_) +
                                     " pooled connections stayed busy until the call's deadline");
        }
      }
      ++open_;  // reserves the slot while the connection is being opened, without the lock
    }
    Result<std::unique_ptr<Connection>> opened = factory_(deadline);
    if (!opened.ok()) {
      FreeSlots(1);
      return opened.status();
    }
    TXC_CHECK(*opened != nullptr, "a connection factory returned no connection and no error");
    return Lease(this, std::move(*opened), /*reused=*/false);
  }

  // Closes every idle connection. Called after one turned out broken: its siblings were opened to
  // the same server and are likely broken too (a server restart), so the next callers open fresh
  // ones instead of each failing once on a stale one.
  void DiscardIdle() {
    std::vector<std::unique_ptr<Connection>> idle;
    {
      std::lock_guard lock(mutex_);
      idle.swap(idle_);
    }
    const std::size_t count = idle.size();
    idle.clear();  // closes them, outside the lock (closing may do network I/O)
    FreeSlots(count);
  }

  struct Counts {
    std::size_t open = 0;  // idle + leased + being opened
    std::size_t idle = 0;
  };
  Counts counts() const {
    std::lock_guard lock(mutex_);
    return Counts{open_, idle_.size()};
  }
  std::size_t size_max() const { return size_max_; }

 private:
  void Return(std::unique_ptr<Connection> connection, bool discard) {
    if (connection == nullptr) {
      FreeSlots(1);  // a moved-from connection: nothing to keep
      return;
    }
    if (discard) {
      connection.reset();  // closes it, outside the lock
      FreeSlots(1);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(connection));
    }
    cv_.notify_one();
  }

  void FreeSlots(std::size_t count) {
    if (count == 0) return;
    {
      std::lock_guard lock(mutex_);
      TXC_CHECK(open_ >= count, "a connection pool freed more slots than it had open");
      open_ -= count;
    }
    cv_.notify_all();
  }

  const std::size_t size_max_;
  const Factory factory_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t open_ = 0;                           // guarded by mutex_
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
};

}  // namespace txc::participants::database
