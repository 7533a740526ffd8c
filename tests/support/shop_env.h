// The shop example (examples/shop/README.md) for the e2e and chaos tests: the order, payment and
// inventory services started as processes, each on a free loopback port and on storage of its
// own for this run, plus what the tests do with them: seed accounts and stock, read balances,
// stock, orders and ledgers, set the fault hooks, build saga and TCC submissions over the three
// services, and check that nothing was created or lost.
//
// Storage per run, on the servers of TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/dbs.sh):
//   PostgreSQL  two schemas, txcshop_<pid>_<n>_<rand>_order and ..._inventory, created by the
//               test user in its own database and selected by the services' DSN
//               (options=-csearch_path=...): that user may create schemas but not databases
//   MariaDB     a database txcshop_<pid>_<n>_<rand>_payment (the test user may create databases)
// Dropped when the ShopEnv is destroyed. The names carry the process id and a random part, so
// reruns and tests running in parallel on the same servers never meet.
//
// A ShopEnv is used from one thread, except the read and check functions, which open a
// connection per call and may run concurrently.
#pragma once

#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace txc::testing {

// ---- HTTP ------------------------------------------------------------------------------------

// One exchange on a fresh connection; never throws.
struct ShopReply {
  int status = 0;  // 0: no whole answer came
  std::string body;
  std::string error;  // why no answer came

  bool answered() const { return status != 0; }
  // The body as a JSON object, nullptr when it is not one.
  Poco::JSON::Object::Ptr json() const;
  std::string ToString() const;  // "200 {...}" or "(no answer: ...)"
};

