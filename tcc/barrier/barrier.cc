#include "tcc/barrier/barrier.h"

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "tcc/barrier/barrier_store.h"

namespace txc::barrier {
namespace {

// The column sizes of txc_barrier (migrations/*/0001_txc_barrier.sql). The gid limit is the
// coordinator's (API.md: it must fit in a MySQL XID); the branch limit is its branch-name limit.
constexpr std::size_t kGidLengthMax = 56;
constexpr std::size_t kBranchLengthMax = 64;
// How much of a rejected header value an error message repeats.
constexpr std::size_t kQuotedLengthMax = 80;
// How much of a database's message an error keeps.
constexpr std::size_t kMessageLengthMax = 480;

constexpr BarrierOp kAllOps[] = {BarrierOp::kAction, BarrierOp::kCompensate, BarrierOp::kTry,
                                 BarrierOp::kConfirm, BarrierOp::kCancel};

bool IsKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// The value in double quotes, with quotes, backslashes and non-printable bytes escaped and long
// values cut short: header values come from the network and end up in logs and replies.
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kQuotedLengthMax; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += static_cast<char>(byte);
    }
  }
  out += '"';
  if (text.size() > kQuotedLengthMax) out += "...";
  return out;
}

// gid and branch share one rule and differ in the limit.
Status CheckName(const char* header, std::string_view value, std::size_t length_max) {
  const std::string rule =
      "must be 1-" + std::to_string(length_max) + " characters of [A-Za-z0-9._-]";
  if (value.empty())
    return Status::InvalidArgument(std::string(header) + ": missing (" + rule + ")");
  if (value.size() > length_max) {
    return Status::InvalidArgument(std::string(header) + ": " + rule + ", got " +
                                   std::to_string(value.size()) + " characters " + Quoted(value));
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!IsKeyChar(value[i])) {
      return Status::InvalidArgument(std::string(header) + ": " + rule + ", got " + Quoted(value) +
                                     " (character " + std::to_string(i + 1) + ")");
    }
  }
  return Status::Ok();
}

std::optional<BarrierOp> OpFromName(std::string_view name) {
  for (const BarrierOp op : kAllOps) {
    if (name == BarrierOpName(op)) return op;
  }
  return std::nullopt;
}

bool IsKnownOp(BarrierOp op) {
  for (const BarrierOp known : kAllOps) {
    if (op == known) return true;
  }
  return false;
}

// The forward op a backward op undoes; nullopt for forward ops.
std::optional<BarrierOp> UndoneBy(BarrierOp op) {
  switch (op) {
    case BarrierOp::kCompensate:
      return BarrierOp::kAction;
    case BarrierOp::kCancel:
      return BarrierOp::kTry;
    case BarrierOp::kAction:
    case BarrierOp::kTry:
    case BarrierOp::kConfirm:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

const char* BarrierOpName(BarrierOp op) {
  switch (op) {
    case BarrierOp::kAction:
      return "action";
    case BarrierOp::kCompensate:
      return "compensate";
    case BarrierOp::kTry:
      return "try";
    case BarrierOp::kConfirm:
      return "confirm";
    case BarrierOp::kCancel:
      return "cancel";
  }
  return "unknown";
}

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kRun:
      return "run";
    case Verdict::kDuplicate:
      return "duplicate";
    case Verdict::kEmptyCompensation:
      return "empty_compensation";
    case Verdict::kRefusedAfterCancel:
      return "refused_after_cancel";
  }
  return "unknown";
}

Result<BarrierKey> ParseBarrierKey(std::string_view gid, std::string_view branch,
                                   std::string_view op) {
  TXC_RETURN_IF_ERROR(CheckName("Txc-Gid", gid, kGidLengthMax));
  TXC_RETURN_IF_ERROR(CheckName("Txc-Branch", branch, kBranchLengthMax));
  if (op.empty()) {
    return Status::InvalidArgument(
        "Txc-Op: missing (must be action, compensate, try, confirm or cancel)");
  }
  const std::optional<BarrierOp> parsed = OpFromName(op);
  if (!parsed.has_value()) {
    // 2PC and 3PC ops (prepare, commit, ...) are valid Txc-Op values, but not for a barrier.
    return Status::InvalidArgument("Txc-Op: " + Quoted(op) +
                                   " is not a saga or TCC op (action, compensate, try, confirm, "
                                   "cancel)");
  }
  return BarrierKey{std::string(gid), std::string(branch), *parsed};
}

Status CheckBarrierKey(const BarrierKey& key) {
  TXC_RETURN_IF_ERROR(CheckName("Txc-Gid", key.gid, kGidLengthMax));
  TXC_RETURN_IF_ERROR(CheckName("Txc-Branch", key.branch, kBranchLengthMax));
  if (!IsKnownOp(key.op)) {
    return Status::InvalidArgument("Txc-Op: unknown op value " +
                                   std::to_string(static_cast<int>(key.op)));
  }
  return Status::Ok();
}

namespace internal {

std::string DescribeKey(const BarrierKey& key) {
  return "gid " + key.gid + " branch " + key.branch + " op " + BarrierOpName(key.op);
}

std::string OneLine(std::string_view message) {
  std::string line;
  bool pending_space = false;
  for (const char c : message) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !line.empty();
      continue;
    }
    if (line.size() >= kMessageLengthMax) return line + "...";
    if (pending_space) line.push_back(' ');
    pending_space = false;
    line.push_back(c);
  }
  return line;
}

Result<Verdict> Enter(BarrierStore& store, const BarrierKey& key) {
  TXC_RETURN_IF_ERROR(CheckBarrierKey(key));
  const std::optional<BarrierOp> undone = UndoneBy(key.op);

  if (!undone.has_value()) {
    Result<bool> inserted = store.InsertIfAbsent(key, key.op, key.op);
    if (!inserted.ok()) return inserted.status();
    if (*inserted) return Verdict::kRun;
    Result<std::optional<std::string>> origin = store.ReadOrigin(key, key.op);
    if (!origin.ok()) return origin.status();
    if (!origin->has_value()) {
      // The insert found the row and the read right after it did not: someone deleted it in
      // between (a clean-up of old rows). Nothing was decided; the caller rolls back and retries.
      return Status::Aborted("txc_barrier: the row for " + DescribeKey(key) +
                             " disappeared between the insert and the read; retry");
    }
    const std::optional<BarrierOp> writer = OpFromName(**origin);
    if (!writer.has_value()) {
      return Status::Corruption("txc_barrier: the row for " + DescribeKey(key) + " has origin " +
                                Quoted(**origin) + ", which is no op");
    }
    // Only a backward op writes a forward op's row for it; a confirm row is only ever its own.
    return UndoneBy(*writer).has_value() ? Verdict::kRefusedAfterCancel : Verdict::kDuplicate;
  }

  // Block the forward op first: once this transaction commits, a late action/try finds its row
  // and is refused. Inserting it also tells whether the forward op ever committed.
  Result<bool> blocked = store.InsertIfAbsent(key, *undone, key.op);
  if (!blocked.ok()) return blocked.status();
  Result<bool> recorded = store.InsertIfAbsent(key, key.op, key.op);
  if (!recorded.ok()) return recorded.status();
  // Both rows are always written in one transaction, so a backward row without its forward row
  // (blocked and not recorded) exists only if someone deleted rows by hand: the backward op was
  // recorded before, which makes this a duplicate.
  if (*blocked && *recorded) return Verdict::kEmptyCompensation;
  return *recorded ? Verdict::kRun : Verdict::kDuplicate;
}

}  // namespace internal
}  // namespace txc::barrier
