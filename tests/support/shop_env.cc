#include "tests/support/shop_env.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "tests/support/db_env.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kListenTimeout{20'000};
constexpr milliseconds kStopTimeout{15'000};  // the services give running requests 5 s
constexpr int kServiceThreads = 8;            // and as many database connections each

constexpr ShopService kServices[] = {ShopService::kOrder, ShopService::kPayment,
                                     ShopService::kInventory};

const char* ServicePath(ShopService service) {
  switch (service) {
    case ShopService::kOrder:
      return SHOP_ORDER_PATH;
    case ShopService::kPayment:
      return SHOP_PAYMENT_PATH;
    case ShopService::kInventory:
      return SHOP_INVENTORY_PATH;
  }
  return "";
}

// `text` as a JSON string literal.
std::string Quote(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      quoted += escaped;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

std::string Tail(const std::string& text, size_t lines) {
  size_t position = text.size();
  if (position > 0 && text[position - 1] == '\n') --position;
  for (size_t seen = 0; position > 0; --position) {
    if (text[position - 1] == '\n' && ++seen == lines) break;
  }
  return text.substr(position);
}

// The value of `key=` in one logfmt line (unquoted values only: what the tests look for never
// needs quotes), or "".
std::string LogfmtValue(const std::string& line, const std::string& key) {
  const std::string needle = " " + key + "=";
  size_t at = line.find(needle);
  if (at == std::string::npos) {
    if (!line.starts_with(key + "=")) return "";
    at = 0;
  } else {
    at += 1;
  }
  at += key.size() + 1;
  const size_t end = line.find(' ', at);
  return line.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// "2026-11-30T01:23:13.071Z" → Unix milliseconds; 0 when it is not that shape.
int64_t ParseUtcMillis(const std::string& text) {
  std::tm utc{};
  int millis = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &utc.tm_year, &utc.tm_mon,
                  &utc.tm_mday, &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &millis) != 7) {
    return 0;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&utc)) * 1000 + millis;
}

int64_t Integer(const Poco::JSON::Object::Ptr& object, const std::string& key) {
  if (!object || !object->has(key) || object->isNull(key)) return 0;
  return object->get(key).convert<int64_t>();
}

std::string String(const Poco::JSON::Object::Ptr& object, const std::string& key) {
  if (!object || !object->has(key) || object->isNull(key)) return "";
  return object->get(key).convert<std::string>();
}

// The `totals` object of GET /ledger: {kind: {entries, amount | qty}}.
LedgerTotals ParseTotals(const Poco::JSON::Object::Ptr& body) {
  LedgerTotals totals;
  Poco::JSON::Object::Ptr kinds = body ? body->getObject("totals") : nullptr;
  if (!kinds) return totals;
  for (const auto& [kind, value] : *kinds) {
    Poco::JSON::Object::Ptr total = kinds->getObject(kind);
    if (!total) continue;
    LedgerTotals::Kind parsed;
    parsed.entries = Integer(total, "entries");
    parsed.amount = Integer(total, total->has("amount") ? "amount" : "qty");
    if (parsed.entries != 0 || parsed.amount != 0) totals.kinds[kind] = parsed;
  }
  return totals;
}

std::string Name(const char* prefix, const std::string& tag, const char* suffix) {
  return std::string(prefix) + tag + suffix;
}

// A unique part for this run's storage names: [a-z0-9_], short enough for identifiers.
std::string NewTag() {
  static std::atomic<int> counter{0};
  std::random_device random;
  char text[48];
  std::snprintf(text, sizeof text, "%d_%d_%06x", static_cast<int>(getpid()), ++counter,
                static_cast<unsigned>(random() & 0xffffff));
  return text;
}

