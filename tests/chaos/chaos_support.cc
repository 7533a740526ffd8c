#include "tests/chaos/chaos_support.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
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

#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace txc::chaos {
namespace {

constexpr long kMysqlFormatId = 7889763;

DocumentView ViewOf(const Poco::JSON::Object::Ptr& object) {
  DocumentView view;
  view.gid = object->optValue<std::string>("gid", "");
  view.state = object->optValue<std::string>("state", "");
  if (object->has("outcome") && !object->isNull("outcome")) {
    view.outcome = object->getValue<std::string>("outcome");
  }
  if (auto branches = object->getArray("branches")) {
    for (unsigned i = 0; i < branches->size(); ++i) {
      auto branch = branches->getObject(i);
      if (!branch) continue;
      view.branches.emplace_back(branch->optValue<std::string>("name", ""),
                                 branch->optValue<std::string>("state", ""));
    }
  }
  view.parsed = !view.gid.empty();
  if (!view.parsed) view.parse_error = "no gid in the document";
  return view;
}

std::unique_ptr<sql::Statement> MyStatement(sql::Connection& connection) {
  return std::unique_ptr<sql::Statement>(connection.createStatement());
}

}  // namespace

// ---- HTTP ------------------------------------------------------------------------------------

HttpResult HttpCall(uint16_t port, const std::string& method, const std::string& path,
                    const std::string& body, std::chrono::milliseconds timeout) {
  HttpResult result;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    const Poco::Timespan span(static_cast<long>(timeout.count() / 1000),
                              static_cast<long>((timeout.count() % 1000) * 1000));
    session.setTimeout(span, span, span);
    session.setKeepAlive(false);
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(false);
    if (method != "GET") {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session.sendRequest(request);
    if (method != "GET") out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Poco::StreamCopier::copyToString(in, result.body);
    const auto length = response.getContentLength();
    if (length != Poco::Net::HTTPMessage::UNKNOWN_CONTENT_LENGTH &&
        static_cast<std::streamsize>(result.body.size()) != length) {
      result.error = "the reply was cut after " + std::to_string(result.body.size()) + " of " +
                     std::to_string(length) + " bytes";
      return result;
    }
    result.status = response.getStatus();
    result.answered = true;
  } catch (const Poco::Exception& e) {
    result.error = e.displayText();
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

DocumentView ParseDocument(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (!object) {
      DocumentView view;
      view.parse_error = "not a JSON object";
      return view;
    }
    return ViewOf(object);
  } catch (const Poco::Exception& e) {
    DocumentView view;
    view.parse_error = e.displayText();
    return view;
  } catch (const std::exception& e) {
    DocumentView view;
    view.parse_error = e.what();
    return view;
  }
}

Listing ListTransactions(uint16_t port, const std::string& query) {
  Listing listing;
  std::string cursor;
  for (int page = 0; page < 10'000; ++page) {
    std::string path = "/v1/transactions?limit=1000";
    if (!query.empty()) path += "&" + query;
    if (!cursor.empty()) path += "&cursor=" + cursor;
    const HttpResult reply = HttpCall(port, "GET", path, "", std::chrono::seconds(10));
    if (!reply.answered || reply.status != 200) {
      listing.error =
          "GET " + path + ": " +
          (reply.answered ? std::to_string(reply.status) + " " + reply.body : reply.error);
      return listing;
    }
    try {
      Poco::JSON::Parser parser;
      auto object = parser.parse(reply.body).extract<Poco::JSON::Object::Ptr>();
      auto documents = object->getArray("transactions");
      for (unsigned i = 0; documents && i < documents->size(); ++i) {
        listing.documents.push_back(ViewOf(documents->getObject(i)));
      }
      if (object->isNull("next_cursor")) return listing;
      cursor = object->getValue<std::string>("next_cursor");
    } catch (const Poco::Exception& e) {
      listing.error = "GET " + path + ": unreadable page: " + e.displayText();
      return listing;
    }
  }
  listing.error = "more than 10000 pages";
  return listing;
}

std::string JsonString(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          quoted += escaped;
        } else {
          quoted.push_back(c);
        }
    }
  }
  quoted += "\"";
  return quoted;
}

