// One SQL statement of a database branch (API.md: `sql: [{"text": ..., "params": [...]}]`).
// `text` uses the database's own placeholders ($1, $2 for PostgreSQL; ? for MySQL); `params`
// are the JSON scalars bound to them, in order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::participants::database {

// A JSON scalar: null, boolean, integer, floating-point number or string. Integers that fit in
// int64 stay integers (an id must not pass through a double).
using StatementParam = std::variant<std::monostate, bool, int64_t, double, std::string>;

struct Statement {
  std::string text;
  std::vector<StatementParam> params;

  bool operator==(const Statement&) const = default;
};

// Refuses a statement that would end or replace the branch's local transaction (BEGIN, START
// TRANSACTION, COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, XA ...): the coordinator owns
// the transaction. In PostgreSQL such a statement would otherwise succeed, commit part of the
// branch on its own and leave PREPARE TRANSACTION with nothing to prepare. (MySQL refuses most of
// them inside an XA transaction by itself.) ROLLBACK TO SAVEPOINT and SAVEPOINT are allowed.
// This looks at the first words only, after comments; the adapters also verify that the prepare
// really prepared something. `index` names the statement in the message ("sql[2]").
[[nodiscard]] Status CheckBranchStatement(const Statement& statement, std::size_t index);

// "sql[2]": how messages name a statement of the branch (never its parameters, which may hold
// personal data).
std::string StatementName(std::size_t index);

}  // namespace txc::participants::database