std::string DescribeException() {
  try {
    throw;
  } catch (const sql::SQLException& e) {
    return std::string(e.what()) + " (MySQL error " + std::to_string(e.getErrorCode()) + ")";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

std::unique_ptr<sql::Connection> ConnectMysqlDsn(const std::string& dsn) {
  std::string error;
  const std::optional<MysqlDsn> parsed = ParseMysqlDsn(dsn, &error);
  if (!parsed) throw std::runtime_error("TXC_TEST_MYSQL_DSN: " + error);
  return ConnectMysql(*parsed);
}

// What a business call of the ledger means for the conservation sums.
int64_t NetSign(const std::string& kind, bool saga_only) {
  if (kind == "charge" || kind == "reserve") return +1;
  if (kind == "refund" || kind == "release") return -1;
  if (!saga_only && kind == "tcc_confirm") return +1;
  return 0;  // tcc_freeze, tcc_unfreeze, tcc_reserve, tcc_cancel: the units stay in the system
}

}  // namespace

// ---- HTTP ------------------------------------------------------------------------------------

Poco::JSON::Object::Ptr ShopReply::json() const {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(body);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) return nullptr;
    return parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

std::string ShopReply::ToString() const {
  if (!answered()) return "(no answer: " + error + ")";
  return std::to_string(status) + " " + body;
}

ShopReply ShopHttp(uint16_t port, const std::string& method, const std::string& target,
                   const std::string& body, const std::map<std::string, std::string>& headers,
                   milliseconds timeout) {
  ShopReply reply;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    const Poco::Timespan span(static_cast<long>(timeout.count() / 1000),
                              static_cast<long>((timeout.count() % 1000) * 1000));
    session.setTimeout(span, span, span);
    session.setKeepAlive(false);
    Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(false);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (method != "GET" && method != "DELETE") {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session.sendRequest(request);
    if (method != "GET" && method != "DELETE") out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Poco::StreamCopier::copyToString(in, reply.body);
    reply.status = static_cast<int>(response.getStatus());
  } catch (const Poco::Exception& e) {
    reply.error = e.displayText();
  } catch (const std::exception& e) {
    reply.error = e.what();
  }
  return reply;
}

const char* ShopServiceName(ShopService service) {
  switch (service) {
    case ShopService::kOrder:
      return "order";
    case ShopService::kPayment:
      return "payment";
    case ShopService::kInventory:
      return "inventory";
  }
  return "?";
}

// ---- ledgers ---------------------------------------------------------------------------------

int64_t LedgerTotals::Entries(const std::string& kind) const {
  auto it = kinds.find(kind);
  return it == kinds.end() ? 0 : it->second.entries;
}

int64_t LedgerTotals::Amount(const std::string& kind) const {
  auto it = kinds.find(kind);
  return it == kinds.end() ? 0 : it->second.amount;
}

int64_t LedgerTotals::Net() const {
  int64_t net = 0;
  for (const auto& [kind, total] : kinds) net += NetSign(kind, false) * total.amount;
  return net;
}

int64_t LedgerTotals::SagaNet() const {
  int64_t net = 0;
  for (const auto& [kind, total] : kinds) net += NetSign(kind, true) * total.amount;
  return net;
}

std::string LedgerTotals::ToString() const {
  if (kinds.empty()) return "(no entries)";
  std::string text;
  for (const auto& [kind, total] : kinds) {
    if (!text.empty()) text += " ";
    text += kind + "=" + std::to_string(total.entries) + "/" + std::to_string(total.amount);
  }
  return text;
}

// ---- the environment -------------------------------------------------------------------------

ShopEnv::ShopEnv(std::string scratch_dir) : scratch_dir_(std::move(scratch_dir)), tag_(NewTag()) {
  order_schema_ = Name("txcshop_", tag_, "_order");
  inventory_schema_ = Name("txcshop_", tag_, "_inventory");
  payment_database_ = Name("txcshop_", tag_, "_payment");
}

ShopEnv::~ShopEnv() {
  for (auto& [service, process] : processes_) process->Signal(SIGTERM);
  for (auto& [service, process] : processes_) process->WaitForExit(kStopTimeout);
  processes_.clear();  // SIGKILL for any that did not stop
  DropStorage();
}

std::string ShopEnv::PgDsnFor(const std::string& schema) const {
  // libpq takes `options` in both DSN forms; in a URI the '=' inside the value is escaped.
  if (pg_dsn_.starts_with("postgresql://") || pg_dsn_.starts_with("postgres://")) {
    return pg_dsn_ + (pg_dsn_.find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + schema;
  }
  return pg_dsn_ + " options='-csearch_path=" + schema + "'";
}

std::string ShopEnv::MysqlDsnFor(const std::string& database) const {
  // The same user, password and server; only the path (the database) changes, so whatever
  // escaping the original needed is kept as it is.
  const size_t authority = std::string("mysql://").size();
  const size_t slash = mysql_dsn_.find('/', authority);
  return mysql_dsn_.substr(0, slash) + "/" + database;
}

::testing::AssertionResult ShopEnv::Start() {
  pg_dsn_ = RequireEnv("TXC_TEST_PG_DSN");
  mysql_dsn_ = RequireEnv("TXC_TEST_MYSQL_DSN");
  if (pg_dsn_.empty() || mysql_dsn_.empty()) {
    return ::testing::AssertionFailure()
           << "the shop services need TXC_TEST_PG_DSN and TXC_TEST_MYSQL_DSN (scripts/test.sh "
              "sets them; by hand: scripts/dbs.sh start DIR && eval \"$(scripts/dbs.sh env DIR)\")";
  }
  if (pg_dsn_.find("search_path") != std::string::npos) {
    return ::testing::AssertionFailure()
           << "TXC_TEST_PG_DSN sets a search_path already; the shop tests set their own";
  }

  // Storage first: the services create their tables at start.
  try {
    auto pg = ConnectPostgres(pg_dsn_);
    ExecPostgres(*pg, "CREATE SCHEMA \"" + order_schema_ + "\"");
    storage_created_ = true;
    ExecPostgres(*pg, "CREATE SCHEMA \"" + inventory_schema_ + "\"");
  } catch (...) {
    return ::testing::AssertionFailure()
           << "cannot create the PostgreSQL schemas " << order_schema_ << " and "
           << inventory_schema_ << " on TXC_TEST_PG_DSN (the test user needs CREATE on its "
           << "database, which scripts/dbs.sh grants by making it the owner): "
           << DescribeException();
  }
  try {
    auto my = ConnectMysqlDsn(mysql_dsn_);
    ExecMysql(*my, "CREATE DATABASE `" + payment_database_ + "`");
  } catch (...) {
    return ::testing::AssertionFailure()
           << "cannot create the MariaDB database " << payment_database_
           << " on TXC_TEST_MYSQL_DSN: " << DescribeException();
  }

  // All three at once, then each one's port: they connect to their databases in parallel.
  const std::map<ShopService, std::string> dsns = {
      {ShopService::kOrder, PgDsnFor(order_schema_)},
      {ShopService::kPayment, MysqlDsnFor(payment_database_)},
      {ShopService::kInventory, PgDsnFor(inventory_schema_)}};
  for (const ShopService service : kServices) {
    ChildProcess::Options options;
    options.program = ServicePath(service);
    options.args = {"--listen",       "127.0.0.1:0", "--dsn",
                    dsns.at(service), "--threads",   std::to_string(kServiceThreads)};
    options.environment = CurrentEnvironment();
    // The flags decide: none of the runner's SHOP_* variables reach the services.
    for (auto it = options.environment.begin(); it != options.environment.end();) {
      it = it->first.starts_with("SHOP_") ? options.environment.erase(it) : std::next(it);
    }
    const std::string name = ShopServiceName(service);
    options.stdout_path = scratch_dir_ + "/" + name + ".stdout";
    options.stderr_path = scratch_dir_ + "/" + name + ".stderr";
    try {
      processes_[service] = std::make_unique<ChildProcess>(options);
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << e.what();
    }
  }
  for (const ShopService service : kServices) {
    ::testing::AssertionResult listening = StartService(service, dsns.at(service));
    if (!listening) return listening;
  }
  for (const ShopService service : kServices) {
    const ShopReply health = ShopHttp(port(service), "GET", "/healthz");
    if (health.status != 200) {
      return ::testing::AssertionFailure()
             << ShopServiceName(service) << ": GET /healthz answered " << health.ToString() << "\n"
             << LogTails();
    }
  }
  return ::testing::AssertionSuccess();
}

// Waits for the `event=listening ... port=N` line of a service started with port 0.
::testing::AssertionResult ShopEnv::StartService(ShopService service, const std::string& dsn) {
  ChildProcess& process = *processes_.at(service);
  const auto deadline = std::chrono::steady_clock::now() + kListenTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::istringstream lines(ReadFileOrEmpty(process.stderr_path()));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(" event=listening ") == std::string::npos) continue;
      const std::string port_text = LogfmtValue(line, "port");
      const int port_number = port_text.empty() ? 0 : std::stoi(port_text);
      if (port_number <= 0 || port_number > 65535) {
        return ::testing::AssertionFailure()
               << ShopServiceName(service) << ": no port in its listening line: " << line;
      }
      ports_[service] = static_cast<uint16_t>(port_number);
      return ::testing::AssertionSuccess();
    }
    if (!process.Running()) {
      return ::testing::AssertionFailure()
             << ShopServiceName(service) << " exited (status "
             << process.WaitForExit(milliseconds(0)).value_or(-1) << ") before it listened; "
             << "its DSN: " << dsn << "\n"
             << Tail(ReadFileOrEmpty(process.stderr_path()), 20);
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return ::testing::AssertionFailure() << ShopServiceName(service) << " did not listen within "
                                       << kListenTimeout.count() << " ms\n"
                                       << Tail(ReadFileOrEmpty(process.stderr_path()), 20);
}

::testing::AssertionResult ShopEnv::Stop() {
  for (auto& [service, process] : processes_) process->Signal(SIGTERM);
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  for (auto& [service, process] : processes_) {
    const std::optional<int> status = process->WaitForExit(kStopTimeout);
    if (status != 0) {
      result = ::testing::AssertionFailure()
               << ShopServiceName(service) << " did not exit 0 on SIGTERM (status "
               << (status ? std::to_string(*status) : std::string("none: still running")) << ")\n"
               << Tail(ReadFileOrEmpty(process->stderr_path()), 20);
    }
  }
  return result;
}

void ShopEnv::DropStorage() {
  if (!storage_created_) return;
  try {
    auto pg = ConnectPostgres(pg_dsn_);
    // A session of a service killed midway may still hold a lock for a moment.
    ExecPostgres(*pg, "SET lock_timeout = '10s'");
    ExecPostgres(*pg, "DROP SCHEMA IF EXISTS \"" + order_schema_ + "\" CASCADE");
    ExecPostgres(*pg, "DROP SCHEMA IF EXISTS \"" + inventory_schema_ + "\" CASCADE");
  } catch (...) {
    std::fprintf(stderr, "shop_env: could not drop the schemas %s, %s: %s\n", order_schema_.c_str(),
                 inventory_schema_.c_str(), DescribeException().c_str());
  }
  try {
    auto my = ConnectMysqlDsn(mysql_dsn_);
    ExecMysql(*my, "SET SESSION lock_wait_timeout = 10");
    ExecMysql(*my, "DROP DATABASE IF EXISTS `" + payment_database_ + "`");
  } catch (...) {
    std::fprintf(stderr, "shop_env: could not drop the database %s: %s\n",
                 payment_database_.c_str(), DescribeException().c_str());
  }
}

uint16_t ShopEnv::port(ShopService service) const {
  auto it = ports_.find(service);
  return it == ports_.end() ? 0 : it->second;
}

std::string ShopEnv::Url(ShopService service, const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port(service)) + path;
}

