#include "examples/shop/inventory/inventory_service.h"

#include <pqxx/result>

#include <array>
#include <optional>
#include <string>

#include "examples/shop/common/holding.h"
#include "examples/shop/common/json_fields.h"

namespace txc::shop::inventory {
namespace {

constexpr Movement kReserve{"reserve", -1, 0};
constexpr Movement kRelease{"release", +1, 0};
constexpr Movement kTryReserve{"tcc_reserve", -1, +1};
constexpr Movement kConfirm{"tcc_confirm", 0, -1};
constexpr Movement kCancel{"tcc_cancel", +1, -1};
constexpr std::array<const Movement*, 5> kMovements{&kReserve, &kRelease, &kTryReserve, &kConfirm,
                                                    &kCancel};
constexpr int kLedgerEntriesMax = 1000;

struct Quantity {
  std::string item;
  int64_t qty = 0;
};

Result<Quantity> ParseQuantity(const Poco::JSON::Object& body) {
  Result<std::string> item = RequireName(body, "item");
  if (!item.ok()) return item.status();
  Result<int64_t> qty = RequireInteger(body, "qty", 1, kQuantityMax);
  if (!qty.ok()) return qty.status();
  return Quantity{*item, *qty};
}

// The item's row, locked until the transaction ends; nullopt when there is none.
std::optional<Holding> LockItem(pqxx::transaction_base& transaction, const std::string& item) {
  const pqxx::result row =
      transaction.exec_params("SELECT stock, reserved FROM items WHERE name = $1 FOR UPDATE", item);
  if (row.empty()) return std::nullopt;
  return Holding{row[0][0].as<int64_t>(), row[0][1].as<int64_t>()};
}

Poco::JSON::Object::Ptr ItemJson(const std::string& item, const Holding& holding) {
  Poco::JSON::Object::Ptr body = server::NewJsonObject();
  body->set("item", item);
  body->set("stock", holding.available);
  body->set("reserved", holding.held);
  return body;
}

// One saga or TCC operation on an item, inside the barrier's transaction.
BusinessOutcome Apply(pqxx::transaction_base& transaction, const barrier::BarrierKey& key,
                      const Movement& movement, const Quantity& quantity) {
  std::optional<Holding> before = LockItem(transaction, quantity.item);
  if (!before.has_value()) {
    return BusinessOutcome::Refused("unknown_item", "no item " + quantity.item);
  }
  std::optional<Holding> after = Move(*before, movement, quantity.qty);
  if (!after.has_value()) {
    if (movement.available_sign < 0) {
      return BusinessOutcome::Refused("out_of_stock",
                                      "out of stock: item " + quantity.item + " has " +
                                          std::to_string(before->available) + ", needs " +
                                          std::to_string(quantity.qty));
    }
    // A confirm or cancel releasing more than is reserved: it does not match its try.
    return BusinessOutcome::Refused(
        "reserved_mismatch", "item " + quantity.item + " has " + std::to_string(before->held) +
                                 " reserved, " + movement.kind + " needs " +
                                 std::to_string(quantity.qty));
  }
  transaction.exec_params("UPDATE items SET stock = $1, reserved = $2 WHERE name = $3",
                          after->available, after->held, quantity.item);
  transaction.exec_params(
      "INSERT INTO ledger (gid, branch, kind, item, qty) VALUES ($1, $2, $3, $4, $5)", key.gid,
      key.branch, std::string(movement.kind), quantity.item, quantity.qty);
  return BusinessOutcome::Done(ItemJson(quantity.item, *after));
}

void AddBusinessRoute(server::Router& router, const BusinessContext& context,
                      PostgresDatabase* database, const std::string& path, barrier::BarrierOp op,
                      const Movement& movement) {
  router.Add("POST", path,
             BusinessRoute(context, op, [database, &movement](const BusinessCall& call) {
               Result<Quantity> quantity = ParseQuantity(*call.body);
               if (!quantity.ok()) return BadRequest(quantity.status());
               return database->RunBusiness(call.key, [&](pqxx::transaction_base& transaction) {
                 return Apply(transaction, call.key, movement, *quantity);
               });
             }));
}

server::Response PutItem(PostgresDatabase* database, const server::Request& request) {
  const std::string item = request.Param("name");
  if (!IsName(item)) {
    return BadRequest(Status::InvalidArgument("name: must be 1-64 of [A-Za-z0-9._-]"));
  }
  Result<Poco::JSON::Object::Ptr> body = ParseJsonObject(request.body);
  if (!body.ok()) return BadRequest(body.status());
  Result<int64_t> stock = RequireInteger(**body, "stock", 0, kQuantityMax);
  if (!stock.ok()) return BadRequest(stock.status());
  return database->Run([&](pqxx::transaction_base& transaction) {
    const pqxx::result row = transaction.exec_params(
        "INSERT INTO items (name, stock, reserved) VALUES ($1, $2, 0) "
        "ON CONFLICT (name) DO UPDATE SET stock = EXCLUDED.stock RETURNING stock, reserved",
        item, *stock);
    return server::JsonResponse(
        200, *ItemJson(item, Holding{row[0][0].as<int64_t>(), row[0][1].as<int64_t>()}));
  });
}

server::Response GetItem(PostgresDatabase* database, const server::Request& request) {
  const std::string item = request.Param("name");
  if (!IsName(item)) {
    return BadRequest(Status::InvalidArgument("name: must be 1-64 of [A-Za-z0-9._-]"));
  }
  return database->Run([&](pqxx::transaction_base& transaction) {
    const pqxx::result row =
        transaction.exec_params("SELECT stock, reserved FROM items WHERE name = $1", item);
    if (row.empty()) return server::ErrorResponse(404, "not_found", "no item " + item);
    return server::JsonResponse(
        200, *ItemJson(item, Holding{row[0][0].as<int64_t>(), row[0][1].as<int64_t>()}));
  });
}

server::Response GetLedger(PostgresDatabase* database, const server::Request& request) {
  std::optional<std::string> gid;
  if (auto found = request.query.find("gid"); found != request.query.end()) {
    if (!IsName(found->second)) {
      return BadRequest(Status::InvalidArgument("gid: must be 1-64 of [A-Za-z0-9._-]"));
    }
    gid = found->second;
  }
  return database->Run([&](pqxx::transaction_base& transaction) {
    Poco::JSON::Object::Ptr body = server::NewJsonObject();
    if (gid.has_value()) body->set("gid", *gid);

    const std::string totals = "SELECT kind, count(*), coalesce(sum(qty), 0)::bigint FROM ledger " +
                               std::string(gid.has_value() ? "WHERE gid = $1 " : "") +
                               "GROUP BY kind";
    const pqxx::result rows =
        gid.has_value() ? transaction.exec_params(totals, *gid) : transaction.exec(totals);
    Poco::JSON::Object::Ptr kinds = server::NewJsonObject();
    for (const Movement* movement : kMovements) {
      Poco::JSON::Object::Ptr kind = server::NewJsonObject();
      kind->set("entries", 0);
      kind->set("qty", 0);
      kinds->set(movement->kind, kind);
    }
    int64_t net_taken = 0;
    for (const pqxx::row& row : rows) {
      const std::string kind = row[0].as<std::string>();
      const int64_t qty = row[2].as<int64_t>();
      Poco::JSON::Object::Ptr total = server::NewJsonObject();
      total->set("entries", row[1].as<int64_t>());
      total->set("qty", qty);
      kinds->set(kind, total);
      for (const Movement* movement : kMovements) {
        if (kind == movement->kind) net_taken += NetTaken(*movement, qty);
      }
    }
    body->set("totals", kinds);
    body->set("net_taken", net_taken);

    if (gid.has_value()) {
      const pqxx::result entries = transaction.exec_params(
          "SELECT branch, kind, item, qty FROM ledger WHERE gid = $1 ORDER BY id LIMIT $2", *gid,
          kLedgerEntriesMax);
      Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
      for (const pqxx::row& entry : entries) {
        Poco::JSON::Object::Ptr item = server::NewJsonObject();
        item->set("branch", entry[0].as<std::string>());
        item->set("kind", entry[1].as<std::string>());
        item->set("item", entry[2].as<std::string>());
        item->set("qty", entry[3].as<int64_t>());
        list->add(item);
      }
      body->set("entries", list);
    } else {
      // What the items hold now: with net_taken, the sum of everything ever put in.
      const pqxx::result sums = transaction.exec(
          "SELECT count(*), coalesce(sum(stock), 0)::bigint, coalesce(sum(reserved), 0)::bigint "
          "FROM items");
      Poco::JSON::Object::Ptr items = server::NewJsonObject();
      items->set("count", sums[0][0].as<int64_t>());
      items->set("stock", sums[0][1].as<int64_t>());
      items->set("reserved", sums[0][2].as<int64_t>());
      body->set("items", items);
    }
    return server::JsonResponse(200, *body);
  });
}

}  // namespace

void CreateSchema(pqxx::transaction_base& transaction) {
  transaction.exec(
      "CREATE TABLE IF NOT EXISTS items ("
      " name TEXT PRIMARY KEY,"
      " stock BIGINT NOT NULL CHECK (stock >= 0),"
      " reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0))");
  transaction.exec(
      "CREATE TABLE IF NOT EXISTS ledger ("
      " id BIGSERIAL PRIMARY KEY,"
      " gid TEXT NOT NULL,"
      " branch TEXT NOT NULL,"
      " kind TEXT NOT NULL,"
      " item TEXT NOT NULL,"
      " qty BIGINT NOT NULL,"
      " created_at TIMESTAMPTZ NOT NULL DEFAULT now())");
  transaction.exec("CREATE INDEX IF NOT EXISTS ledger_gid ON ledger (gid)");
}

void AddRoutes(server::Router& router, const BusinessContext& context, PostgresDatabase* database) {
  using barrier::BarrierOp;
  AddBusinessRoute(router, context, database, "/stock/reserve", BarrierOp::kAction, kReserve);
  AddBusinessRoute(router, context, database, "/stock/release", BarrierOp::kCompensate, kRelease);
  AddBusinessRoute(router, context, database, "/tcc/stock/try", BarrierOp::kTry, kTryReserve);
  AddBusinessRoute(router, context, database, "/tcc/stock/confirm", BarrierOp::kConfirm, kConfirm);
  AddBusinessRoute(router, context, database, "/tcc/stock/cancel", BarrierOp::kCancel, kCancel);
  router.Add("PUT", "/items/{name}",
             [database](const server::Request& request) { return PutItem(database, request); });
  router.Add("GET", "/items/{name}",
             [database](const server::Request& request) { return GetItem(database, request); });
  router.Add("GET", "/ledger",
             [database](const server::Request& request) { return GetLedger(database, request); });
}

}  // namespace txc::shop::inventory
