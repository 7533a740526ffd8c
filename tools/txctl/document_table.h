// A transaction document (API.md "The transaction document") as text for a terminal: a block of
// `label: value` lines for the transaction, then one aligned row per branch, then (when operators
// acted on it) one row per entry of its history. Fields the document lacks print as "-", so a
// coordinator that adds or drops a field does not break the CLI.
#pragma once

#include <Poco/JSON/Array.h>

#include <cstdint>
#include <string>

namespace txc::txctl {

// The table for the document in `json`. False, with *error saying why, when `json` is not a JSON
// object (the caller then has no document to show).
bool FormatDocumentTable(const std::string& json, std::string* table, std::string* error);

// The documents of a `GET /v1/transactions` answer (every page's, with --all) as one aligned row
// each: GID, PROTOCOL, STATE, OUTCOME, STUCK, AGE (since created_at, as of `now_unix_ms`) and
// BRANCHES (how many are in each state, "1 committed, 1 prepared", and how many need an
// operator). Only the header line when there are none.
std::string FormatTransactionList(const Poco::JSON::Array::Ptr& documents, int64_t now_unix_ms);

// "45s", "5m12s", "3h5m", "2d4h"; "-" for a negative age (a clock behind the coordinator's).
std::string FormatAge(int64_t age_ms);

// 2026-11-29T21:00:00.123Z (the document's timestamps) as milliseconds since the epoch; -1 when
// `text` has another form.
int64_t ParseUtcMillis(const std::string& text);

}  // namespace txc::txctl