std::string ShopEnv::Stderr(ShopService service) const {
  auto it = processes_.find(service);
  return it == processes_.end() ? "" : ReadFileOrEmpty(it->second->stderr_path());
}

std::string ShopEnv::LogTails(size_t lines) const {
  std::string text;
  for (const ShopService service : kServices) {
    text += std::string("---- last lines of the ") + ShopServiceName(service) +
            " service's stderr ----\n" + Tail(Stderr(service), lines) + "\n";
  }
  return text + "---- end of the services' stderr ----\n";
}

std::vector<BusinessCallLine> ShopEnv::BusinessCalls(ShopService service,
                                                     const std::string& gid) const {
  std::vector<BusinessCallLine> calls;
  std::istringstream lines(Stderr(service));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(" event=business_call ") == std::string::npos) continue;
    if (LogfmtValue(line, "gid") != gid) continue;
    BusinessCallLine call;
    call.route = LogfmtValue(line, "route");
    call.gid = gid;
    call.branch = LogfmtValue(line, "branch");
    call.op = LogfmtValue(line, "op");
    const std::string status = LogfmtValue(line, "status");
    const std::string ms = LogfmtValue(line, "ms");
    call.status = status.empty() ? 0 : std::stoi(status);
    call.ms = ms.empty() ? 0 : std::stoll(ms);
    call.end_unix_ms = ParseUtcMillis(LogfmtValue(line, "ts"));
    calls.push_back(call);
  }
  return calls;
}

