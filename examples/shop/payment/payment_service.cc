#include "examples/shop/payment/payment_service.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "examples/shop/common/holding.h"
#include "examples/shop/common/json_fields.h"

namespace txc::shop::payment {
namespace {

constexpr Movement kCharge{"charge", -1, 0};
constexpr Movement kRefund{"refund", +1, 0};
constexpr Movement kFreeze{"tcc_freeze", -1, +1};
constexpr Movement kConfirm{"tcc_confirm", 0, -1};
constexpr Movement kUnfreeze{"tcc_unfreeze", +1, -1};
constexpr std::array<const Movement*, 5> kMovements{&kCharge, &kRefund, &kFreeze, &kConfirm,
                                                    &kUnfreeze};
constexpr int kLedgerEntriesMax = 1000;

// Names are compared byte for byte: "Alice" and "alice" are two accounts.
constexpr const char* kCreateAccounts =
    "CREATE TABLE IF NOT EXISTS accounts ("
    " name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,"
    " balance BIGINT NOT NULL,"
    " frozen BIGINT NOT NULL DEFAULT 0,"
    " CONSTRAINT accounts_not_negative CHECK (balance >= 0 AND frozen >= 0)"
    ") ENGINE=InnoDB";
constexpr const char* kCreateLedger =
    "CREATE TABLE IF NOT EXISTS ledger ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " gid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " branch VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " kind VARCHAR(16) CHARACTER SET ascii NOT NULL,"
    " account VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " amount BIGINT NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " KEY ledger_gid (gid)"
    ") ENGINE=InnoDB";

std::unique_ptr<sql::PreparedStatement> Prepare(sql::Connection& connection,
                                                const std::string& text) {
  return std::unique_ptr<sql::PreparedStatement>(connection.prepareStatement(text));
}

struct Payment {
  std::string account;
  int64_t amount = 0;
};

Result<Payment> ParsePayment(const Poco::JSON::Object& body) {
  Result<std::string> account = RequireName(body, "account");
  if (!account.ok()) return account.status();
  Result<int64_t> amount = RequireInteger(body, "amount", 1, kQuantityMax);
  if (!amount.ok()) return amount.status();
  return Payment{*account, *amount};
}

// The account's row, locked until the transaction ends; nullopt when there is none.
std::optional<Holding> LockAccount(sql::Connection& connection, const std::string& account) {
  auto select =
      Prepare(connection, "SELECT balance, frozen FROM accounts WHERE name = ? FOR UPDATE");
  select->setString(1, account);
  std::unique_ptr<sql::ResultSet> row(select->executeQuery());
  if (!row->next()) return std::nullopt;
  return Holding{row->getInt64(1), row->getInt64(2)};
}

Poco::JSON::Object::Ptr AccountJson(const std::string& account, const Holding& holding) {
  Poco::JSON::Object::Ptr body = server::NewJsonObject();
  body->set("account", account);
  body->set("balance", holding.available);
  body->set("frozen", holding.held);
  return body;
}

// One saga or TCC operation on an account, inside the barrier's transaction.
BusinessOutcome Apply(sql::Connection& connection, const barrier::BarrierKey& key,
                      const Movement& movement, const Payment& payment) {
  std::optional<Holding> before = LockAccount(connection, payment.account);
  if (!before.has_value()) {
    return BusinessOutcome::Refused("unknown_account", "no account " + payment.account);
  }
  std::optional<Holding> after = Move(*before, movement, payment.amount);
  if (!after.has_value()) {
    if (movement.available_sign < 0) {
      return BusinessOutcome::Refused("insufficient_funds",
                                      "insufficient funds: account " + payment.account + " has " +
                                          std::to_string(before->available) + ", needs " +
                                          std::to_string(payment.amount));
    }
    // A confirm or cancel releasing more than is frozen: it does not match its try.
    return BusinessOutcome::Refused("frozen_mismatch", "account " + payment.account + " has " +
                                                           std::to_string(before->held) +
                                                           " frozen, " + movement.kind + " needs " +
                                                           std::to_string(payment.amount));
  }
  auto update = Prepare(connection, "UPDATE accounts SET balance = ?, frozen = ? WHERE name = ?");
  update->setInt64(1, after->available);
  update->setInt64(2, after->held);
  update->setString(3, payment.account);
  update->executeUpdate();
  auto insert = Prepare(connection,
                        "INSERT INTO ledger (gid, branch, kind, account, amount) "
                        "VALUES (?, ?, ?, ?, ?)");
  insert->setString(1, key.gid);
  insert->setString(2, key.branch);
  insert->setString(3, movement.kind);
  insert->setString(4, payment.account);
  insert->setInt64(5, payment.amount);
  insert->executeUpdate();
  return BusinessOutcome::Done(AccountJson(payment.account, *after));
}

void AddBusinessRoute(server::Router& router, const BusinessContext& context,
                      MysqlDatabase* database, const std::string& path, barrier::BarrierOp op,
                      const Movement& movement) {
  router.Add("POST", path,
             BusinessRoute(context, op, [database, &movement](const BusinessCall& call) {
               Result<Payment> payment = ParsePayment(*call.body);
               if (!payment.ok()) return BadRequest(payment.status());
               return database->RunBusiness(call.key, [&](sql::Connection& connection) {
                 return Apply(connection, call.key, movement, *payment);
               });
             }));
}

server::Response PutAccount(MysqlDatabase* database, const server::Request& request) {
  const std::string account = request.Param("name");
  if (!IsName(account))
    return BadRequest(Status::InvalidArgument("name: must be 1-64 of [A-Za-z0-9._-]"));
  Result<Poco::JSON::Object::Ptr> body = ParseJsonObject(request.body);
  if (!body.ok()) return BadRequest(body.status());
  Result<int64_t> balance = RequireInteger(**body, "balance", 0, kQuantityMax);
  if (!balance.ok()) return BadRequest(balance.status());
  return database->Run([&](sql::Connection& connection) {
    auto upsert = Prepare(connection,
                          "INSERT INTO accounts (name, balance, frozen) VALUES (?, ?, 0) "
                          "ON DUPLICATE KEY UPDATE balance = VALUES(balance)");
    upsert->setString(1, account);
    upsert->setInt64(2, *balance);
    upsert->executeUpdate();
    std::optional<Holding> now = LockAccount(connection, account);
    return server::JsonResponse(200, *AccountJson(account, now.value_or(Holding{})));
  });
}

server::Response GetAccount(MysqlDatabase* database, const server::Request& request) {
  const std::string account = request.Param("name");
  if (!IsName(account))
    return BadRequest(Status::InvalidArgument("name: must be 1-64 of [A-Za-z0-9._-]"));
  return database->Run([&](sql::Connection& connection) {
    auto select = Prepare(connection, "SELECT balance, frozen FROM accounts WHERE name = ?");
    select->setString(1, account);
    std::unique_ptr<sql::ResultSet> row(select->executeQuery());
    if (!row->next()) return server::ErrorResponse(404, "not_found", "no account " + account);
    return server::JsonResponse(200,
                                *AccountJson(account, Holding{row->getInt64(1), row->getInt64(2)}));
  });
}

server::Response GetLedger(MysqlDatabase* database, const server::Request& request) {
  std::optional<std::string> gid;
  if (auto found = request.query.find("gid"); found != request.query.end()) {
    if (!IsName(found->second)) {
      return BadRequest(Status::InvalidArgument("gid: must be 1-64 of [A-Za-z0-9._-]"));
    }
    gid = found->second;
  }
  return database->Run([&](sql::Connection& connection) {
    Poco::JSON::Object::Ptr body = server::NewJsonObject();
    if (gid.has_value()) body->set("gid", *gid);

    auto totals =
        Prepare(connection, gid.has_value()
                                ? "SELECT kind, COUNT(*), CAST(COALESCE(SUM(amount), 0) AS SIGNED) "
                                  "FROM ledger WHERE gid = ? GROUP BY kind"
                                : "SELECT kind, COUNT(*), CAST(COALESCE(SUM(amount), 0) AS SIGNED) "
                                  "FROM ledger GROUP BY kind");
    if (gid.has_value()) totals->setString(1, *gid);
    std::unique_ptr<sql::ResultSet> rows(totals->executeQuery());
    Poco::JSON::Object::Ptr kinds = server::NewJsonObject();
    int64_t net_charged = 0;
    for (const Movement* movement : kMovements) {
      Poco::JSON::Object::Ptr kind = server::NewJsonObject();
      kind->set("entries", 0);
      kind->set("amount", 0);
      kinds->set(movement->kind, kind);
    }
    while (rows->next()) {
      const std::string kind = rows->getString(1);
      const int64_t amount = rows->getInt64(3);
      Poco::JSON::Object::Ptr total = server::NewJsonObject();
      total->set("entries", rows->getInt64(2));
      total->set("amount", amount);
      kinds->set(kind, total);
      for (const Movement* movement : kMovements) {
        if (kind == movement->kind) net_charged += NetTaken(*movement, amount);
      }
    }
    body->set("totals", kinds);
    body->set("net_charged", net_charged);

    if (gid.has_value()) {
      auto entries = Prepare(connection,
                             "SELECT branch, kind, account, amount FROM ledger WHERE gid = ? "
                             "ORDER BY id LIMIT " +
                                 std::to_string(kLedgerEntriesMax));
      entries->setString(1, *gid);
      std::unique_ptr<sql::ResultSet> entry(entries->executeQuery());
      Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
      while (entry->next()) {
        Poco::JSON::Object::Ptr item = server::NewJsonObject();
        item->set("branch", std::string(entry->getString(1)));
        item->set("kind", std::string(entry->getString(2)));
        item->set("account", std::string(entry->getString(3)));
        item->set("amount", entry->getInt64(4));
        list->add(item);
      }
      body->set("entries", list);
    } else {
      // What the accounts hold now: with net_charged, the sum of everything ever put in.
      std::unique_ptr<sql::Statement> statement(connection.createStatement());
      std::unique_ptr<sql::ResultSet> sums(
          statement->executeQuery("SELECT COUNT(*), CAST(COALESCE(SUM(balance), 0) AS SIGNED), "
                                  "CAST(COALESCE(SUM(frozen), 0) AS SIGNED) FROM accounts"));
      sums->next();
      Poco::JSON::Object::Ptr accounts = server::NewJsonObject();
      accounts->set("count", sums->getInt64(1));
      accounts->set("balance", sums->getInt64(2));
      accounts->set("frozen", sums->getInt64(3));
      body->set("accounts", accounts);
    }
    return server::JsonResponse(200, *body);
  });
}

}  // namespace

void CreateSchema(sql::Connection& connection) {
  std::unique_ptr<sql::Statement> statement(connection.createStatement());
  statement->execute(kCreateAccounts);
  statement->execute(kCreateLedger);
}

void AddRoutes(server::Router& router, const BusinessContext& context, MysqlDatabase* database) {
  using barrier::BarrierOp;
  AddBusinessRoute(router, context, database, "/payments/charge", BarrierOp::kAction, kCharge);
  AddBusinessRoute(router, context, database, "/payments/refund", BarrierOp::kCompensate, kRefund);
  AddBusinessRoute(router, context, database, "/tcc/payments/try", BarrierOp::kTry, kFreeze);
  AddBusinessRoute(router, context, database, "/tcc/payments/confirm", BarrierOp::kConfirm,
                   kConfirm);
  AddBusinessRoute(router, context, database, "/tcc/payments/cancel", BarrierOp::kCancel,
                   kUnfreeze);
  router.Add("PUT", "/accounts/{name}",
             [database](const server::Request& request) { return PutAccount(database, request); });
  router.Add("GET", "/accounts/{name}",
             [database](const server::Request& request) { return GetAccount(database, request); });
  router.Add("GET", "/ledger",
             [database](const server::Request& request) { return GetLedger(database, request); });
}

}  // namespace txc::shop::payment
