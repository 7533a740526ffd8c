// TransactionDocument: a transaction as clients and operators see it (API.md "The transaction
// document"), kept by the engine for active transactions and, for finished ones, rebuilt from
// their END summaries until retention.finished_ms has passed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::engine {

struct BranchDocument {
  std::string name;
  std::string state;
  uint32_t attempts = 0;
  std::string last_error;  // empty: null
  bool needs_operator = false;
  bool operator==(const BranchDocument&) const = default;
};

// What an operator did to a transaction (API.md "Operate"): recorded in the log (an OPERATOR
// record, this in JSON) before it takes effect, and shown in the document's `history`.
struct OperatorAction {
  int64_t at_unix_ms = 0;
  std::string action;   // "resolve" | "abort"
  std::string by;       // the API token's name; "anonymous" without access control
  std::string branch;   // resolve: the branch's name
  std::string outcome;  // resolve: "committed" | "aborted"
  std::string reason;   // in the operator's words
  bool operator==(const OperatorAction&) const = default;
};
std::string EncodeOperatorAction(const OperatorAction& action);
Result<OperatorAction> DecodeOperatorAction(const std::string& body);

struct TransactionDocument {
  std::string gid;
  std::string protocol;  // saga | tcc | 2pc | 3pc
  std::string state;
  std::optional<std::string> outcome;  // committed | aborted | null while in flight
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  std::string decision_reason;  // why it aborted, when it did
  std::vector<BranchDocument> branches;
  std::vector<OperatorAction> history;  // oldest first
  uint64_t fingerprint = 0;  // of the submitted spec: an identical resubmission matches it

  bool final() const { return outcome.has_value(); }
  bool NeedsOperator() const;
  // Not final and older than `stuck_after_ms`, or a branch waits for an operator.
  bool Stuck(int64_t now_unix_ms, int64_t stuck_after_ms) const;
  bool operator==(const TransactionDocument&) const = default;
};

// The document as API JSON (timestamps ISO-8601 UTC with milliseconds; `stuck` computed at `now`).
std::string DocumentToJson(const TransactionDocument& document, int64_t now_unix_ms,
                           int64_t stuck_after_ms);

// The END record's body: the final document, fingerprint included, so a restarted coordinator can
// still answer reads and recognise a resubmitted gid.
std::string EncodeSummary(const TransactionDocument& document);
Result<TransactionDocument> DecodeSummary(const std::string& body);

// "2026-11-29T21:00:00.123Z"
std::string FormatUtcMillis(int64_t unix_ms);

}  // namespace txc::engine
