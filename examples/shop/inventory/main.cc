// txc-example-inventory: the inventory service of the shop example (inventory_service.h).
#include <optional>

#include "examples/shop/common/postgres_database.h"
#include "examples/shop/common/service_host.h"
#include "examples/shop/inventory/inventory_service.h"

int main(int argc, char** argv) {
  txc::shop::ServiceHost host(
      {.name = "inventory",
       .program = "txc-example-inventory",
       .default_port = 9003,
       .dsn_example = "postgresql://user:password@127.0.0.1:5432/inventory"});
  if (std::optional<int> exit_code = host.ParseCommandLine(argc, argv)) return *exit_code;
  auto database = txc::shop::PostgresDatabase::Open(host.options().dsn,
                                                    static_cast<size_t>(host.options().threads),
                                                    txc::shop::inventory::CreateSchema);
  if (!database.ok()) return host.Fail("database_unavailable", database.status());
  txc::shop::inventory::AddRoutes(host.router(), host.business_context(), database->get());
  return host.Serve();
}