const char* DirectionName(Direction direction) {
  return direction == Direction::kPgToMy ? "pg->my" : "my->pg";
}

std::string Transfer::ToString() const {
  return gid + " (" + std::to_string(amount) + " " + DirectionName(direction) + ", pg account " +
         pg_account + ", mariadb account " + my_account + ")";
}

std::string TransferBody(const std::string& prefix, const Transfer& transfer, bool wait,
                         int64_t timeout_ms, const std::string& my_first) {
  const auto statement = [](const std::string& text, const std::string& params) {
    return "{\"text\":" + JsonString(text) + ",\"params\":[" + params + "]}";
  };
  const std::string gid = JsonString(transfer.gid);
  const std::string pg_sql =
      statement("UPDATE " + prefix + "_accounts SET balance = balance + $1 WHERE id = $2",
                std::to_string(transfer.PgDelta()) + "," + JsonString(transfer.pg_account)) +
      "," + statement("INSERT INTO " + prefix + "_transfers (gid) VALUES ($1)", gid);
  const std::string my_sql =
      (my_first.empty() ? std::string() : statement(my_first, "") + ",") +
      statement("UPDATE " + prefix + "_accounts SET balance = balance + ? WHERE id = ?",
                std::to_string(transfer.MyDelta()) + "," + JsonString(transfer.my_account)) +
      "," + statement("INSERT INTO " + prefix + "_transfers (gid) VALUES (?)", gid);
  return "{\"gid\":" + gid + ",\"protocol\":\"2pc\",\"wait\":" + (wait ? "true" : "false") +
         ",\"timeout_ms\":" + std::to_string(timeout_ms) +
         ",\"retry\":{\"initial_ms\":50,\"max_ms\":500},\"branches\":[" +
         "{\"name\":\"pg\",\"resource\":\"pg\",\"sql\":[" + pg_sql + "]}," +
         "{\"name\":\"my\",\"resource\":\"my\",\"sql\":[" + my_sql + "]}]}";
}

std::string Tail(const std::string& text, size_t lines) {
  size_t position = text.size();
  if (position > 0 && text[position - 1] == '\n') --position;
  for (size_t seen = 0; position > 0; --position) {
    if (text[position - 1] == '\n' && ++seen == lines) break;
  }
  return text.substr(position);
}

// ---- txcoord ---------------------------------------------------------------------------------

void WriteConfigFile(const std::string& path, const CoordinatorConfig& config) {
  std::ofstream out(path);
  out << "node_id: " << config.node_id << "\n"
      << "listen: 127.0.0.1:" << config.port << "\n"
      << "log: {kind: file, dir: " << JsonString(config.log_dir) << "}\n"
      << "shutdown_grace_ms: 2000\n"
      << "resources:\n"
      << "  - {name: pg, kind: postgres, dsn: " << JsonString(config.pg_dsn) << "}\n"
      << "  - {name: my, kind: mysql, dsn: " << JsonString(config.mysql_dsn) << "}\n";
  if (!out) throw std::runtime_error("cannot write " + path);
}

Coordinator::Coordinator(const std::string& program, const std::string& config_file,
                         const std::string& scratch_dir, const std::string& name, uint16_t port,
                         const std::map<std::string, std::string>& extra_env)
    : name_(name), port_(port) {
  testing::ChildProcess::Options options;
  options.program = program;
  options.args = {"--config", config_file};
  options.environment = testing::CurrentEnvironment();
  // The configuration file decides: none of the runner's TXC_* variables (the test DSNs, a
  // crash point armed by hand) reach the coordinator.
  for (auto it = options.environment.begin(); it != options.environment.end();) {
    it = it->first.starts_with("TXC_") ? options.environment.erase(it) : std::next(it);
  }
  for (const auto& [key, value] : extra_env) options.environment[key] = value;
  options.stdout_path = scratch_dir + "/" + name + ".stdout";
  options.stderr_path = scratch_dir + "/" + name + ".stderr";
  process_ = std::make_unique<testing::ChildProcess>(options);
}

