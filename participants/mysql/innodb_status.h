// The part of `SHOW ENGINE INNODB STATUS` that the MariaDB hand-over guard of MysqlResource reads
// (see mysql_resource.h): which InnoDB transactions are still attached to a server session, and
// the transaction id counter.
//
// Why this text and not a table: information_schema.INNODB_TRX serves a cache that InnoDB
// refreshes only after it went unread for 0.1 s (CACHE_MIN_IDLE_TIME_NS in trx0i_s.cc), so anyone
// polling it faster pins an old copy; SHOW ENGINE INNODB STATUS prints the live transaction list
// (trx_sys.trx_list, under lock_sys.latch) at every call. Both need the PROCESS privilege.
//
// The list, as MariaDB 10.11 prints it (one block per transaction object of InnoDB):
//   ---TRANSACTION 10189, ACTIVE (PREPARED) 0 sec
//   2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1
//   MariaDB thread id 24, OS thread handle 139856082589376, query id 59 127.0.0.1 txc
//   ---TRANSACTION 10190, ACTIVE (PREPARED) 3 sec recovered trx
//   ---TRANSACTION (0x7f32ca761b80), not started
// The "thread id" line is printed exactly while the transaction is attached to a session
// (trx->mysql_thd set); a prepared branch whose session ended shows none ("recovered trx").
// MySQL prints "MySQL thread id" and numbers instead of "(0x...)"; both are read.
//
// Statement texts are printed inside the list too. A text crafted to imitate these lines could
// only add blocks (more waiting), except for imitations of the section headers; whoever can run
// such statements on the server can also XA COMMIT our branches directly, so that is no new risk.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace txc::participants::mysql {

// One transaction object attached to a server session.
struct AttachedTransaction {
  uint64_t session_id = 0;  // CONNECTION_ID() of the session ("thread id")
  // The InnoDB transaction id; nullopt when none is assigned yet (no write so far: printed as
  // "(0x...)" by MariaDB).
  std::optional<uint64_t> trx_id;
  bool started = false;   // not "not started": the session has an open (or prepared) transaction
  bool prepared = false;  // "ACTIVE (PREPARED)"

  bool operator==(const AttachedTransaction&) const = default;
};

struct InnodbTransactions {
  uint64_t trx_id_counter = 0;  // "Trx id counter": every id assigned so far is below it
  std::vector<AttachedTransaction> attached;
};

// Reads the TRANSACTIONS section of `status` (the Status column of SHOW ENGINE INNODB STATUS).
// nullopt when the section is missing or InnoDB cut the list short (it caps the whole output at
// 1 MiB and then drops part of the transaction list, marked "... truncated..."): nothing may be
// concluded from an incomplete list.
std::optional<InnodbTransactions> ParseInnodbTransactions(std::string_view status);

}  // namespace txc::participants::mysql
