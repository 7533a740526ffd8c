// The payment service: accounts (balance, frozen) and a ledger of every movement per transaction,
// in its own MySQL / MariaDB database.
//
//   POST /payments/charge          saga action      {account, amount}: balance -= amount;
//                                                   409 insufficient_funds when it is short
//   POST /payments/refund          saga compensate  the same body: balance += amount
//   POST /tcc/payments/try         tcc try          freeze: balance -= amount, frozen += amount
//   POST /tcc/payments/confirm     tcc confirm      frozen -= amount (charged for good)
//   POST /tcc/payments/cancel      tcc cancel       unfreeze: frozen -= amount, balance += amount
//   PUT  /accounts/{name}          {"balance": N}: create the account or set its balance
//   GET  /accounts/{name}          {"account", "balance", "frozen"}
//   GET  /ledger[?gid=G]           totals per kind, net_charged, sums of balances and frozen
//                                  amounts, and with gid that transaction's entries
//
// Each business endpoint runs in one transaction behind the barrier (business_outcome.h).
#pragma once

#include <cppconn/connection.h>

#include "coordinator/server/router.h"
#include "examples/shop/common/business_route.h"
#include "examples/shop/common/mysql_database.h"

namespace txc::shop::payment {

// CREATE TABLE IF NOT EXISTS accounts, ledger.
void CreateSchema(sql::Connection& connection);

// `database` outlives the router's use of the routes.
void AddRoutes(server::Router& router, const BusinessContext& context, MysqlDatabase* database);

}  // namespace txc::shop::payment
