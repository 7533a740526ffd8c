// HttpClientPool on its own: leases, the per-host and total bounds, bounded waiting, idle
// expiry, eviction for another host, and that a lease ended without ReturnToPool() closes its
// connection.
#include "participants/http/http_client_pool.h"

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/NullStream.h>
#include <Poco/StreamCopier.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "tests/support/test_http_server.h"

namespace txc::participants::http {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::txc::testing::TestHttpServer;
using ::txc::testing::WaitUntil;

HttpClientPool::Deadline In(milliseconds duration) {
  return std::chrono::steady_clock::now() + duration;
}

HttpClientPool::Lease MustAcquire(HttpClientPool& pool, uint16_t port) {
  Result<HttpClientPool::Lease> lease = pool.Acquire("127.0.0.1", port, In(milliseconds(5000)));
  EXPECT_TRUE(lease.ok()) << lease.status().ToString();
  return std::move(lease).value();
}

// Opens the lease's connection, as HttpBranch does before sending.
void Connect(HttpClientPool::Lease& lease) {
  lease.session().Connect(Poco::Timespan(5, 0));
  ASSERT_TRUE(lease.session().connected());
}

TEST(HttpClientPoolTest, AReturnedConnectionIsReused) {
  TestHttpServer server;
  HttpClientPool pool;
  {
    HttpClientPool::Lease lease = MustAcquire(pool, server.port());
    EXPECT_FALSE(lease.reused());
    Connect(lease);
    lease.ReturnToPool();
  }
  HttpClientPool::Lease again = MustAcquire(pool, server.port());
  EXPECT_TRUE(again.reused());
  EXPECT_TRUE(again.session().connected());
  const HttpClientPool::Stats stats = pool.stats();
  EXPECT_EQ(stats.created, 1u);
  EXPECT_EQ(stats.reused, 1u);
  EXPECT_EQ(stats.in_use, 1u);
}

TEST(HttpClientPoolTest, ALeaseEndedWithoutReturnClosesItsConnection) {
  TestHttpServer server;
  HttpClientPool pool;
  {
    HttpClientPool::Lease lease = MustAcquire(pool, server.port());
    Connect(lease);
  }
  EXPECT_EQ(pool.stats().idle, 0u);
  EXPECT_EQ(pool.stats().discarded, 1u);
  HttpClientPool::Lease next = MustAcquire(pool, server.port());
  EXPECT_FALSE(next.reused());
}

TEST(HttpClientPoolTest, AnUnconnectedSessionIsNotKept) {
  TestHttpServer server;
  HttpClientPool pool;
  MustAcquire(pool, server.port()).ReturnToPool();  // never connected: nothing to keep
  EXPECT_EQ(pool.stats().idle, 0u);
}

TEST(HttpClientPoolTest, ReconnectKeepsTheSlotButNotTheConnection) {
  TestHttpServer server;
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 1;
  HttpClientPool pool(options);
  {
    HttpClientPool::Lease lease = MustAcquire(pool, server.port());
    Connect(lease);
    lease.ReturnToPool();
  }
  HttpClientPool::Lease lease = MustAcquire(pool, server.port());
  ASSERT_TRUE(lease.reused());
  lease.Reconnect();
  EXPECT_FALSE(lease.reused());
  EXPECT_FALSE(lease.session().connected());
  EXPECT_EQ(pool.stats().in_use, 1u);
}

TEST(HttpClientPoolTest, ThePerHostBoundMakesAcquireWaitUntilItsDeadline) {
  TestHttpServer server;
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 2;
  HttpClientPool pool(options);
  HttpClientPool::Lease first = MustAcquire(pool, server.port());
  HttpClientPool::Lease second = MustAcquire(pool, server.port());
  const auto start = std::chrono::steady_clock::now();
  Result<HttpClientPool::Lease> third =
      pool.Acquire("127.0.0.1", server.port(), In(milliseconds(100)));
  ASSERT_FALSE(third.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(90));
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("pool exhausted"));
  EXPECT_THAT(third.status().message(), HasSubstr("2 of at most 2 in use for this host"));
  // Another host is not affected by this host's bound.
  TestHttpServer other;
  HttpClientPool::Lease elsewhere = MustAcquire(pool, other.port());
  EXPECT_EQ(pool.stats().exhausted, 1u);
}

