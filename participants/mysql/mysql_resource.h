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
//       re-created, the parked one was evicted or broke), phase 2 runs on any connection, once
//       the hand-over guard below allows it;
//     * a 1397 answer is "done" only when XA RECOVER does not list the xid. If it still lists it,
//       another session holds the branch: Transient, with a reason naming the trap; a parked
//       connection for it, if one turned up meanwhile, is used instead.
// - Parked connections count against pool_size_max and are bounded by parked_max (which must be
//   smaller, so that other calls always find room). Parking one more at the bound evicts the
//   connection parked longest ago: it is closed, which detaches its prepared branch on the
//   server, so phase 2 can later finish it from any session (after the hand-over below). A
//   parked connection is never handed to another call while it may still hold a prepared branch.
// - The MariaDB hand-over race (10.11; measured, see "Evidence" below). When the session that
//   prepared a branch ends (closed by us, by the kernel when a process dies, or KILLed), the
//   server first marks the xid "recovered" (trans_xa_detach, in THD::cleanup) and only later
//   detaches the InnoDB transaction from the session (innobase_close_connection, in
//   THD::free_connection, after the session has even left information_schema.PROCESSLIST). An XA
//   COMMIT or XA ROLLBACK from another session in between finds the xid, asks InnoDB (which finds
//   no detached transaction of that xid) and answers success anyway (ha_commit_or_rollback_by_xid
//   ignores the engine's answer): the branch stays prepared with its locks, XA RECOVER stops
//   listing it, and it comes back as prepared after a server restart. Taking that for "done"
//   loses the commit. So on MariaDB, phase 2 on any session but the preparing one first runs a
//   guard that reads the live InnoDB transaction list (SHOW ENGINE INNODB STATUS, innodb_status.h;
//   needs the PROCESS privilege, which CheckReady checks) and waits, within the call's timeout
//   (then Transient, naming the sessions), until:
//     * the session that prepared this xid, if this process gave it up while it held the branch
//       (evicted at parked_max, a parked or preparing connection that broke or was discarded, a
//       resource object destroyed; remembered process-wide, per server), holds no InnoDB
//       transaction any more -- the branch is then detached for good;
//     * once per resource object, until a first clear reading: no session outside this process
//       holds an InnoDB transaction while it is being ended (COMMAND 'Killed', or already gone
//       from PROCESSLIST) or while it still carries this node's marker. The marker is a user-level
//       lock txc:<node_id>:<CONNECTION_ID()> that every session of this adapter takes when it
//       connects (MariaDB releases it while ending the session, after setting 'Killed'). This
//       covers the sessions of an earlier coordinator process (or resource object) of this node,
//       which this one knows nothing about and whose xids it may resolve (recovery, the in-doubt
//       scan), without waiting for other nodes' busy sessions. Such sessions can start nothing
//       new, so one clear reading settles it for the resource's lifetime.
//   The fast path (phase 2 on the parked preparing session) needs no guard. ListInDoubt needs none
//   either: it only reads, and what it lists is resolved through the guarded phase 2.
//   Evidence (MariaDB 10.11.19, 2 cores; a preparing session's end slowed down by user variables,
//   which MariaDB frees between marking the xid recovered and detaching, makes the window
//   milliseconds wide): resolving from another session right after the close, retrying on 1397,
//   answered success without effect for 42 of 50 branches (100,000 variables), 13 of 100
//   (20,000), and 11 of 4,000 without slowing. Waiting until the session left PROCESSLIST lost 0
//   of 6,200, but per the source the window goes on after that, if only briefly. Waiting for no
//   'Killed' session, or for a quiet period with a stable XA RECOVER, each lost 4 of 160 when a
//   new process resolved right after the preparing processes exited (the session was still idle
//   when checked, then ended while the retries went on). The adapter before the guard lost a
//   branch within the first 40 of 300 rounds of every path in mysql_handover_test.cc; with it, 0
//   of 1,200 rounds per path (eviction, KILLed parked session, new resource object, new process)
//   and 0 of 2,000 in a separate-process restart harness that made the old adapter lose 16 of 400.
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

#include <atomic>
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
  // For tests and diagnostics: CONNECTION_ID() of the session parked with this branch, if any.
  std::optional<uint64_t> ParkedSessionId(std::string_view gid, uint32_t branch_index) const;

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
  Result<std::unique_ptr<Connection>> Connect(Clock::time_point deadline);
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
  // The hand-over guard (header comment). The reason it is not yet safe, or nullopt.
  std::optional<std::string> AwaitHandOver(Connection& connection, const std::string* xid_sql,
                                           Clock::time_point deadline, CallState& state);
  std::optional<std::string> CheckHandOver(Connection& connection, const std::string* xid_sql,
                                           CallState& state);
  std::vector<uint64_t> EarlierSessionsBeingEnded(Connection& connection,
                                                  const std::vector<uint64_t>& busy,
                                                  CallState& state);
  std::string Where(std::string_view what) const;

  const MysqlResourceOptions options_;
  const MysqlDsn dsn_;
  std::unique_ptr<Pool> pool_;  // before parked_: parked leases go back to it when destroyed

  mutable std::mutex parked_mutex_;
  std::map<std::string, Parked> parked_;  // by MysqlXidSql(xid); guarded by parked_mutex_
  uint64_t parked_sequence_ = 0;          // guarded by parked_mutex_

  // The hand-over guard: true once a reading showed no session of an earlier process (or
  // resource object) of this node still being ended with a transaction.
  std::atomic<bool> earlier_sessions_settled_{false};
};

}  // namespace txc::participants::mysql
