// Transaction identifiers of database branches (API.md "Database branches").
//
//   PostgreSQL: one string  txc:<node_id>:<gid>:<b>                     (< 200 bytes)
//   MySQL XA:   gtrid       txc:<gid>                                   (<= 64 bytes)
//               bqual       <node_id>:<b>                               (<= 64 bytes)
//               formatID    7889763
//
// The node_id is inside every xid so that a coordinator's in-doubt scan (pg_prepared_xacts,
// XA RECOVER) recognises the prepared branches that are its own and leaves every other one alone:
// the parsers below return nothing for an xid of another node, another program or a malformed one.
// Neither node ids nor gids may contain ':', so the separators are unambiguous.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"

namespace txc::participants::database {

inline constexpr std::string_view kXidPrefix = "txc";
inline constexpr int64_t kMysqlFormatId = 7889763;
inline constexpr std::size_t kGidLengthMax = 56;     // API.md: 1-56 of [A-Za-z0-9._-]
inline constexpr std::size_t kNodeIdLengthMax = 32;  // API.md: 1-32 of [A-Za-z0-9_-]
// PostgreSQL: "The identifier must be ... less than 200 bytes long" (PREPARE TRANSACTION).
inline constexpr std::size_t kPostgresXidLengthMax = 199;
// MySQL: "gtrid and bqual must be string literals, each up to 64 bytes" (XA statements).
inline constexpr std::size_t kMysqlXidPartLengthMax = 64;

// Ok, or InvalidArgument saying what is wrong with the value (API.md charsets and lengths).
[[nodiscard]] Status ValidateGid(std::string_view gid);
[[nodiscard]] Status ValidateNodeId(std::string_view node_id);

// What an xid of ours identifies.
struct BranchId {
  std::string gid;
  uint32_t branch_index = 0;

  bool operator==(const BranchId&) const = default;
};

// ---- PostgreSQL ----

// "txc:<node_id>:<gid>:<b>"; InvalidArgument for an invalid node id or gid.
Result<std::string> PostgresXid(std::string_view node_id, std::string_view gid,
                                uint32_t branch_index);

// The xid as an SQL string literal for PREPARE TRANSACTION / COMMIT PREPARED, which do not take
// parameters. Our xids contain no quote, but any text is quoted safely ('' doubling; with
// standard_conforming_strings on, which is the default since PostgreSQL 9.1, a backslash is an
// ordinary character).
std::string PostgresStringLiteral(std::string_view text);

// The branch an xid names if it is one of ours (prefix txc, this node_id, a valid gid, a canonical
// decimal branch index); nullopt for anything else.
std::optional<BranchId> ParsePostgresXid(std::string_view xid, std::string_view node_id);

// ---- MySQL / MariaDB XA ----

struct MysqlXid {
  std::string gtrid;
  std::string bqual;
  int64_t format_id = kMysqlFormatId;

  bool operator==(const MysqlXid&) const = default;
};

// gtrid "txc:<gid>", bqual "<node_id>:<b>"; InvalidArgument for an invalid node id or gid.
Result<MysqlXid> MakeMysqlXid(std::string_view node_id, std::string_view gid,
                              uint32_t branch_index);

// X'<gtrid hex>',X'<bqual hex>',<formatID>: the xid as it follows XA START / END / PREPARE /
// COMMIT / ROLLBACK. Hex literals need no escaping and survive any character set.
std::string MysqlXidSql(const MysqlXid& xid);

// The branch a MySQL xid names if it is one of ours (our formatID, prefix txc, this node_id,
// valid gid, canonical branch index); nullopt for anything else.
std::optional<BranchId> ParseMysqlXid(const MysqlXid& xid, std::string_view node_id);

// Splits one row of `XA RECOVER` (formatID, gtrid_length, bqual_length, data = gtrid followed by
// bqual) into an xid; nullopt when the lengths do not fit the data.
std::optional<MysqlXid> MysqlXidFromRecoverRow(int64_t format_id, int64_t gtrid_length,
                                               int64_t bqual_length, std::string_view data);

}  // namespace txc::participants::database
