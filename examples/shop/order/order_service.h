// The order service: the orders table, in its own PostgreSQL database.
//
//   POST /orders/create     saga action      {order_id, customer, item, qty, amount}: a new order,
//                                            status "created"; 409 order_exists when another
//                                            transaction created that order_id
//   POST /orders/cancel     saga compensate  the same body: status "cancelled"
//   GET  /orders/{order_id} the order
//   GET  /orders[?status=created|cancelled&limit=N]
//                           {"orders": [...]}, newest first, at most N (default 100, at most 1000)
//
// Each business endpoint runs in one transaction behind the barrier (business_outcome.h).
#pragma once

#include <pqxx/transaction_base>

#include "coordinator/server/router.h"
#include "examples/shop/common/business_route.h"
#include "examples/shop/common/postgres_database.h"

namespace txc::shop::order {

// CREATE TABLE IF NOT EXISTS orders.
void CreateSchema(pqxx::transaction_base& transaction);

// `database` outlives the router's use of the routes.
void AddRoutes(server::Router& router, const BusinessContext& context, PostgresDatabase* database);

}  // namespace txc::shop::order
