// What the 2PC chaos tests share: the txcoord process they kill and restart, a small HTTP client
// that reports a dropped connection as a value (a kill mid-request is the normal case here), the
// transaction document's fields they check, and the two databases the transfers run against
// (PostgreSQL and MariaDB, with the accounts and per-transfer ledger tables, the prepared
// branches of a node).
//
// Tables, per test (`prefix` keeps tests apart on the shared servers):
//   <prefix>_accounts (id, balance CHECK (balance >= 0))   the money
//   <prefix>_transfers (gid PRIMARY KEY)                   one row per transfer applied, written
//                                                          by the transfer's own branch
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/db_env.h"
#include "tests/support/process.h"

namespace txc::chaos {

// ---- HTTP ------------------------------------------------------------------------------------

struct HttpResult {
  bool answered = false;  // false: refused, reset, closed or timed out before a whole reply
  int status = 0;
  std::string body;
  std::string error;  // why there was no reply
};

// One request on a fresh connection to 127.0.0.1:port (no keep-alive). Never throws.
HttpResult HttpCall(uint16_t port, const std::string& method, const std::string& path,
                    const std::string& body, std::chrono::milliseconds timeout);

// The fields of a transaction document the tests look at.
struct DocumentView {
  bool parsed = false;
  std::string parse_error;
  std::string gid;
  std::string state;
  std::optional<std::string> outcome;                         // null while in flight
  std::vector<std::pair<std::string, std::string>> branches;  // (name, state)
};
DocumentView ParseDocument(const std::string& body);

// The documents of `GET /v1/transactions?...` for every page (`query` without cursor), or the
// error that stopped the listing.
struct Listing {
  std::vector<DocumentView> documents;
  std::string error;  // empty when every page was read
};
Listing ListTransactions(uint16_t port, const std::string& query);

// `text` as a JSON string literal (with the quotes).
std::string JsonString(const std::string& text);

// ---- transfers -------------------------------------------------------------------------------

enum class Direction { kPgToMy, kMyToPg };       // where the money leaves from, where it arrives
const char* DirectionName(Direction direction);  // "pg->my" | "my->pg"

// Money moved between one PostgreSQL and one MariaDB account, as a 2PC transaction of two
// branches: "pg" (branch 0, resource pg) and "my" (branch 1, resource my). Each branch updates
// its account and inserts the gid into its side's <prefix>_transfers, so the data tell, per gid
// and per side, whether the transfer was applied. A debit beyond the balance is refused by the
// CHECK, which aborts the transfer.
struct Transfer {
  std::string gid;
  Direction direction = Direction::kPgToMy;
  std::string pg_account;
  std::string my_account;
  int64_t amount = 0;

  // What it does to each account's balance when applied.
  int64_t PgDelta() const { return direction == Direction::kPgToMy ? -amount : amount; }
  int64_t MyDelta() const { return -PgDelta(); }
  std::string ToString() const;
};

// The submission body: 2pc, the given wait and timeout, a short retry backoff. `my_first`, when
// given, is a statement run first in the MariaDB branch (to make it slow, say).
std::string TransferBody(const std::string& prefix, const Transfer& transfer, bool wait,
                         int64_t timeout_ms, const std::string& my_first = "");

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, size_t lines);

// ---- txcoord ---------------------------------------------------------------------------------

// The configuration file of one coordinator: its node, port and log directory, and the two
// resources "pg" (PostgreSQL) and "my" (MariaDB).
struct CoordinatorConfig {
  std::string node_id;
  uint16_t port = 0;
  std::string log_dir;
  std::string pg_dsn;
  std::string mysql_dsn;
};
// Writes it as YAML to `path`.
void WriteConfigFile(const std::string& path, const CoordinatorConfig& config);

// One txcoord process started from `config_file`, with none of the runner's TXC_* variables and
// `extra_env` (TXC_CRASH_AT, ...) added; its output in <scratch>/<name>.stdout/.stderr.
class Coordinator {
 public:
  Coordinator(const std::string& program, const std::string& config_file,
              const std::string& scratch_dir, const std::string& name, uint16_t port,
              const std::map<std::string, std::string>& extra_env);

  testing::ChildProcess& process() { return *process_; }
  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }
  std::string Stderr() const;
  // The last lines of stderr, framed with the process's name, for failure messages.
  std::string StderrTail(size_t lines = 40) const;

  // Polls GET /readyz until 200. Fails when the deadline passes or the process ends first.
  ::testing::AssertionResult WaitReady(std::chrono::milliseconds timeout);

  // SIGKILL and reap; the exit status (137) or nullopt if it would not die.
  std::optional<int> Kill();
  // SIGTERM, then the exit status.
  std::optional<int> Terminate(std::chrono::milliseconds timeout);

 private:
  std::string name_;
  uint16_t port_;
  std::unique_ptr<testing::ChildProcess> process_;
};

// ---- databases -------------------------------------------------------------------------------

// A prepared branch found on one of the databases.
struct PreparedBranch {
  std::string where;  // "postgres" | "mariadb"
  std::string xid;    // PostgreSQL gid, or gtrid/bqual for MariaDB

  std::string ToString() const { return where + " " + xid; }
};

class Databases {
 public:
  // Connects to both; throws when a server is unreachable (the test then fails with the reason).
  Databases(const std::string& pg_dsn, const std::string& mysql_dsn);
  ~Databases();

  pqxx::connection& pg() { return *pg_; }
  sql::Connection& my() { return *my_; }

  // Drops and creates <prefix>_accounts and <prefix>_transfers on both databases.
  void CreateTables(const std::string& prefix);
  // Empties both tables on both sides and inserts the accounts.
  void ResetAccounts(const std::string& prefix, const std::map<std::string, int64_t>& pg_accounts,
                     const std::map<std::string, int64_t>& my_accounts);
  std::map<std::string, int64_t> PgBalances(const std::string& prefix);
  std::map<std::string, int64_t> MyBalances(const std::string& prefix);
  std::set<std::string> PgTransfers(const std::string& prefix);
  std::set<std::string> MyTransfers(const std::string& prefix);

  // The branches prepared under `node_id` (PostgreSQL gid txc:<node_id>:..., MariaDB bqual
  // <node_id>:...).
  std::vector<PreparedBranch> Prepared(const std::string& node_id);
  // Rolls back every branch prepared under `node_id` (left over by an earlier, failed run).
  void RollbackPrepared(const std::string& node_id);

 private:
  std::unique_ptr<pqxx::connection> pg_;
  std::unique_ptr<sql::Connection> my_;
};

// Formats a list of prepared branches for a message.
std::string Describe(const std::vector<PreparedBranch>& prepared);

}  // namespace txc::chaos