std::string Coordinator::Stderr() const {
  return testing::ReadFileOrEmpty(process_->stderr_path());
}

std::string Coordinator::StderrTail(size_t lines) const {
  return "---- last lines of " + name_ + " stderr ----\n" + Tail(Stderr(), lines) +
         "\n---- end of " + name_ + " stderr ----\n";
}

::testing::AssertionResult Coordinator::WaitReady(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->Running()) {
      return ::testing::AssertionFailure()
             << name_ << " exited (status "
             << process_->WaitForExit(std::chrono::seconds(0)).value_or(-1)
             << ") before /readyz answered 200\n"
             << StderrTail();
    }
    const HttpResult reply = HttpCall(port_, "GET", "/readyz", "", std::chrono::seconds(2));
    if (reply.answered && reply.status == 200) return ::testing::AssertionSuccess();
    last = reply.answered ? std::to_string(reply.status) + " " + reply.body : reply.error;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ::testing::AssertionFailure() << name_ << ": /readyz did not answer 200 within "
                                       << timeout.count() << " ms (last: " << last << ")\n"
                                       << StderrTail();
}

std::optional<int> Coordinator::Kill() {
  process_->Signal(SIGKILL);
  return process_->WaitForExit(std::chrono::seconds(10));
}

std::optional<int> Coordinator::Terminate(std::chrono::milliseconds timeout) {
  process_->Signal(SIGTERM);
  return process_->WaitForExit(timeout);
}

// ---- databases -------------------------------------------------------------------------------

Databases::Databases(const std::string& pg_dsn, const std::string& mysql_dsn) {
  pg_ = testing::ConnectPostgres(pg_dsn);
  std::string error;
  const std::optional<testing::MysqlDsn> parsed = testing::ParseMysqlDsn(mysql_dsn, &error);
  if (!parsed) throw std::runtime_error("TXC_TEST_MYSQL_DSN: " + error);
  my_ = testing::ConnectMysql(*parsed);
  // A lock held by a branch left prepared must fail the test's own statements quickly, not
  // after the servers' defaults (50 s on MariaDB, forever on PostgreSQL).
  testing::ExecPostgres(*pg_, "SET lock_timeout = '5s'");
  testing::ExecMysql(*my_, "SET SESSION innodb_lock_wait_timeout = 5");
}

Databases::~Databases() = default;

void Databases::CreateTables(const std::string& prefix) {
  testing::ExecPostgres(*pg_,
                        "DROP TABLE IF EXISTS " + prefix + "_accounts, " + prefix + "_transfers");
  testing::ExecPostgres(*pg_, "CREATE TABLE " + prefix +
                                  "_accounts (id text PRIMARY KEY, balance bigint NOT NULL "
                                  "CHECK (balance >= 0))");
  testing::ExecPostgres(*pg_, "CREATE TABLE " + prefix + "_transfers (gid text PRIMARY KEY)");
  testing::ExecMysql(*my_,
                     "DROP TABLE IF EXISTS " + prefix + "_accounts, " + prefix + "_transfers");
  testing::ExecMysql(*my_, "CREATE TABLE " + prefix +
                               "_accounts (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL, "
                               "CHECK (balance >= 0)) ENGINE=InnoDB");
  testing::ExecMysql(
      *my_, "CREATE TABLE " + prefix + "_transfers (gid VARCHAR(64) PRIMARY KEY) ENGINE=InnoDB");
}