// ---- seeding ---------------------------------------------------------------------------------

::testing::AssertionResult ShopEnv::SeedAccount(const std::string& account, int64_t balance) {
  if (!seeded_accounts_.insert(account).second) {
    return ::testing::AssertionFailure()
           << "account " << account << " was seeded before (a second PUT would break the sums)";
  }
  const ShopReply reply = ShopHttp(port(ShopService::kPayment), "PUT", "/accounts/" + account,
                                   "{\"balance\":" + std::to_string(balance) + "}");
  if (reply.status != 200) {
    return ::testing::AssertionFailure() << "PUT /accounts/" << account << ": " << reply.ToString();
  }
  seeded_money_ += balance;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ShopEnv::SeedItem(const std::string& item, int64_t stock) {
  if (!seeded_items_.insert(item).second) {
    return ::testing::AssertionFailure()
           << "item " << item << " was seeded before (a second PUT would break the sums)";
  }
  const ShopReply reply = ShopHttp(port(ShopService::kInventory), "PUT", "/items/" + item,
                                   "{\"stock\":" + std::to_string(stock) + "}");
  if (reply.status != 200) {
    return ::testing::AssertionFailure() << "PUT /items/" << item << ": " << reply.ToString();
  }
  seeded_stock_ += stock;
  return ::testing::AssertionSuccess();
}

// ---- reads through the endpoints -------------------------------------------------------------

HoldingView ShopEnv::Account(const std::string& account) const {
  HoldingView view;
  const ShopReply reply = ShopHttp(port(ShopService::kPayment), "GET", "/accounts/" + account);
  if (reply.status == 404) return view;
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body) {
    ADD_FAILURE() << "GET /accounts/" << account << ": " << reply.ToString();
    return view;
  }
  view.found = true;
  view.available = Integer(body, "balance");
  view.held = Integer(body, "frozen");
  return view;
}

