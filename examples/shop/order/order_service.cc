#include "examples/shop/order/order_service.h"

#include <pqxx/result>

#include <charconv>
#include <string>

#include "examples/shop/common/json_fields.h"

namespace txc::shop::order {
namespace {

constexpr int64_t kListDefault = 100;
constexpr int64_t kListMax = 1000;

// The columns every answer about an order carries, in OrderJson's order.
constexpr const char* kOrderColumns =
    "order_id, gid, customer, item, qty, amount, status,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

struct NewOrder {
  std::string order_id;
  std::string customer;
  std::string item;
  int64_t qty = 0;
  int64_t amount = 0;
};

Result<NewOrder> ParseNewOrder(const Poco::JSON::Object& body) {
  NewOrder order;
  Result<std::string> order_id = RequireName(body, "order_id");
  if (!order_id.ok()) return order_id.status();
  order.order_id = *order_id;
  Result<std::string> customer = RequireText(body, "customer");
  if (!customer.ok()) return customer.status();
  order.customer = *customer;
  Result<std::string> item = RequireName(body, "item");
  if (!item.ok()) return item.status();
  order.item = *item;
  Result<int64_t> qty = RequireInteger(body, "qty", 1, kQuantityMax);
  if (!qty.ok()) return qty.status();
  order.qty = *qty;
  Result<int64_t> amount = RequireInteger(body, "amount", 0, kQuantityMax);
  if (!amount.ok()) return amount.status();
  order.amount = *amount;
  return order;
}

Poco::JSON::Object::Ptr OrderJson(const pqxx::row& row) {
  Poco::JSON::Object::Ptr order = server::NewJsonObject();
  order->set("order_id", row[0].as<std::string>());
  order->set("gid", row[1].as<std::string>());
  order->set("customer", row[2].as<std::string>());
  order->set("item", row[3].as<std::string>());
  order->set("qty", row[4].as<int64_t>());
  order->set("amount", row[5].as<int64_t>());
  order->set("status", row[6].as<std::string>());
  order->set("created_at", row[7].as<std::string>());
  order->set("updated_at", row[8].as<std::string>());
  return order;
}

BusinessOutcome Create(pqxx::transaction_base& transaction, const barrier::BarrierKey& key,
                       const NewOrder& order) {
  const pqxx::result created = transaction.exec_params(
      std::string("INSERT INTO orders (order_id, gid, customer, item, qty, amount, status) "
                  "VALUES ($1, $2, $3, $4, $5, $6, 'created') "
                  "ON CONFLICT (order_id) DO NOTHING RETURNING ") +
          kOrderColumns,
      order.order_id, key.gid, order.customer, order.item, order.qty, order.amount);
  if (created.empty()) {
    const pqxx::result owner =
        transaction.exec_params("SELECT gid FROM orders WHERE order_id = $1", order.order_id);
    return BusinessOutcome::Refused(
        "order_exists", "order " + order.order_id + " exists already (created by transaction " +
                            (owner.empty() ? std::string("?") : owner[0][0].as<std::string>()) +
                            ")");
  }
  return BusinessOutcome::Done(OrderJson(created[0]));
}

// The compensation finds the order by the id in its body and the gid of its call: it undoes only
// what this transaction's action did.
BusinessOutcome Cancel(pqxx::transaction_base& transaction, const barrier::BarrierKey& key,
                       const std::string& order_id) {
  const pqxx::result cancelled = transaction.exec_params(
      std::string("UPDATE orders SET status = 'cancelled', updated_at = now() "
                  "WHERE order_id = $1 AND gid = $2 RETURNING ") +
          kOrderColumns,
      order_id, key.gid);
  if (cancelled.empty()) {
    return BusinessOutcome::Refused("order_not_found",
                                    "no order " + order_id + " created by transaction " + key.gid);
  }
  return BusinessOutcome::Done(OrderJson(cancelled[0]));
}

server::Response GetOrder(PostgresDatabase* database, const server::Request& request) {
  const std::string order_id = request.Param("order_id");
  if (!IsName(order_id)) {
    return BadRequest(Status::InvalidArgument("order_id: must be 1-64 of [A-Za-z0-9._-]"));
  }
  return database->Run([&](pqxx::transaction_base& transaction) {
    const pqxx::result row = transaction.exec_params(
        std::string("SELECT ") + kOrderColumns + " FROM orders WHERE order_id = $1", order_id);
    if (row.empty()) return server::ErrorResponse(404, "not_found", "no order " + order_id);
    return server::JsonResponse(200, *OrderJson(row[0]));
  });
}

server::Response ListOrders(PostgresDatabase* database, const server::Request& request) {
  int64_t limit = kListDefault;
  if (auto found = request.query.find("limit"); found != request.query.end()) {
    const std::string& text = found->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (error != std::errc() || end != text.data() + text.size() || limit < 1 || limit > kListMax) {
      return BadRequest(Status::InvalidArgument("limit: must be an integer from 1 to " +
                                                std::to_string(kListMax)));
    }
  }
  std::string status;
  if (auto found = request.query.find("status"); found != request.query.end()) {
    status = found->second;
    if (status != "created" && status != "cancelled") {
      return BadRequest(Status::InvalidArgument("status: must be created or cancelled"));
    }
  }
  return database->Run([&](pqxx::transaction_base& transaction) {
    const pqxx::result rows = transaction.exec_params(
        std::string("SELECT ") + kOrderColumns +
            " FROM orders WHERE $1 = '' OR status = $1 ORDER BY created_at DESC, order_id "
            "LIMIT $2",
        status, limit);
    Poco::JSON::Array::Ptr orders = new Poco::JSON::Array;
    for (const pqxx::row& row : rows) orders->add(OrderJson(row));
    Poco::JSON::Object::Ptr body = server::NewJsonObject();
    body->set("orders", orders);
    return server::JsonResponse(200, *body);
  });
}

}  // namespace

void CreateSchema(pqxx::transaction_base& transaction) {
  transaction.exec(
      "CREATE TABLE IF NOT EXISTS orders ("
      " order_id TEXT PRIMARY KEY,"
      " gid TEXT NOT NULL,"
      " customer TEXT NOT NULL,"
      " item TEXT NOT NULL,"
      " qty BIGINT NOT NULL CHECK (qty > 0),"
      " amount BIGINT NOT NULL CHECK (amount >= 0),"
      " status TEXT NOT NULL CHECK (status IN ('created', 'cancelled')),"
      " created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
      " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())");
}

void AddRoutes(server::Router& router, const BusinessContext& context, PostgresDatabase* database) {
  router.Add(
      "POST", "/orders/create",
      BusinessRoute(context, barrier::BarrierOp::kAction, [database](const BusinessCall& call) {
        Result<NewOrder> order = ParseNewOrder(*call.body);
        if (!order.ok()) return BadRequest(order.status());
        return database->RunBusiness(call.key, [&](pqxx::transaction_base& transaction) {
          return Create(transaction, call.key, *order);
        });
      }));
  router.Add(
      "POST", "/orders/cancel",
      BusinessRoute(context, barrier::BarrierOp::kCompensate, [database](const BusinessCall& call) {
        Result<std::string> order_id = RequireName(*call.body, "order_id");
        if (!order_id.ok()) return BadRequest(order_id.status());
        return database->RunBusiness(call.key, [&](pqxx::transaction_base& transaction) {
          return Cancel(transaction, call.key, *order_id);
        });
      }));
  router.Add("GET", "/orders/{order_id}",
             [database](const server::Request& request) { return GetOrder(database, request); });
  router.Add("GET", "/orders",
             [database](const server::Request& request) { return ListOrders(database, request); });
}

}  // namespace txc::shop::order
