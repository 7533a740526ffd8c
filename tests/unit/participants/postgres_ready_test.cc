// API.md: "PostgreSQL needs max_prepared_transactions > 0; the coordinator checks it at start and
// says so." The verdict PostgresResource::CheckReady gives on the value it reads from the server
// (the integration test covers reading it from a server that has it enabled).
#include <gtest/gtest.h>

#include <string>

#include "participants/postgres/postgres_resource.h"

namespace txc::participants::postgres {
namespace {

TEST(PostgresReadyTest, ZeroPreparedTransactionsIsAFailedPreconditionSayingHowToFixIt) {
  const Status status = MaxPreparedTransactionsStatus("orders", 0);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  for (const char* part : {"resource orders (PostgreSQL)", "max_prepared_transactions is 0",
                           "postgresql.conf", "restart PostgreSQL"}) {
    EXPECT_NE(status.message().find(part), std::string::npos) << part << " in " << status.message();
  }
}

TEST(PostgresReadyTest, AnyPositiveValueIsReady) {
  EXPECT_TRUE(MaxPreparedTransactionsStatus("orders", 1).ok());
  EXPECT_TRUE(MaxPreparedTransactionsStatus("orders", 100).ok());
}

}  // namespace
}  // namespace txc::participants::postgres