HoldingView ShopEnv::Item(const std::string& item) const {
  HoldingView view;
  const ShopReply reply = ShopHttp(port(ShopService::kInventory), "GET", "/items/" + item);
  if (reply.status == 404) return view;
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body) {
    ADD_FAILURE() << "GET /items/" << item << ": " << reply.ToString();
    return view;
  }
  view.found = true;
  view.available = Integer(body, "stock");
  view.held = Integer(body, "reserved");
  return view;
}

OrderRow ShopEnv::Order(const std::string& order_id) const {
  OrderRow row;
  const ShopReply reply = ShopHttp(port(ShopService::kOrder), "GET", "/orders/" + order_id);
  if (reply.status == 404) return row;
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body) {
    ADD_FAILURE() << "GET /orders/" << order_id << ": " << reply.ToString();
    return row;
  }
  row.found = true;
  row.order_id = String(body, "order_id");
  row.gid = String(body, "gid");
  row.customer = String(body, "customer");
  row.item = String(body, "item");
  row.qty = Integer(body, "qty");
  row.amount = Integer(body, "amount");
  row.status = String(body, "status");
  return row;
}

namespace {

LedgerView ReadLedger(uint16_t port, const char* net_key, const char* holdings_key,
                      const char* available_key, const char* held_key) {
  LedgerView view;
  const ShopReply reply = ShopHttp(port, "GET", "/ledger");
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body) {
    view.error = "GET /ledger: " + reply.ToString();
    return view;
  }
  view.totals = ParseTotals(body);
  view.net = Integer(body, net_key);
  Poco::JSON::Object::Ptr holdings = body->getObject(holdings_key);
  if (!holdings) {
    view.error = std::string("GET /ledger: no \"") + holdings_key + "\": " + reply.body;
    return view;
  }
  view.count = Integer(holdings, "count");
  view.available = Integer(holdings, available_key);
  view.held = Integer(holdings, held_key);
  view.ok = true;
  return view;
}

LedgerTotals ReadGidLedger(uint16_t port, const std::string& gid) {
  const ShopReply reply = ShopHttp(port, "GET", "/ledger?gid=" + gid);
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body) {
    ADD_FAILURE() << "GET /ledger?gid=" << gid << " on port " << port << ": " << reply.ToString();
    return {};
  }
  return ParseTotals(body);
}

}  // namespace

LedgerView ShopEnv::PaymentLedger() const {
  return ReadLedger(port(ShopService::kPayment), "net_charged", "accounts", "balance", "frozen");
}

LedgerView ShopEnv::InventoryLedger() const {
  return ReadLedger(port(ShopService::kInventory), "net_taken", "items", "stock", "reserved");
}

LedgerTotals ShopEnv::PaymentLedger(const std::string& gid) const {
  return ReadGidLedger(port(ShopService::kPayment), gid);
}

LedgerTotals ShopEnv::InventoryLedger(const std::string& gid) const {
  return ReadGidLedger(port(ShopService::kInventory), gid);
}

// ---- reads from the databases ----------------------------------------------------------------

std::map<std::string, OrderRow> ShopEnv::AllOrders() const {
  std::map<std::string, OrderRow> orders;
  try {
    auto pg = ConnectPostgres(pg_dsn_);
    const pqxx::result rows =
        ExecPostgres(*pg, "SELECT order_id, gid, customer, item, qty, amount, status FROM \"" +
                              order_schema_ + "\".orders");
    for (const auto& row : rows) {
      OrderRow order;
      order.found = true;
      order.order_id = row[0].as<std::string>();
      order.gid = row[1].as<std::string>();
      order.customer = row[2].as<std::string>();
      order.item = row[3].as<std::string>();
      order.qty = row[4].as<int64_t>();
      order.amount = row[5].as<int64_t>();
      order.status = row[6].as<std::string>();
      orders[order.order_id] = order;
    }
  } catch (...) {
    ADD_FAILURE() << "reading " << order_schema_ << ".orders: " << DescribeException();
  }
  return orders;
}

std::map<std::string, LedgerTotals> ShopEnv::PaymentLedgersByGid() const {
  std::map<std::string, LedgerTotals> ledgers;
  try {
    auto my = ConnectMysqlDsn(mysql_dsn_);
    std::unique_ptr<sql::Statement> statement(my->createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery("SELECT gid, kind, COUNT(*), CAST(SUM(amount) AS SIGNED) FROM `" +
                                payment_database_ + "`.ledger GROUP BY gid, kind"));
    while (rows->next()) {
      ledgers[rows->getString(1).asStdString()].kinds[rows->getString(2).asStdString()] = {
          rows->getInt64(3), rows->getInt64(4)};
    }
  } catch (...) {
    ADD_FAILURE() << "reading " << payment_database_ << ".ledger: " << DescribeException();
  }
  return ledgers;
}

