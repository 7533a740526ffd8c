// CheckBranchStatement: statements that would end the branch's local transaction are refused.
#include "participants/database/statement.h"

#include <gtest/gtest.h>

namespace txc::participants::database {
namespace {

Status Check(const char* text) { return CheckBranchStatement(Statement{text, {}}, 3); }

TEST(StatementTest, OrdinaryStatementsPass) {
  for (const char* text : {
           "INSERT INTO t VALUES ($1)",
           "update t set v = v + 1",
           "SELECT 'COMMIT'",
           "UPDATE t SET begin = 1",  // a column called begin
           "(SELECT 1)",
           "SAVEPOINT s",
           "ROLLBACK TO SAVEPOINT s",
           "rollback to s",
           "RELEASE SAVEPOINT s",
           "PREPARE plan AS SELECT 1",  // a prepared statement, not PREPARE TRANSACTION
           "commit_log_insert()",       // a word that starts like COMMIT
           "/* /* nested */ COMMIT */ SELECT 1",
       }) {
    EXPECT_TRUE(Check(text).ok()) << text << ": " << Check(text).ToString();
  }
}

TEST(StatementTest, TransactionControlIsRefused) {
  for (const char* text : {
           "COMMIT",
           "  commit;",
           "BEGIN",
           "START TRANSACTION",
           "END",
           "ABORT",
           "ROLLBACK",
           "rollback prepared 'x'",
           "COMMIT PREPARED 'x'",
           "PREPARE TRANSACTION 'x'",
           "prepare   transaction 'x'",
           "XA START 'x'",
           "xa end 'x'",
           "/* comment */ COMMIT",
           "-- comment\nCOMMIT",
           "/* a */ -- b\n /* c */ begin",
       }) {
    const Status status = Check(text);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find("sql[3]"), std::string::npos) << status.message();
  }
}

TEST(StatementTest, EmptyStatementsAreRefused) {
  for (const char* text : {"", "   ", "-- only a comment", "/* only a comment */"}) {
    EXPECT_EQ(Check(text).code(), StatusCode::kInvalidArgument) << text;
  }
}

TEST(StatementTest, StatementNameIsIndexed) { EXPECT_EQ(StatementName(0), "sql[0]"); }

}  // namespace
}  // namespace txc::participants::database
