// A transaction document (API.md "The transaction document") as text for a terminal: a block of
// `label: value` lines for the transaction, then one aligned row per branch. Fields the document
// lacks print as "-", so a coordinator that adds or drops a field does not break the CLI.
#pragma once

#include <string>

namespace txc::txctl {

// The table for the document in `json`. False, with *error saying why, when `json` is not a JSON
// object (the caller then has no document to show).
bool FormatDocumentTable(const std::string& json, std::string* table, std::string* error);

}  // namespace txc::txctl
