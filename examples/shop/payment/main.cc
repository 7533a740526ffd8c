// txc-example-payment: the payment service of the shop example (payment_service.h).
#include <optional>

#include "examples/shop/common/mysql_database.h"
#include "examples/shop/common/service_host.h"
#include "examples/shop/payment/payment_service.h"

int main(int argc, char** argv) {
  txc::shop::ServiceHost host({.name = "payment",
                               .program = "txc-example-payment",
                               .default_port = 9002,
                               .dsn_example = "mysql://user:password@127.0.0.1:3306/payments"});
  if (std::optional<int> exit_code = host.ParseCommandLine(argc, argv)) return *exit_code;
  auto database = txc::shop::MysqlDatabase::Open(host.options().dsn,
                                                 static_cast<size_t>(host.options().threads),
                                                 txc::shop::payment::CreateSchema);
  if (!database.ok()) return host.Fail("database_unavailable", database.status());
  txc::shop::payment::AddRoutes(host.router(), host.business_context(), database->get());
  return host.Serve();
}