ShopReply ShopHttp(uint16_t port, const std::string& method, const std::string& target,
                   const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// ---- what the services hold ------------------------------------------------------------------

enum class ShopService { kOrder, kPayment, kInventory };
const char* ShopServiceName(ShopService service);  // "order", "payment", "inventory"

// An account (payment) or an item (inventory): what is available and what a TCC try holds.
struct HoldingView {
  bool found = false;
  int64_t available = 0;  // balance or stock
  int64_t held = 0;       // frozen or reserved
};

struct OrderRow {
  bool found = false;
  std::string order_id;
  std::string gid;
  std::string customer;
  std::string item;
  int64_t qty = 0;
  int64_t amount = 0;
  std::string status;  // created | cancelled
};

// One ledger's movements, by kind ("charge", "refund", "tcc_freeze", ... for payment;
// "reserve", "release", "tcc_reserve", ... for inventory).
struct LedgerTotals {
  struct Kind {
    int64_t entries = 0;
    int64_t amount = 0;
  };
  std::map<std::string, Kind> kinds;

  int64_t Entries(const std::string& kind) const;
  int64_t Amount(const std::string& kind) const;
  // What left for good: saga actions and TCC confirms, minus compensations (the services'
  // net_charged / net_taken).
  int64_t Net() const;
  // The same for the saga kinds only (charge - refund, reserve - release).
  int64_t SagaNet() const;
  std::string ToString() const;  // "charge=1/30 refund=1/30"
};

// GET /ledger of payment or inventory: the totals and what the accounts or items hold together.
struct LedgerView {
  bool ok = false;
  std::string error;
  LedgerTotals totals;
  int64_t net = 0;        // net_charged or net_taken, as the service computes it
  int64_t count = 0;      // accounts or items
  int64_t available = 0;  // their balances or stock, summed
  int64_t held = 0;       // their frozen or reserved, summed
};

// One `event=business_call` line of a service's log.
struct BusinessCallLine {
  std::string route;
  std::string gid;
  std::string branch;
  std::string op;
  int status = 0;
  int64_t ms = 0;           // how long the call took
  int64_t end_unix_ms = 0;  // when it was logged (its end)
  int64_t StartUnixMs() const { return end_unix_ms - ms; }
};

// ---- submissions -----------------------------------------------------------------------------

// One purchase: an order of `qty` pieces of `item` for `customer` (also the account charged),
// paid `amount`. The saga creates the order, charges the account and takes the stock; the TCC
// transaction freezes the amount and reserves the stock, then confirms or cancels both.
struct Purchase {
  std::string gid;
  std::string order_id;  // the saga's order (1-64 of [A-Za-z0-9._-]); unused by TCC
  std::string customer;
  std::string item;
  int64_t qty = 1;
  int64_t amount = 1;
};

struct SubmitOptions {
  bool wait = true;
  int64_t timeout_ms = 30'000;
  int64_t retry_initial_ms = 20;
  int64_t retry_max_ms = 200;
  // Saga only: payment and inventory both `after: ["order"]` (at once) instead of one by one.
  bool parallel = false;
};

// ---- the environment -------------------------------------------------------------------------

class ShopEnv {
 public:
  // `scratch_dir` receives the services' stdout and stderr (<service>.stdout/.stderr).
  explicit ShopEnv(std::string scratch_dir);
  // Stops the services (SIGTERM, then SIGKILL) and drops this run's schemas and database.
  ~ShopEnv();
  ShopEnv(const ShopEnv&) = delete;
  ShopEnv& operator=(const ShopEnv&) = delete;

  // Reads TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (a missing one fails the current test), creates
  // the run's storage and starts the three services; success once each answers /healthz.
  ::testing::AssertionResult Start();

  // Stops the services with SIGTERM; every one must exit 0.
  ::testing::AssertionResult Stop();

  uint16_t port(ShopService service) const;
  std::string Url(ShopService service, const std::string& path) const;
  // The run's unique part of the storage names.
  const std::string& tag() const { return tag_; }

  // A service's stderr, its last lines for failure messages, and its business calls for `gid`.
  std::string Stderr(ShopService service) const;
  std::string LogTails(size_t lines = 25) const;
  std::vector<BusinessCallLine> BusinessCalls(ShopService service, const std::string& gid) const;

  // ---- seeding: each name once (the conservation check adds up what was put in) ----
  ::testing::AssertionResult SeedAccount(const std::string& account, int64_t balance);
  ::testing::AssertionResult SeedItem(const std::string& item, int64_t stock);
  int64_t seeded_money() const { return seeded_money_; }
  int64_t seeded_stock() const { return seeded_stock_; }

  // ---- reads through the services' own endpoints ----
  HoldingView Account(const std::string& account) const;  // GET /accounts/{name}
  HoldingView Item(const std::string& item) const;        // GET /items/{name}
  OrderRow Order(const std::string& order_id) const;      // GET /orders/{id}
  LedgerView PaymentLedger() const;                       // GET /ledger
  LedgerView InventoryLedger() const;
  LedgerTotals PaymentLedger(const std::string& gid) const;  // GET /ledger?gid=
  LedgerTotals InventoryLedger(const std::string& gid) const;

  // ---- reads straight from the databases, for checks over many transactions ----
  std::map<std::string, OrderRow> AllOrders() const;                // by order_id
  std::map<std::string, LedgerTotals> PaymentLedgersByGid() const;  // by gid
  std::map<std::string, LedgerTotals> InventoryLedgersByGid() const;

  // ---- fault hooks (POST/DELETE/GET /faults) ----
  ShopReply SetFaults(ShopService service, const std::string& json_body);
  ShopReply ClearFaults(ShopService service);
  int64_t FaultsInjected(ShopService service) const;

  // ---- submissions over the three services ----
  std::string SagaBody(const Purchase& purchase, const SubmitOptions& options = {}) const;
  std::string TccBody(const Purchase& purchase, const SubmitOptions& options = {}) const;

  // ---- invariants ----
  // Nothing created or lost: balances + frozen + net charged equal the money seeded, stock +
  // reserved + net taken the stock seeded; the saga movements match the orders that stand
  // (charge - refund = the created orders' amounts, reserve - release = their quantities). With
  // `settled` (no transaction in flight) also nothing frozen or reserved.
  ::testing::AssertionResult CheckConservation(bool settled) const;

  // A saga's purchase as its outcome says: `succeeded` → the order created with its quantity and
  // amount, the amount charged once and the stock taken once; otherwise → no order or a
  // cancelled one, and every charge refunded and every reservation released (nothing both
  // charged and cancelled).
  ::testing::AssertionResult CheckSagaPurchase(const Purchase& purchase, bool succeeded) const;
  // The same from bulk reads (AllOrders, *LedgersByGid), for many sagas at once.
  static ::testing::AssertionResult CheckSagaPurchase(
      const Purchase& purchase, bool succeeded, const std::map<std::string, OrderRow>& orders,
      const std::map<std::string, LedgerTotals>& payments,
      const std::map<std::string, LedgerTotals>& inventory);

  // A TCC purchase: `confirmed` → frozen then confirmed once, reserved then confirmed once;
  // otherwise → whatever was frozen unfrozen and whatever was reserved released, none confirmed.
  ::testing::AssertionResult CheckTccPurchase(const Purchase& purchase, bool confirmed) const;

 private:
  ::testing::AssertionResult StartService(ShopService service, const std::string& dsn);
  std::string PgDsnFor(const std::string& schema) const;
  std::string MysqlDsnFor(const std::string& database) const;
  void DropStorage();

  const std::string scratch_dir_;
  std::string tag_;
  std::string pg_dsn_;
  std::string mysql_dsn_;
  std::string order_schema_;
  std::string inventory_schema_;
  std::string payment_database_;
  bool storage_created_ = false;
  std::map<ShopService, std::unique_ptr<ChildProcess>> processes_;
  std::map<ShopService, uint16_t> ports_;
  std::set<std::string> seeded_accounts_;
  std::set<std::string> seeded_items_;
  int64_t seeded_money_ = 0;
  int64_t seeded_stock_ = 0;
};

}  // namespace txc::testing