TEST(HttpClientPoolTest, AWaiterGetsTheSlotWhenALeaseEnds) {
  TestHttpServer server;
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 1;
  HttpClientPool pool(options);
  std::optional<HttpClientPool::Lease> holder(MustAcquire(pool, server.port()));
  std::thread releaser([&] {
    std::this_thread::sleep_for(milliseconds(50));
    holder.reset();
  });
  Result<HttpClientPool::Lease> waiter =
      pool.Acquire("127.0.0.1", server.port(), In(milliseconds(10'000)));
  releaser.join();
  EXPECT_TRUE(waiter.ok()) << waiter.status().ToString();
}

TEST(HttpClientPoolTest, TheTotalBoundEvictsAnotherHostsIdleConnection) {
  TestHttpServer a;
  TestHttpServer b;
  HttpClientPoolOptions options;
  options.sessions_per_host_max = 1;
  options.sessions_max = 1;
  HttpClientPool pool(options);
  {
    HttpClientPool::Lease lease = MustAcquire(pool, a.port());
    Connect(lease);
    lease.ReturnToPool();
  }
  ASSERT_EQ(pool.stats().idle, 1u);
  HttpClientPool::Lease lease = MustAcquire(pool, b.port());
  EXPECT_FALSE(lease.reused());
  EXPECT_EQ(pool.stats().evicted, 1u);
  EXPECT_EQ(pool.stats().idle, 0u);
  // While b's lease is out, the total bound holds a's callers back.
  Result<HttpClientPool::Lease> blocked = pool.Acquire("127.0.0.1", a.port(), In(milliseconds(50)));
  EXPECT_FALSE(blocked.ok());
  EXPECT_THAT(blocked.status().message(), HasSubstr("1 of at most 1 in all"));
}

TEST(HttpClientPoolTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  TestHttpServer server;
  HttpClientPoolOptions options;
  options.idle_timeout_ms = 50;
  HttpClientPool pool(options);
  {
    HttpClientPool::Lease lease = MustAcquire(pool, server.port());
    Connect(lease);
    lease.ReturnToPool();
  }
  EXPECT_EQ(pool.stats().idle, 1u);
  // Closed by the reaper, with no call coming to notice.
  EXPECT_TRUE(WaitUntil([&] { return pool.stats().idle == 0; }));
  EXPECT_EQ(pool.stats().expired, 1u);
  EXPECT_FALSE(MustAcquire(pool, server.port()).reused());
}

TEST(HttpClientPoolTest, AnIdleConnectionTheServerClosedIsDroppedWhenTaken) {
  TestHttpServer::Options server_options;
  server_options.keep_alive_timeout = milliseconds(50);  // closes connections idle for 50 ms
  TestHttpServer server(server_options);
  HttpClientPool pool;
  {
    HttpClientPool::Lease lease = MustAcquire(pool, server.port());
    Connect(lease);
    // POCO's server applies its keep-alive timeout after a first request.
    Poco::Net::HTTPRequest request("GET", "/", Poco::Net::HTTPMessage::HTTP_1_1);
    lease.session().sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = lease.session().receiveResponse(response);
    Poco::NullOutputStream sink;
    Poco::StreamCopier::copyStream(body, sink);
    ASSERT_EQ(response.getStatus(), Poco::Net::HTTPResponse::HTTP_OK);
    lease.ReturnToPool();
  }
  ASSERT_TRUE(WaitUntil([&] { return server.handled_count() == 1; }));
  std::this_thread::sleep_for(milliseconds(500));  // well past the server's 50 ms
  HttpClientPool::Lease lease = MustAcquire(pool, server.port());
  EXPECT_FALSE(lease.reused());
  EXPECT_EQ(pool.stats().stale, 1u);
}

}  // namespace
}  // namespace txc::participants::http
