// txc-example-order: the order service of the shop example (order_service.h).
#include <optional>

#include "examples/shop/common/postgres_database.h"
#include "examples/shop/common/service_host.h"
#include "examples/shop/order/order_service.h"

int main(int argc, char** argv) {
  txc::shop::ServiceHost host({.name = "order",
                               .program = "txc-example-order",
                               .default_port = 9001,
                               .dsn_example = "postgresql://user:password@127.0.0.1:5432/orders"});
  if (std::optional<int> exit_code = host.ParseCommandLine(argc, argv)) return *exit_code;
  auto database = txc::shop::PostgresDatabase::Open(host.options().dsn,
                                                    static_cast<size_t>(host.options().threads),
                                                    txc::shop::order::CreateSchema);
  if (!database.ok()) return host.Fail("database_unavailable", database.status());
  txc::shop::order::AddRoutes(host.router(), host.business_context(), database->get());
  return host.Serve();
}
