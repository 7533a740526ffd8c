#include "participants/database/statement.h"

#include <array>
#include <cctype>
#include <string>

namespace txc::participants::database {
namespace {

// Skips white space, -- line comments and /* block comments */ (nested ones as PostgreSQL does;
// for MySQL, which does not nest them, this only ever skips more, never less, of a comment).
void SkipSpaceAndComments(std::string_view& text) {
  for (;;) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
      text.remove_prefix(1);
    }
    if (text.starts_with("--")) {
      const std::size_t end = text.find('\n');
      text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
      continue;
    }
    if (text.starts_with("/*")) {
      int depth = 0;
      std::size_t i = 0;
      while (i < text.size()) {
        if (text.substr(i).starts_with("/*")) {
          ++depth;
          i += 2;
        } else if (text.substr(i).starts_with("*/")) {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
      text.remove_prefix(i);
      continue;
    }
    return;
  }
}

// The next word ([A-Za-z_]+) in upper case, consumed from `text`; "" when there is none.
std::string NextWord(std::string_view& text) {
  SkipSpaceAndComments(text);
  std::string word;
  while (!text.empty() &&
         (std::isalpha(static_cast<unsigned char>(text.front())) != 0 || text.front() == '_')) {
    word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(text.front()))));
    text.remove_prefix(1);
  }
  return word;
}

}  // namespace

std::string StatementName(std::size_t index) { return "sql[" + std::to_string(index) + "]"; }

Status CheckBranchStatement(const Statement& statement, std::size_t index) {
  std::string_view rest = statement.text;
  const std::string first = NextWord(rest);
  if (first.empty()) {
    SkipSpaceAndComments(rest);
    if (rest.empty()) return Status::InvalidArgument(StatementName(index) + " is empty");
    return Status::Ok();  // starts with "(" or similar: not a transaction statement
  }
  static constexpr std::array<std::string_view, 7> kEndsTransaction = {
      "BEGIN", "START", "COMMIT", "END", "ABORT", "XA", "ROLLBACK"};
  bool refused = false;
  for (const std::string_view keyword : kEndsTransaction) refused = refused || first == keyword;
  if (first == "ROLLBACK" && NextWord(rest) == "TO") refused = false;  // ROLLBACK TO SAVEPOINT
  if (first == "PREPARE" && NextWord(rest) == "TRANSACTION") refused = true;
  if (refused) {
    return Status::InvalidArgument(
        StatementName(index) + " starts with " + first +
        ": transaction control is not allowed in a branch; the coordinator begins, prepares and "
        "commits the branch's transaction");
  }
  return Status::Ok();
}

}  // namespace txc::participants::database
