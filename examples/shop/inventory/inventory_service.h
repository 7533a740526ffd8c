// The inventory service: items (stock, reserved) and a ledger of every movement per transaction,
// in its own PostgreSQL database.
//
//   POST /stock/reserve         saga action      {item, qty}: stock -= qty; 409 out_of_stock
//   POST /stock/release         saga compensate  the same body: stock += qty
//   POST /tcc/stock/try         tcc try          stock -= qty, reserved += qty
//   POST /tcc/stock/confirm     tcc confirm      reserved -= qty (taken for good)
//   POST /tcc/stock/cancel      tcc cancel       reserved -= qty, stock += qty
//   PUT  /items/{name}          {"stock": N}: create the item or set its stock
//   GET  /items/{name}          {"item", "stock", "reserved"}
//   GET  /ledger[?gid=G]        totals per kind, net_taken, sums of stock and reserved, and with
//                               gid that transaction's entries
//
// Each business endpoint runs in one transaction behind the barrier (business_outcome.h).
#pragma once

#include <pqxx/transaction_base>

#include "coordinator/server/router.h"
#include "examples/shop/common/business_route.h"
#include "examples/shop/common/postgres_database.h"

namespace txc::shop::inventory {

// CREATE TABLE IF NOT EXISTS items, ledger.
void CreateSchema(pqxx::transaction_base& transaction);

// `database` outlives the router's use of the routes.
void AddRoutes(server::Router& router, const BusinessContext& context, PostgresDatabase* database);

}  // namespace txc::shop::inventory