std::map<std::string, LedgerTotals> ShopEnv::InventoryLedgersByGid() const {
  std::map<std::string, LedgerTotals> ledgers;
  try {
    auto pg = ConnectPostgres(pg_dsn_);
    const pqxx::result rows =
        ExecPostgres(*pg, "SELECT gid, kind, count(*), sum(qty)::bigint FROM \"" +
                              inventory_schema_ + "\".ledger GROUP BY gid, kind");
    for (const auto& row : rows) {
      ledgers[row[0].as<std::string>()].kinds[row[1].as<std::string>()] = {row[2].as<int64_t>(),
                                                                           row[3].as<int64_t>()};
    }
  } catch (...) {
    ADD_FAILURE() << "reading " << inventory_schema_ << ".ledger: " << DescribeException();
  }
  return ledgers;
}

// ---- fault hooks -----------------------------------------------------------------------------

ShopReply ShopEnv::SetFaults(ShopService service, const std::string& json_body) {
  return ShopHttp(port(service), "POST", "/faults", json_body);
}

ShopReply ShopEnv::ClearFaults(ShopService service) {
  return ShopHttp(port(service), "DELETE", "/faults");
}

int64_t ShopEnv::FaultsInjected(ShopService service) const {
  const ShopReply reply = ShopHttp(port(service), "GET", "/faults");
  Poco::JSON::Object::Ptr body = reply.json();
  if (reply.status != 200 || !body || !body->has("injected_total")) {
    ADD_FAILURE() << ShopServiceName(service) << ": GET /faults: " << reply.ToString();
    return -1;
  }
  return Integer(body, "injected_total");
}

// ---- submissions -----------------------------------------------------------------------------

namespace {

std::string Call(const std::string& url, const std::string& body) {
  return "{\"url\":" + Quote(url) + ",\"body\":" + body + "}";
}

std::string Envelope(const std::string& gid, const char* protocol, const SubmitOptions& options,
                     const std::string& branches) {
  return "{\"gid\":" + Quote(gid) + ",\"protocol\":\"" + protocol +
         "\",\"wait\":" + (options.wait ? "true" : "false") +
         ",\"timeout_ms\":" + std::to_string(options.timeout_ms) +
         ",\"retry\":{\"initial_ms\":" + std::to_string(options.retry_initial_ms) +
         ",\"max_ms\":" + std::to_string(options.retry_max_ms) + "},\"branches\":[" + branches +
         "]}";
}

}  // namespace

std::string ShopEnv::SagaBody(const Purchase& purchase, const SubmitOptions& options) const {
  // Each compensation gets its action's body: it needs nothing but its own request.
  const std::string order =
      "{\"order_id\":" + Quote(purchase.order_id) + ",\"customer\":" + Quote(purchase.customer) +
      ",\"item\":" + Quote(purchase.item) + ",\"qty\":" + std::to_string(purchase.qty) +
      ",\"amount\":" + std::to_string(purchase.amount) + "}";
  const std::string payment = "{\"account\":" + Quote(purchase.customer) +
                              ",\"amount\":" + std::to_string(purchase.amount) + "}";
  const std::string stock =
      "{\"item\":" + Quote(purchase.item) + ",\"qty\":" + std::to_string(purchase.qty) + "}";
  const std::string after = options.parallel ? ",\"after\":[\"order\"]" : "";
  const std::string branches =
      "{\"name\":\"order\",\"action\":" + Call(Url(ShopService::kOrder, "/orders/create"), order) +
      ",\"compensate\":" + Call(Url(ShopService::kOrder, "/orders/cancel"), order) + "}," +
      "{\"name\":\"payment\"" + after +
      ",\"action\":" + Call(Url(ShopService::kPayment, "/payments/charge"), payment) +
      ",\"compensate\":" + Call(Url(ShopService::kPayment, "/payments/refund"), payment) + "}," +
      "{\"name\":\"inventory\"" + after +
      ",\"action\":" + Call(Url(ShopService::kInventory, "/stock/reserve"), stock) +
      ",\"compensate\":" + Call(Url(ShopService::kInventory, "/stock/release"), stock) + "}";
  return Envelope(purchase.gid, "saga", options, branches);
}

std::string ShopEnv::TccBody(const Purchase& purchase, const SubmitOptions& options) const {
  const std::string payment = "{\"account\":" + Quote(purchase.customer) +
                              ",\"amount\":" + std::to_string(purchase.amount) + "}";
  const std::string stock =
      "{\"item\":" + Quote(purchase.item) + ",\"qty\":" + std::to_string(purchase.qty) + "}";
  const std::string branches =
      "{\"name\":\"payment\",\"try\":" +
      Call(Url(ShopService::kPayment, "/tcc/payments/try"), payment) +
      ",\"confirm\":" + Call(Url(ShopService::kPayment, "/tcc/payments/confirm"), payment) +
      ",\"cancel\":" + Call(Url(ShopService::kPayment, "/tcc/payments/cancel"), payment) + "}," +
      "{\"name\":\"inventory\",\"try\":" +
      Call(Url(ShopService::kInventory, "/tcc/stock/try"), stock) +
      ",\"confirm\":" + Call(Url(ShopService::kInventory, "/tcc/stock/confirm"), stock) +
      ",\"cancel\":" + Call(Url(ShopService::kInventory, "/tcc/stock/cancel"), stock) + "}";
  return Envelope(purchase.gid, "tcc", options, branches);
}

