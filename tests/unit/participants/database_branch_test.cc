// DatabaseBranch maps the engine's operations onto its DatabaseResource (a mock here).
#include "participants/database/database_branch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <span>
#include <string>
#include <vector>

namespace txc::participants::database {
namespace {

using ::testing::_;
using ::testing::ElementsAreArray;
using ::testing::Return;

class MockDatabaseResource : public DatabaseResource {
 public:
  MockDatabaseResource() { ON_CALL(*this, name()).WillByDefault(::testing::ReturnRef(name_)); }
  MOCK_METHOD(const std::string&, name, (), (const, override));
  MOCK_METHOD(Status, CheckReady, (std::chrono::milliseconds), (override));
  MOCK_METHOD(CallResult, Prepare,
              (std::string_view, uint32_t, std::span<const Statement>, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(CallResult, CommitPrepared, (std::string_view, uint32_t, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(CallResult, RollbackPrepared, (std::string_view, uint32_t, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(CallResult, CommitOnePhase,
              (std::string_view, uint32_t, std::span<const Statement>, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(Result<std::vector<InDoubtXid>>, ListInDoubt, (std::chrono::milliseconds),
              (override));

 private:
  std::string name_ = "orders";
};

CallContext Context(Op op) {
  CallContext context;
  context.gid = "order-1";
  context.branch = "orders";
  context.branch_index = 2;
  context.op = op;
  context.timeout_ms = 1500;
  return context;
}

const std::vector<Statement> kStatements = {
    Statement{"UPDATE t SET v = $1 WHERE k = $2", {int64_t{7}, std::string("a")}},
    Statement{"DELETE FROM t", {}}};

TEST(DatabaseBranchTest, PrepareRunsTheStatementsThroughTheResource) {
  ::testing::NiceMock<MockDatabaseResource> resource;
  DatabaseBranch branch(resource, kStatements);
  EXPECT_CALL(resource, Prepare(std::string_view("order-1"), 2u, ElementsAreArray(kStatements),
                                std::chrono::milliseconds(1500)))
      .WillOnce(Return(CallResult::Refused("sql[0]: duplicate")));
  const CallResult result = branch.Call(Context(Op::kPrepare));
  EXPECT_EQ(result.outcome, CallOutcome::kRefused);
  EXPECT_EQ(result.reason, "sql[0]: duplicate");
}

TEST(DatabaseBranchTest, CommitAndAbortResolveByXid) {
  ::testing::NiceMock<MockDatabaseResource> resource;
  DatabaseBranch branch(resource, kStatements);
  EXPECT_CALL(resource, CommitPrepared(std::string_view("order-1"), 2u, _))
      .WillOnce(Return(CallResult::Ok()));
  EXPECT_CALL(resource, RollbackPrepared(std::string_view("order-1"), 2u, _))
      .WillOnce(Return(CallResult::Unknown("lost")));
  EXPECT_TRUE(branch.Call(Context(Op::kCommit)).ok());
  EXPECT_EQ(branch.Call(Context(Op::kAbort)).outcome, CallOutcome::kUnknown);
}

TEST(DatabaseBranchTest, OtherOperationsArePermanentWithoutTouchingTheDatabase) {
  ::testing::NiceMock<MockDatabaseResource> resource;
  EXPECT_CALL(resource, Prepare).Times(0);
  EXPECT_CALL(resource, CommitPrepared).Times(0);
  EXPECT_CALL(resource, RollbackPrepared).Times(0);
  EXPECT_CALL(resource, CommitOnePhase).Times(0);
  DatabaseBranch branch(resource, kStatements);
  for (const Op op : {Op::kCanCommit, Op::kPreCommit, Op::kDoCommit, Op::kTry, Op::kConfirm,
                      Op::kCancel, Op::kAction, Op::kCompensate}) {
    const CallResult result = branch.Call(Context(op));
    EXPECT_EQ(result.outcome, CallOutcome::kPermanent) << OpName(op);
    EXPECT_NE(result.reason.find(OpName(op)), std::string::npos) << result.reason;
    EXPECT_NE(result.reason.find("orders"), std::string::npos) << result.reason;
  }
}

TEST(DatabaseBranchTest, CommitOnePhaseRunsTheStatements) {
  ::testing::NiceMock<MockDatabaseResource> resource;
  DatabaseBranch branch(resource, kStatements);
  EXPECT_CALL(resource,
              CommitOnePhase(std::string_view("order-1"), 2u, ElementsAreArray(kStatements), _))
      .WillOnce(Return(CallResult::Ok()));
  EXPECT_TRUE(branch.CommitOnePhase(Context(Op::kCommit)).ok());
}

TEST(DatabaseBranchTest, ANonPositiveTimeoutBecomesOneMillisecond) {
  ::testing::NiceMock<MockDatabaseResource> resource;
  DatabaseBranch branch(resource, kStatements);
  CallContext context = Context(Op::kCommit);
  context.timeout_ms = 0;
  EXPECT_CALL(resource, CommitPrepared(_, _, std::chrono::milliseconds(1)))
      .WillOnce(Return(CallResult::Ok()));
  EXPECT_TRUE(branch.Call(context).ok());
}

}  // namespace
}  // namespace txc::participants::database