void Databases::ResetAccounts(const std::string& prefix,
                              const std::map<std::string, int64_t>& pg_accounts,
                              const std::map<std::string, int64_t>& my_accounts) {
  testing::ExecPostgres(*pg_, "DELETE FROM " + prefix + "_accounts");
  testing::ExecPostgres(*pg_, "DELETE FROM " + prefix + "_transfers");
  for (const auto& [id, balance] : pg_accounts) {
    testing::ExecPostgres(*pg_, "INSERT INTO " + prefix + "_accounts VALUES (" + pg_->quote(id) +
                                    ", " + std::to_string(balance) + ")");
  }
  testing::ExecMysql(*my_, "DELETE FROM " + prefix + "_accounts");
  testing::ExecMysql(*my_, "DELETE FROM " + prefix + "_transfers");
  for (const auto& [id, balance] : my_accounts) {
    // Account ids are [a-z0-9]: no quoting needed beyond the quotes.
    testing::ExecMysql(*my_, "INSERT INTO " + prefix + "_accounts VALUES ('" + id + "', " +
                                 std::to_string(balance) + ")");
  }
}

std::map<std::string, int64_t> Databases::PgBalances(const std::string& prefix) {
  std::map<std::string, int64_t> balances;
  for (const auto& row :
       testing::ExecPostgres(*pg_, "SELECT id, balance FROM " + prefix + "_accounts")) {
    balances[row[0].as<std::string>()] = row[1].as<int64_t>();
  }
  return balances;
}

std::map<std::string, int64_t> Databases::MyBalances(const std::string& prefix) {
  std::map<std::string, int64_t> balances;
  std::unique_ptr<sql::ResultSet> rows(
      MyStatement(*my_)->executeQuery("SELECT id, balance FROM " + prefix + "_accounts"));
  while (rows->next()) balances[rows->getString(1).asStdString()] = rows->getInt64(2);
  return balances;
}

std::set<std::string> Databases::PgTransfers(const std::string& prefix) {
  std::set<std::string> gids;
  for (const auto& row : testing::ExecPostgres(*pg_, "SELECT gid FROM " + prefix + "_transfers")) {
    gids.insert(row[0].as<std::string>());
  }
  return gids;
}

std::set<std::string> Databases::MyTransfers(const std::string& prefix) {
  std::set<std::string> gids;
  std::unique_ptr<sql::ResultSet> rows(
      MyStatement(*my_)->executeQuery("SELECT gid FROM " + prefix + "_transfers"));
  while (rows->next()) gids.insert(rows->getString(1).asStdString());
  return gids;
}

std::vector<PreparedBranch> Databases::Prepared(const std::string& node_id) {
  std::vector<PreparedBranch> prepared;
  for (const std::string& gid : testing::PreparedPostgresGids(*pg_, "txc:" + node_id + ":")) {
    prepared.push_back({"postgres", gid});
  }
  for (const testing::XaXid& xid : testing::RecoverMysqlXids(*my_, "txc:")) {
    if (xid.format_id == kMysqlFormatId && xid.bqual.starts_with(node_id + ":")) {
      prepared.push_back({"mariadb", xid.gtrid + "/" + xid.bqual});
    }
  }
  return prepared;
}

void Databases::RollbackPrepared(const std::string& node_id) {
  for (const std::string& gid : testing::PreparedPostgresGids(*pg_, "txc:" + node_id + ":")) {
    testing::PostgresSqlstateOf(*pg_, "ROLLBACK PREPARED " + pg_->quote(gid));
  }
  for (const testing::XaXid& xid : testing::RecoverMysqlXids(*my_, "txc:")) {
    if (xid.format_id == kMysqlFormatId && xid.bqual.starts_with(node_id + ":")) {
      testing::MysqlErrorOf(*my_, "XA ROLLBACK " + testing::XaXidSql(xid));
    }
  }
}

std::string Describe(const std::vector<PreparedBranch>& prepared) {
  if (prepared.empty()) return "(none)";
  std::string text;
  for (const auto& branch : prepared) text += (text.empty() ? "" : ", ") + branch.ToString();
  return text;
}

}  // namespace txc::chaos
