// ConnectionPool: bounded size, bounded waits, reuse, discarding broken connections, factory
// failures. A fake connection type: no server needed.
#include "participants/database/connection_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace txc::participants::database {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct FakeConnection {
  explicit FakeConnection(int id_, std::atomic<int>* alive_) : id(id_), alive(alive_) { ++*alive; }
  ~FakeConnection() { --*alive; }
  int id;
  std::atomic<int>* alive;
};

class ConnectionPoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<ConnectionPool<FakeConnection>> MakePool(std::size_t size_max) {
    return std::make_unique<ConnectionPool<FakeConnection>>(
        size_max, [this](Clock::time_point) -> Result<std::unique_ptr<FakeConnection>> {
          ++opened_;
          if (fail_next_) {
            fail_next_ = false;
            return Status::Unavailable("connection refused");
          }
          return std::make_unique<FakeConnection>(opened_.load(), &alive_);
        });
  }

  std::atomic<int> opened_{0};
  std::atomic<int> alive_{0};
  bool fail_next_ = false;
};

TEST_F(ConnectionPoolTest, ReusesAReturnedConnection) {
  auto pool = MakePool(2);
  int first_id = 0;
  {
    Result<ConnectionPool<FakeConnection>::Lease> lease = pool->Acquire(Clock::now() + 1s);
    ASSERT_TRUE(lease.ok());
    EXPECT_FALSE(lease->reused());
    first_id = (**lease).id;
  }
  Result<ConnectionPool<FakeConnection>::Lease> again = pool->Acquire(Clock::now() + 1s);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->reused());
  EXPECT_EQ((**again).id, first_id);
  EXPECT_EQ(opened_, 1);
}

TEST_F(ConnectionPoolTest, WaitsAtMostUntilTheDeadlineWhenAllAreBusy) {
  auto pool = MakePool(1);
  Result<ConnectionPool<FakeConnection>::Lease> held = pool->Acquire(Clock::now() + 1s);
  ASSERT_TRUE(held.ok());
  const Clock::time_point start = Clock::now();
  Result<ConnectionPool<FakeConnection>::Lease> second = pool->Acquire(start + 100ms);
  const auto waited = Clock::now() - start;
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 2s);
  EXPECT_EQ(opened_, 1);
}

TEST_F(ConnectionPoolTest, AWaiterGetsTheConnectionWhenItIsReturned) {
  auto pool = MakePool(1);
  auto held = std::make_unique<Result<ConnectionPool<FakeConnection>::Lease>>(
      pool->Acquire(Clock::now() + 1s));
  ASSERT_TRUE(held->ok());
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    held.reset();
  });
  Result<ConnectionPool<FakeConnection>::Lease> waited = pool->Acquire(Clock::now() + 5s);
  releaser.join();
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_TRUE(waited->reused());
}

TEST_F(ConnectionPoolTest, ADiscardedConnectionIsClosedAndReplaced) {
  auto pool = MakePool(1);
  {
    Result<ConnectionPool<FakeConnection>::Lease> lease = pool->Acquire(Clock::now() + 1s);
    ASSERT_TRUE(lease.ok());
    lease->Discard();
  }
  EXPECT_EQ(alive_, 0);
  EXPECT_EQ(pool->counts().open, 0u);
  Result<ConnectionPool<FakeConnection>::Lease> fresh = pool->Acquire(Clock::now() + 1s);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->reused());
  EXPECT_EQ(opened_, 2);
}

TEST_F(ConnectionPoolTest, AFactoryFailureIsReturnedAndFreesItsSlot) {
  auto pool = MakePool(1);
  fail_next_ = true;
  Result<ConnectionPool<FakeConnection>::Lease> failed = pool->Acquire(Clock::now() + 1s);
  EXPECT_EQ(failed.status(), Status::Unavailable("connection refused"));
  EXPECT_EQ(pool->counts().open, 0u);
  EXPECT_TRUE(pool->Acquire(Clock::now() + 1s).ok());
}

TEST_F(ConnectionPoolTest, DiscardIdleClosesOnlyIdleConnections) {
  auto pool = MakePool(3);
  Result<ConnectionPool<FakeConnection>::Lease> a = pool->Acquire(Clock::now() + 1s);
  Result<ConnectionPool<FakeConnection>::Lease> b = pool->Acquire(Clock::now() + 1s);
  ASSERT_TRUE(a.ok() && b.ok());
  a->Release();
  EXPECT_EQ(pool->counts().idle, 1u);
  pool->DiscardIdle();
  EXPECT_EQ(pool->counts().idle, 0u);
  EXPECT_EQ(pool->counts().open, 1u);  // b is still leased
  EXPECT_EQ(alive_, 1);
}

TEST_F(ConnectionPoolTest, NeverMoreThanSizeMaxUnderConcurrency) {
  constexpr std::size_t kSize = 3;
  constexpr int kThreads = 12;
  auto pool = MakePool(kSize);
  std::atomic<int> in_use{0};
  std::atomic<int> most_in_use{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        Result<ConnectionPool<FakeConnection>::Lease> lease = pool->Acquire(Clock::now() + 10s);
        ASSERT_TRUE(lease.ok()) << lease.status().ToString();
        const int now = ++in_use;
        int seen = most_in_use.load();
        while (now > seen && !most_in_use.compare_exchange_weak(seen, now)) {
        }
        EXPECT_LE(pool->counts().open, kSize);
        std::this_thread::sleep_for(200us);
        if (i % 7 == 0) lease->Discard();
        --in_use;
      }
      ++done;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(done, kThreads);
  EXPECT_LE(most_in_use, static_cast<int>(kSize));
  EXPECT_LE(alive_, static_cast<int>(kSize));
}

}  // namespace
}  // namespace txc::participants::database
