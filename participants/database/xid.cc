#include "participants/database/xid.h"

#include <charconv>
#include <string>
#include <system_error>
#include <vector>

#include "coordinator/common/check.h"

namespace txc::participants::database {
namespace {

bool IsAsciiAlphanumeric(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsGidChar(char c) { return IsAsciiAlphanumeric(c) || c == '.' || c == '_' || c == '-'; }
bool IsNodeIdChar(char c) { return IsAsciiAlphanumeric(c) || c == '_' || c == '-'; }

// The position of the first character that `allowed` rejects, or npos.
template <typename Predicate>
std::size_t FirstInvalid(std::string_view text, Predicate allowed) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!allowed(text[i])) return i;
  }
  return std::string_view::npos;
}

std::string BranchIndexText(uint32_t branch_index) { return std::to_string(branch_index); }

// A branch index written exactly as BranchIndexText writes it: digits, no sign, no leading zero
// (so that one branch has one xid, and "01" is not taken for ours).
std::optional<uint32_t> ParseBranchIndex(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  uint32_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::vector<std::string_view> SplitOnColon(std::string_view text) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t colon = text.find(':');
    parts.push_back(text.substr(0, colon));
    if (colon == std::string_view::npos) return parts;
    text.remove_prefix(colon + 1);
  }
}

std::string HexLiteral(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string literal = "X'";
  literal.reserve(3 + 2 * bytes.size());
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    literal.push_back(kDigits[byte >> 4]);
    literal.push_back(kDigits[byte & 0xf]);
  }
  literal.push_back('\'');
  return literal;
}

Status ValidateIds(std::string_view node_id, std::string_view gid) {
  TXC_RETURN_IF_ERROR(ValidateNodeId(node_id));
  return ValidateGid(gid);
}

}  // namespace

Status ValidateGid(std::string_view gid) {
  if (gid.empty() || gid.size() > kGidLengthMax) {
    return Status::InvalidArgument("gid must be 1-" + std::to_string(kGidLengthMax) +
                                   " characters, not " + std::to_string(gid.size()));
  }
  if (const std::size_t bad = FirstInvalid(gid, IsGidChar); bad != std::string_view::npos) {
    return Status::InvalidArgument("gid may contain only [A-Za-z0-9._-]; character " +
                                   std::to_string(bad) + " is not one of them");
  }
  return Status::Ok();
}

Status ValidateNodeId(std::string_view node_id) {
  if (node_id.empty() || node_id.size() > kNodeIdLengthMax) {
    return Status::InvalidArgument("node_id must be 1-" + std::to_string(kNodeIdLengthMax) +
                                   " characters, not " + std::to_string(node_id.size()));
  }
  if (const std::size_t bad = FirstInvalid(node_id, IsNodeIdChar); bad != std::string_view::npos) {
    return Status::InvalidArgument("node_id may contain only [A-Za-z0-9_-]; character " +
                                   std::to_string(bad) + " is not one of them");
  }
  return Status::Ok();
}

Result<std::string> PostgresXid(std::string_view node_id, std::string_view gid,
                                uint32_t branch_index) {
  TXC_RETURN_IF_ERROR(ValidateIds(node_id, gid));
  std::string xid = std::string(kXidPrefix) + ":" + std::string(node_id) + ":" + std::string(gid) +
                    ":" + BranchIndexText(branch_index);
  // 3 + 1 + 32 + 1 + 56 + 1 + 10 = 104: valid ids always fit.
  TXC_CHECK(xid.size() <= kPostgresXidLengthMax, "a PostgreSQL xid of valid ids is too long");
  return xid;
}

std::string PostgresStringLiteral(std::string_view text) {
  std::string literal = "'";
  for (const char c : text) {
    if (c == '\'') literal.push_back('\'');
    literal.push_back(c);
  }
  literal.push_back('\'');
  return literal;
}

std::optional<BranchId> ParsePostgresXid(std::string_view xid, std::string_view node_id) {
  if (xid.size() > kPostgresXidLengthMax) return std::nullopt;
  const std::vector<std::string_view> parts = SplitOnColon(xid);
  if (parts.size() != 4 || parts[0] != kXidPrefix || parts[1] != node_id) return std::nullopt;
  if (!ValidateNodeId(parts[1]).ok() || !ValidateGid(parts[2]).ok()) return std::nullopt;
  const std::optional<uint32_t> branch_index = ParseBranchIndex(parts[3]);
  if (!branch_index) return std::nullopt;
  return BranchId{std::string(parts[2]), *branch_index};
}

Result<MysqlXid> MakeMysqlXid(std::string_view node_id, std::string_view gid,
                              uint32_t branch_index) {
  TXC_RETURN_IF_ERROR(ValidateIds(node_id, gid));
  MysqlXid xid{std::string(kXidPrefix) + ":" + std::string(gid),
               std::string(node_id) + ":" + BranchIndexText(branch_index), kMysqlFormatId};
  // gtrid: 4 + 56 = 60; bqual: 32 + 1 + 10 = 43.
  TXC_CHECK(xid.gtrid.size() <= kMysqlXidPartLengthMax, "a gtrid of a valid gid is too long");
  TXC_CHECK(xid.bqual.size() <= kMysqlXidPartLengthMax, "a bqual of a valid node id is too long");
  return xid;
}

std::string MysqlXidSql(const MysqlXid& xid) {
  return HexLiteral(xid.gtrid) + "," + HexLiteral(xid.bqual) + "," + std::to_string(xid.format_id);
}

std::optional<BranchId> ParseMysqlXid(const MysqlXid& xid, std::string_view node_id) {
  if (xid.format_id != kMysqlFormatId) return std::nullopt;
  if (xid.gtrid.size() > kMysqlXidPartLengthMax || xid.bqual.size() > kMysqlXidPartLengthMax) {
    return std::nullopt;
  }
  const std::vector<std::string_view> gtrid = SplitOnColon(xid.gtrid);
  const std::vector<std::string_view> bqual = SplitOnColon(xid.bqual);
  if (gtrid.size() != 2 || gtrid[0] != kXidPrefix || !ValidateGid(gtrid[1]).ok()) {
    return std::nullopt;
  }
  if (bqual.size() != 2 || bqual[0] != node_id || !ValidateNodeId(bqual[0]).ok()) {
    return std::nullopt;
  }
  const std::optional<uint32_t> branch_index = ParseBranchIndex(bqual[1]);
  if (!branch_index) return std::nullopt;
  return BranchId{std::string(gtrid[1]), *branch_index};
}

std::optional<MysqlXid> MysqlXidFromRecoverRow(int64_t format_id, int64_t gtrid_length,
                                               int64_t bqual_length, std::string_view data) {
  if (gtrid_length < 0 || bqual_length < 0 ||
      static_cast<uint64_t>(gtrid_length) + static_cast<uint64_t>(bqual_length) != data.size()) {
    return std::nullopt;
  }
  const auto gtrid_size = static_cast<std::size_t>(gtrid_length);
  return MysqlXid{std::string(data.substr(0, gtrid_size)), std::string(data.substr(gtrid_size)),
                  format_id};
}

}  // namespace txc::participants::database