// ---- invariants ------------------------------------------------------------------------------

::testing::AssertionResult ShopEnv::CheckConservation(bool settled) const {
  const LedgerView payment = PaymentLedger();
  const LedgerView inventory = InventoryLedger();
  if (!payment.ok || !inventory.ok) {
    return ::testing::AssertionFailure() << payment.error << " " << inventory.error;
  }
  int64_t ordered_amount = 0;
  int64_t ordered_qty = 0;
  int64_t created = 0;
  for (const auto& [id, order] : AllOrders()) {
    if (order.status != "created") continue;
    ++created;
    ordered_amount += order.amount;
    ordered_qty += order.qty;
  }
  std::ostringstream problems;
  const auto describe = [](const char* what, const LedgerView& view, const char* available,
                           const char* held, const char* net) {
    return std::string(what) + ": " + available + " " + std::to_string(view.available) + ", " +
           held + " " + std::to_string(view.held) + ", " + net + " " + std::to_string(view.net) +
           " (ledger " + view.totals.ToString() + ")";
  };
  if (payment.available + payment.held + payment.net != seeded_money_) {
    problems << "money created or lost: seeded " << seeded_money_ << ", now "
             << describe("payment", payment, "balances", "frozen", "net charged") << "\n";
  }
  if (inventory.available + inventory.held + inventory.net != seeded_stock_) {
    problems << "stock created or lost: seeded " << seeded_stock_ << ", now "
             << describe("inventory", inventory, "stock", "reserved", "net taken") << "\n";
  }
  if (payment.net != payment.totals.Net() || inventory.net != inventory.totals.Net()) {
    problems << "the services' net_charged " << payment.net << " / net_taken " << inventory.net
             << " differ from their ledgers' kinds (" << payment.totals.Net() << " / "
             << inventory.totals.Net() << ")\n";
  }
  if (payment.totals.SagaNet() != ordered_amount) {
    problems << "the orders that stand (" << created << " created) amount to " << ordered_amount
             << ", but the sagas charged " << payment.totals.SagaNet() << " net ("
             << payment.totals.ToString() << ")\n";
  }
  if (inventory.totals.SagaNet() != ordered_qty) {
    problems << "the orders that stand (" << created << " created) are for " << ordered_qty
             << " pieces, but the sagas took " << inventory.totals.SagaNet() << " net ("
             << inventory.totals.ToString() << ")\n";
  }
  if (settled && (payment.held != 0 || inventory.held != 0)) {
    problems << "with nothing in flight, " << payment.held << " stays frozen and " << inventory.held
             << " reserved\n";
  }
  if (payment.count != static_cast<int64_t>(seeded_accounts_.size()) ||
      inventory.count != static_cast<int64_t>(seeded_items_.size())) {
    problems << payment.count << " accounts and " << inventory.count << " items exist, "
             << seeded_accounts_.size() << " and " << seeded_items_.size() << " were seeded\n";
  }
  if (problems.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << problems.str();
}

::testing::AssertionResult ShopEnv::CheckSagaPurchase(const Purchase& purchase,
                                                      bool succeeded) const {
  std::map<std::string, OrderRow> orders;
  const OrderRow order = Order(purchase.order_id);
  if (order.found) orders[purchase.order_id] = order;
  return CheckSagaPurchase(purchase, succeeded, orders,
                           {{purchase.gid, PaymentLedger(purchase.gid)}},
                           {{purchase.gid, InventoryLedger(purchase.gid)}});
}

::testing::AssertionResult ShopEnv::CheckSagaPurchase(
    const Purchase& purchase, bool succeeded, const std::map<std::string, OrderRow>& orders,
    const std::map<std::string, LedgerTotals>& payments,
    const std::map<std::string, LedgerTotals>& inventory) {
  const auto order_it = orders.find(purchase.order_id);
  const OrderRow order = order_it == orders.end() ? OrderRow{} : order_it->second;
  const auto payment_it = payments.find(purchase.gid);
  const LedgerTotals paid = payment_it == payments.end() ? LedgerTotals{} : payment_it->second;
  const auto inventory_it = inventory.find(purchase.gid);
  const LedgerTotals taken =
      inventory_it == inventory.end() ? LedgerTotals{} : inventory_it->second;

  std::ostringstream problems;
  if (order.found && order.gid != purchase.gid) {
    problems << "order " << purchase.order_id << " belongs to " << order.gid << "; ";
  }
  if (succeeded) {
    if (!order.found || order.status != "created") {
      problems << "the order is " << (order.found ? order.status : "missing") << ", not created; ";
    } else if (order.qty != purchase.qty || order.amount != purchase.amount ||
               order.customer != purchase.customer || order.item != purchase.item) {
      problems << "the order is for " << order.qty << " " << order.item << " paid " << order.amount
               << " by " << order.customer << "; ";
    }
    if (paid.Entries("charge") != 1 || paid.Amount("charge") != purchase.amount ||
        paid.Entries("refund") != 0) {
      problems << "payment should be charged " << purchase.amount << " once; ";
    }
    if (taken.Entries("reserve") != 1 || taken.Amount("reserve") != purchase.qty ||
        taken.Entries("release") != 0) {
      problems << "inventory should be taken " << purchase.qty << " once; ";
    }
  } else {
    if (order.found && order.status != "cancelled") {
      problems << "the order is " << order.status << ", not cancelled; ";
    }
    if (paid.SagaNet() != 0 || paid.Entries("charge") > 1 ||
        paid.Entries("refund") != paid.Entries("charge")) {
      problems << "the charge is not undone exactly once; ";
    }
    if (taken.SagaNet() != 0 || taken.Entries("reserve") > 1 ||
        taken.Entries("release") != taken.Entries("reserve")) {
      problems << "the reservation is not undone exactly once; ";
    }
  }
  for (const auto* ledger : {&paid, &taken}) {
    for (const auto& [kind, total] : ledger->kinds) {
      if (kind.starts_with("tcc_")) problems << "a TCC movement " << kind << " in a saga; ";
    }
  }
  if (problems.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "saga " << purchase.gid << " (" << (succeeded ? "succeeded" : "not succeeded")
         << ", order " << purchase.order_id << " for " << purchase.qty << " " << purchase.item
         << " paid " << purchase.amount << " by " << purchase.customer << "): " << problems.str()
         << "order "
         << (order.found ? order.status + " (gid " + order.gid + ")" : std::string("missing"))
         << ", payment ledger " << paid.ToString() << ", inventory ledger " << taken.ToString();
}

::testing::AssertionResult ShopEnv::CheckTccPurchase(const Purchase& purchase,
                                                     bool confirmed) const {
  const LedgerTotals paid = PaymentLedger(purchase.gid);
  const LedgerTotals taken = InventoryLedger(purchase.gid);
  std::ostringstream problems;
  if (confirmed) {
    if (paid.Entries("tcc_freeze") != 1 || paid.Amount("tcc_freeze") != purchase.amount ||
        paid.Entries("tcc_confirm") != 1 || paid.Amount("tcc_confirm") != purchase.amount ||
        paid.Entries("tcc_unfreeze") != 0) {
      problems << "payment should be frozen and confirmed " << purchase.amount << " once; ";
    }
    if (taken.Entries("tcc_reserve") != 1 || taken.Amount("tcc_reserve") != purchase.qty ||
        taken.Entries("tcc_confirm") != 1 || taken.Amount("tcc_confirm") != purchase.qty ||
        taken.Entries("tcc_cancel") != 0) {
      problems << "inventory should be reserved and confirmed " << purchase.qty << " once; ";
    }
  } else {
    if (paid.Entries("tcc_confirm") != 0 || paid.Entries("tcc_freeze") > 1 ||
        paid.Entries("tcc_unfreeze") != paid.Entries("tcc_freeze") ||
        paid.Amount("tcc_unfreeze") != paid.Amount("tcc_freeze")) {
      problems << "what payment froze is not unfrozen exactly once; ";
    }
    if (taken.Entries("tcc_confirm") != 0 || taken.Entries("tcc_reserve") > 1 ||
        taken.Entries("tcc_cancel") != taken.Entries("tcc_reserve") ||
        taken.Amount("tcc_cancel") != taken.Amount("tcc_reserve")) {
      problems << "what inventory reserved is not released exactly once; ";
    }
  }
  for (const auto* ledger : {&paid, &taken}) {
    for (const auto& [kind, total] : ledger->kinds) {
      if (!kind.starts_with("tcc_")) problems << "a saga movement " << kind << " in TCC; ";
    }
  }
  if (problems.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "TCC " << purchase.gid << " (" << (confirmed ? "confirmed" : "cancelled") << ", "
         << purchase.amount << " from " << purchase.customer << ", " << purchase.qty << " "
         << purchase.item << "): " << problems.str() << "payment ledger " << paid.ToString()
         << ", inventory ledger " << taken.ToString();
}

}  // namespace txc::testing
