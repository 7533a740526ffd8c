// MysqlResource: a MySQL / MariaDB database taking part in 2PC through XA (Connector/C++ 1.1).
// See database/database_resource.h for the contract of each call.
//
// How (shared/NOTES.md):
// - Prepare: XA START 'gtrid','bqual',7889763 (hex literals), the statements (with ? parameters
//   through server-side prepared statements), XA END, XA PREPARE. A failing statement: XA END +
//   XA ROLLBACK, Refused with the server's message. (A failed statement inside an XA branch
//   undoes only itself; XA PREPARE would still prepare the earlier writes, so the adapter must
//   roll back.) XA START answering 1440 (xid exists) for an xid that XA RECOVER lists means an
//   earlier attempt prepared it already: Ok.
// - The MariaDB trap: while the session that prepared a branch is connected, XA COMMIT or XA
//   ROLLBACK of it from any other session fails with 1397 XAER_NOTA, the same answer as for an
//   xid that is already resolved. Therefore:
//     * after XA PREPARE the preparing connection is parked, keyed by xid, and phase 2 runs on it
//       (the fast path); it goes back to the pool afterwards;
//     * without a parked connection (another coordinator process prepared it, the resource was
//       re-created, the parked one was evicted or broke), phase 2 runs on any connection;
//     * a 1397 answer is "done" only when XA RECOVER does not list the xid. If it still lists it,
//       another session holds the branch: Transient, with a reason naming the trap; a parked
//       connection for it, if one turned up meanwhile, is used instead.
// - Parked connections count against pool_size_max and are bounded by parked_max (which must be
//   smaller, so that other calls always find room). Parking one more at the bound evicts the
//   connection parked longest ago: it is closed, which detaches its prepared branch on the
//   server, so phase 2 can later finish it from any session (after a short hand-over during
//   which it answers Transient). A parked connection is never handed to another call while it
//   may still hold a prepared branch.
// - The resource's own thread registration: Connector/C++ 1.1's driver singleton is created
//   under std::call_once (its first get_mysql_driver_instance() is not thread-safe), and each
//   thread that calls into the resource registers with the driver (threadInit) once, and
//   unregisters (threadEnd) when it exits.
// - Timeouts: waiting for a connection and connecting are bounded by the call's deadline; each
//   statement by the server (MariaDB max_statement_time, MySQL max_execution_time and
//   innodb_lock_wait_timeout) set to the call's timeout; the deadline is checked again between
//   statements; and read_timeout bounds every socket read as a last resort.
// - XA RECOVER lists the prepared branches of the whole server, not of one database: two
//   resources on the same server both list each other's branches. Either can finish them (XA is
//   server-wide).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"
#include "participants/database/connection_pool.h"
#include "participants/database/database_resource.h"
#include "participants/mysql/mysql_dsn.h"

namespace txc::participants::mysql {

struct MysqlResourceOptions {
  std::string name;     // the resource's name in the configuration; starts every message
  std::string dsn;      // mysql://user:password@host:port/database; the password is never logged
  std::string node_id;  // this coordinator's node_id, part of every xid
  std::size_t pool_size_max = 8;  // connections open at once (parked ones included), at most
  std::size_t parked_max = 4;     // prepared branches kept on their own connection, < pool size
  // A socket read or write that takes longer fails (the session is then discarded): a last resort
  // under the server-side statement bound. Must exceed the longest call timeout.
  std::chrono::seconds read_timeout{60};
  std::size_t in_doubt_max = 10'000;  // ListInDoubt answers at most this many
};

class MysqlResource final : public database::DatabaseResource {
 public:
  // Validates the options (DSN, node_id, pool bounds); does not connect (CheckReady does).
  static Result<std::unique_ptr<MysqlResource>> Create(MysqlResourceOptions options);
  ~MysqlResource() override;

  const std::string& name() const override { return options_.name; }
  Status CheckReady(std::chrono::milliseconds timeout) override;
  CallResult Prepare(std::string_view gid, uint32_t branch_index,
                     std::span<const database::Statement> statements,
                     std::chrono::milliseconds timeout) override;
  CallResult CommitPrepared(std::string_view gid, uint32_t branch_index,
                            std::chrono::milliseconds timeout) override;
  CallResult RollbackPrepared(std::string_view gid, uint32_t branch_index,
                              std::chrono::milliseconds timeout) override;
  CallResult CommitOnePhase(std::string_view gid, uint32_t branch_index,
                            std::span<const database::Statement> statements,
                            std::chrono::milliseconds timeout) override;
  Result<std::vector<database::InDoubtXid>> ListInDoubt(std::chrono::milliseconds timeout) override;

  // For tests and metrics: connections open (idle, in use and parked), and parked ones.
  std::size_t OpenConnections() const;
  std::size_t ParkedConnections() const;

 private:
  struct Connection;
  struct CallState;
  using Pool = database::ConnectionPool<Connection>;
  using Clock = std::chrono::steady_clock;
  template <typename T>
  struct Attempt;
  struct Parked {
    Pool::Lease lease;
    uint64_t sequence = 0;  // parking order: the lowest is evicted first
  };

  MysqlResource(MysqlResourceOptions options, MysqlDsn dsn);
  Result<std::unique_ptr<Connection>> Connect(Clock::time_point deadline) const;
  template <typename T, typename Body>
  Attempt<T> RunOn(Pool::Lease& lease, Body& body);
  template <typename T, typename Body>
  Attempt<T> WithSession(Clock::time_point deadline, Body&& body);
  CallResult FinishCall(const Attempt<CallResult>& attempt) const;
  CallResult ResolvePrepared(std::string_view gid, uint32_t branch_index, bool commit,
                             std::chrono::milliseconds timeout);
  CallResult RunLocalTransaction(std::string_view gid, uint32_t branch_index,
                                 std::span<const database::Statement> statements,
                                 std::chrono::milliseconds timeout, bool prepare);
  void Park(const std::string& key, Pool::Lease lease);
  std::optional<Pool::Lease> TakeParked(const std::string& key);
  std::string Where(std::string_view what) const;

  const MysqlResourceOptions options_;
  const MysqlDsn dsn_;
  std::unique_ptr<Pool> pool_;  // before parked_: parked leases go back to it when destroyed

  mutable std::mutex parked_mutex_;
  std::map<std::string, Parked> parked_;  // by MysqlXidSql(xid); guarded by parked_mutex_
  uint64_t parked_sequence_ = 0;          // guarded by parked_mutex_
};

}  // namespace txc::participants::mysql
