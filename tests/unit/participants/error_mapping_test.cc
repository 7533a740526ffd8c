// The error mapping table (participants/database/error_mapping.cc): real exception objects of
// libpqxx 6.4 and Connector/C++ 1.1, classified, then mapped per stage. One row per case the
// adapters meet; the comment after each row says why.
#include "participants/database/error_mapping.h"

#include <cppconn/exception.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <pqxx/except>
#include <stdexcept>
#include <string>
#include <vector>

namespace txc::participants::database {
namespace {

using Kind = DatabaseErrorKind;
using Stage = DatabaseStage;

constexpr CallOutcome kOk = CallOutcome::kOk;
constexpr CallOutcome kRefused = CallOutcome::kRefused;
constexpr CallOutcome kTransient = CallOutcome::kTransient;
constexpr CallOutcome kUnknown = CallOutcome::kUnknown;
constexpr CallOutcome kPermanent = CallOutcome::kPermanent;

struct Row {
  const char* name;
  std::function<DatabaseError()> classify;
  Kind kind;
  // Outcome at each stage: begin, statements, prepare, one-phase commit, commit prepared,
  // rollback prepared.
  std::vector<CallOutcome> outcomes;
};

template <typename Exception>
std::function<DatabaseError()> Postgres(Exception error) {
  return [error] { return ClassifyPostgresException(error); };
}

std::function<DatabaseError()> PostgresSql(const char* sqlstate) {
  return Postgres(pqxx::sql_error("ERROR:  something\nDETAIL:  more\n", "Q", sqlstate));
}

std::function<DatabaseError()> Mysql(int code, const char* sqlstate) {
  return [=] { return ClassifyMysqlException(sql::SQLException("message", sqlstate, code)); };
}

const std::vector<Stage> kStages = {Stage::kBegin,          Stage::kStatements,
                                    Stage::kPrepare,        Stage::kOnePhaseCommit,
                                    Stage::kCommitPrepared, Stage::kRollbackPrepared};

// Mirrors the table in error_mapping.cc, with real exceptions.
const std::vector<Row>& Table() {
  static const auto* const table = new std::vector<Row>{
      // ---- PostgreSQL ----
      {"pg broken connection",
       Postgres(pqxx::broken_connection("server closed the connection")),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"pg in doubt",
       Postgres(pqxx::in_doubt_error("lost during commit")),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"pg too many connections",
       Postgres(pqxx::too_many_connections("too many")),
       Kind::kConnectFailed,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg deadlock",
       Postgres(pqxx::deadlock_detected("deadlock detected")),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg serialization",
       Postgres(pqxx::serialization_failure("could not serialize")),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg completion unknown",
       Postgres(pqxx::statement_completion_unknown("?")),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"pg 23505 unique violation",
       PostgresSql("23505"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 23503 foreign key",
       PostgresSql("23503"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 42601 syntax error",
       PostgresSql("42601"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 42P01 undefined table",
       PostgresSql("42P01"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 42501 permission denied",
       PostgresSql("42501"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 22P02 invalid text",
       PostgresSql("22P02"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg P0001 raise",
       PostgresSql("P0001"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 40002 constraint at commit",
       PostgresSql("40002"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"pg 42704 no such prepared xact",
       PostgresSql("42704"),
       Kind::kUnknownXid,
       {kPermanent, kRefused, kPermanent, kRefused, kOk, kOk}},
      {"pg 42710 xid in use",
       PostgresSql("42710"),
       Kind::kDuplicateXid,
       {kUnknown, kRefused, kUnknown, kRefused, kPermanent, kPermanent}},
      {"pg 57014 statement timeout",
       PostgresSql("57014"),
       Kind::kTimeout,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg 55P03 lock not available",
       PostgresSql("55P03"),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg 55006 prepared xact busy",
       PostgresSql("55006"),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg 55000 prepared xacts disabled",
       PostgresSql("55000"),
       Kind::kConfiguration,
       {kPermanent, kPermanent, kPermanent, kPermanent, kPermanent, kPermanent}},
      {"pg 28P01 bad password",
       PostgresSql("28P01"),
       Kind::kConfiguration,
       {kPermanent, kPermanent, kPermanent, kPermanent, kPermanent, kPermanent}},
      {"pg 3D000 no such database",
       PostgresSql("3D000"),
       Kind::kConfiguration,
       {kPermanent, kPermanent, kPermanent, kPermanent, kPermanent, kPermanent}},
      {"pg 53400 too many prepared xacts",
       PostgresSql("53400"),
       Kind::kResourceShortage,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg 53100 disk full",
       PostgresSql("53100"),
       Kind::kResourceShortage,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg 57P01 admin shutdown",
       PostgresSql("57P01"),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"pg 08006 connection failure",
       PostgresSql("08006"),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"pg 57P03 cannot connect now",
       PostgresSql("57P03"),
       Kind::kConnectFailed,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"pg XX000 internal error",
       PostgresSql("XX000"),
       Kind::kOther,
       {kTransient, kRefused, kUnknown, kUnknown, kPermanent, kPermanent}},
      {"pg usage error",
       Postgres(pqxx::usage_error("misuse")),
       Kind::kOther,
       {kTransient, kRefused, kUnknown, kUnknown, kPermanent, kPermanent}},
      {"std exception",
       Postgres(std::runtime_error("?")),
       Kind::kOther,
       {kTransient, kRefused, kUnknown, kUnknown, kPermanent, kPermanent}},
      // ---- MySQL / MariaDB ----
      {"my 2013 lost connection",
       Mysql(2013, "HY000"),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"my 2006 server gone",
       Mysql(2006, "HY000"),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"my 1927 connection killed",
       Mysql(1927, "70100"),
       Kind::kConnectionLost,
       {kTransient, kTransient, kUnknown, kUnknown, kUnknown, kUnknown}},
      {"my 2003 cannot connect",
       Mysql(2003, "HY000"),
       Kind::kConnectFailed,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1040 too many connections",
       Mysql(1040, "08004"),
       Kind::kConnectFailed,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1045 access denied",
       Mysql(1045, "28000"),
       Kind::kConfiguration,
       {kPermanent, kPermanent, kPermanent, kPermanent, kPermanent, kPermanent}},
      {"my 1049 unknown database",
       Mysql(1049, "42000"),
       Kind::kConfiguration,
       {kPermanent, kPermanent, kPermanent, kPermanent, kPermanent, kPermanent}},
      {"my 1205 lock wait timeout",
       Mysql(1205, "HY000"),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1213 deadlock",
       Mysql(1213, "40001"),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1614 XA_RBDEADLOCK",
       Mysql(1614, "XA102"),
       Kind::kConflict,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1969 max_statement_time",
       Mysql(1969, "70100"),
       Kind::kTimeout,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my 1062 duplicate entry",
       Mysql(1062, "23000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1452 foreign key",
       Mysql(1452, "23000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1064 syntax error",
       Mysql(1064, "42000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1146 no such table",
       Mysql(1146, "42S02"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1364 no default (HY000)",
       Mysql(1364, "HY000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1644 SIGNAL",
       Mysql(1644, "45000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 4025 CHECK constraint",
       Mysql(4025, "23000"),
       Kind::kStatementRejected,
       {kPermanent, kRefused, kRefused, kRefused, kPermanent, kPermanent}},
      {"my 1397 XAER_NOTA",
       Mysql(1397, "XAE04"),
       Kind::kUnknownXid,
       {kPermanent, kRefused, kPermanent, kRefused, kOk, kOk}},
      {"my 1440 XAER_DUPID",
       Mysql(1440, "XAE08"),
       Kind::kDuplicateXid,
       {kUnknown, kRefused, kUnknown, kRefused, kPermanent, kPermanent}},
      {"my 1399 XAER_RMFAIL",
       Mysql(1399, "XAE07"),
       Kind::kXaState,
       {kTransient, kRefused, kTransient, kTransient, kTransient, kTransient}},
      {"my 1021 disk full",
       Mysql(1021, "HY000"),
       Kind::kResourceShortage,
       {kTransient, kTransient, kTransient, kTransient, kTransient, kTransient}},
      {"my connector's own exception",
       [] { return ClassifyMysqlException(sql::InvalidArgumentException("Value not set")); },
       Kind::kOther,
       {kTransient, kRefused, kUnknown, kUnknown, kPermanent, kPermanent}},
  };
  return *table;
}

TEST(ErrorMappingTest, EveryRowClassifiesAndMapsPerStage) {
  for (const Row& row : Table()) {
    const DatabaseError error = row.classify();
    EXPECT_EQ(error.kind, row.kind) << row.name << ": got " << DatabaseErrorKindName(error.kind);
    ASSERT_EQ(row.outcomes.size(), kStages.size()) << row.name;
    for (std::size_t i = 0; i < kStages.size(); ++i) {
      const CallResult result = ToCallResult(error, kStages[i], "resource r");
      EXPECT_EQ(result.outcome, row.outcomes[i])
          << row.name << " at " << DatabaseStageName(kStages[i]) << ": got "
          << CallOutcomeName(result.outcome) << " (" << result.reason << ")";
      if (result.outcome != kOk) {
        EXPECT_EQ(result.reason.rfind("resource r: ", 0), 0u) << result.reason;
      } else {
        EXPECT_TRUE(result.reason.empty()) << result.reason;
      }
    }
  }
}

// API.md: a failing statement is a vote no "with the database's message in the branch's
// last_error".
TEST(ErrorMappingTest, RefusalCarriesTheDatabaseMessageAndCode) {
  const DatabaseError error = ClassifyPostgresException(pqxx::sql_error(
      "ERROR:  duplicate key value violates unique constraint \"t_pkey\"\nDETAIL:  Key (k)=(1) "
      "already exists.\n",
      "INSERT", "23505"));
  const CallResult result = ToCallResult(error, Stage::kStatements, "resource orders: sql[1]");
  EXPECT_EQ(result.outcome, kRefused);
  EXPECT_EQ(result.reason,
            "resource orders: sql[1]: ERROR: duplicate key value violates unique constraint "
            "\"t_pkey\" DETAIL: Key (k)=(1) already exists. [SQLSTATE 23505]");

  const CallResult mysql =
      ToCallResult(ClassifyMysqlException(
                       sql::SQLException("Duplicate entry '1' for key 'PRIMARY'", "23000", 1062)),
                   Stage::kStatements, "resource payments: sql[0]");
  EXPECT_EQ(
      mysql.reason,
      "resource payments: sql[0]: Duplicate entry '1' for key 'PRIMARY' [MySQL 1062 (23000)]");
}

TEST(ErrorMappingTest, UnknownOutcomeSaysTheOperationMayHaveHappened) {
  const CallResult result = ToCallResult(ClassifyPostgresException(pqxx::broken_connection("gone")),
                                         Stage::kPrepare, "resource orders");
  EXPECT_EQ(result.outcome, kUnknown);
  EXPECT_NE(result.reason.find("may have happened"), std::string::npos) << result.reason;
}

TEST(ErrorMappingTest, StatusesForCallsThatReturnStatus) {
  EXPECT_EQ(ToStatus(ClassifyPostgresSqlstate("28P01", "bad password"), "w").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ToStatus(ClassifyMysqlError(2003, "HY000", "refused"), "w").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(ToStatus(ClassifyMysqlError(1064, "42000", "syntax"), "w").code(),
            StatusCode::kInternal);
  EXPECT_EQ(ToStatus(ClassifyMysqlError(1064, "42000", "syntax"), "w").message(),
            "w: syntax [MySQL 1064 (42000)]");
}

TEST(ErrorMappingTest, ConnectFailuresAreTransientUnlessConfiguration) {
  EXPECT_EQ(ConnectFailureToCallResult(Status::Unavailable("busy")).outcome, kTransient);
  EXPECT_EQ(ConnectFailureToCallResult(Status::FailedPrecondition("bad password")).outcome,
            kPermanent);
  EXPECT_EQ(ConnectFailureToCallResult(Status::InvalidArgument("bad dsn")).outcome, kPermanent);
}

TEST(ErrorMappingTest, BrokenSessionsAreDiscarded) {
  EXPECT_TRUE(MustDiscardConnection(ClassifyMysqlError(2013, "HY000", "")));
  EXPECT_TRUE(MustDiscardConnection(ClassifyMysqlError(1399, "XAE07", "")));
  EXPECT_TRUE(MustDiscardConnection(ClassifyPostgresException(pqxx::broken_connection("x"))));
  EXPECT_FALSE(MustDiscardConnection(ClassifyMysqlError(1062, "23000", "")));
  EXPECT_FALSE(MustDiscardConnection(ClassifyPostgresSqlstate("40001", "")));
}

TEST(ErrorMappingTest, OneLineMessageCollapsesWhiteSpaceAndIsBounded) {
  EXPECT_EQ(OneLineMessage("  ERROR:  a\n\tb  \n"), "ERROR: a b");
  EXPECT_EQ(OneLineMessage(std::string(5000, 'x')).size(), kMessageLengthMax);
  EXPECT_EQ(OneLineMessage(""), "");
}

}  // namespace
}  // namespace txc::participants::database
