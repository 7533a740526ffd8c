// The threaded Engine over a real FileLog, with scripted in-process participants: submission,
// waiting, idempotent resubmission, the in-flight bound, restart recovery and retention.
#include "coordinator/engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "coordinator/log/file_log.h"
#include "coordinator/protocol/two_phase_commit.h"
#include "tests/support/test_env.h"

namespace txc::engine {
namespace {

using participants::CallContext;
using participants::CallResult;
using participants::Op;

// A participant whose answers are scripted per op; it records what it was asked.
class ScriptedParticipant final : public participants::Participant {
 public:
  CallResult Call(const CallContext& context) override {
    std::unique_lock lock(mu_);
    calls_.push_back(context.op);
    if (context.op == Op::kPrepare && block_prepare_) {
      cv_.wait(lock, [&] { return !block_prepare_; });
    }
    if (context.op == Op::kPrepare && transient_prepares_ > 0) {
      --transient_prepares_;
      return CallResult::Transient("busy");
    }
    if (context.op == Op::kPrepare && refuse_) return CallResult::Refused("no funds");
    return CallResult::Ok();
  }
  int Count(Op op) const {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count(calls_.begin(), calls_.end(), op));
  }
  void Refuse() { refuse_ = true; }
  void TransientPrepares(int n) { transient_prepares_ = n; }
  void BlockPrepare(bool block) {
    {
      std::lock_guard lock(mu_);
      block_prepare_ = block;
    }
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Op> calls_;
  bool refuse_ = false;
  int transient_prepares_ = 0;
  bool block_prepare_ = false;
};

class EngineTest : public ::testing::Test {
 protected:
  void Open(EngineOptions options = {}) {
    log::FileLogOptions log_options;
    log_options.dir = dir_.path() + "/log";
    auto log = log::FileLog::Open(log_options, &recovered_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    options.call_threads = 4;
    engine_ = std::make_unique<Engine>(options, *log_, SystemClock(), nullptr);
  }
  void Close() {
    engine_->Stop();
    log_->Close();
    engine_.reset();
    log_.reset();
  }
  void TearDown() override {
    if (engine_) Close();
  }

  TransactionPlan Plan(const std::string& gid,
                       const std::vector<std::shared_ptr<ScriptedParticipant>>& branches,
                       uint64_t fingerprint = 1, int64_t timeout_ms = 10'000) {
    TransactionPlan plan;
    plan.gid = gid;
    plan.protocol = "2pc";
    plan.retry = RetryPolicy{5, 20};
    plan.begin_body = std::to_string(branches.size());
    plan.fingerprint = fingerprint;
    plan.created_unix_ms = SystemClock().NowUnixMs();
    plan.machine = std::make_unique<protocol::TwoPhaseCommit>(
        static_cast<uint32_t>(branches.size()),
        SystemClock().MonotonicNs() / 1'000'000 + timeout_ms);
    for (size_t b = 0; b < branches.size(); ++b) {
      plan.branch_names.push_back("b" + std::to_string(b));
      plan.branch_timeout_ms.push_back(1000);
      plan.participants.push_back(branches[b]);
    }
    return plan;
  }

  testing::TempDir dir_;
  log::RecoveredLog recovered_;
  std::unique_ptr<log::FileLog> log_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, AllYesCommitsAndTheDocumentSaysSo) {
  Open();
  auto a = std::make_shared<ScriptedParticipant>();
  auto b = std::make_shared<ScriptedParticipant>();
  auto submitted = engine_->Submit(Plan("t1", {a, b}));
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  EXPECT_EQ(submitted->submitted, Engine::Submitted::kCreated);
  auto done = engine_->Wait("t1", 10'000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->outcome, "committed");
  EXPECT_EQ(done->state, "committed");
  ASSERT_EQ(done->branches.size(), 2u);
  EXPECT_EQ(done->branches[0].state, "committed");
  EXPECT_EQ(a->Count(Op::kPrepare), 1);
  EXPECT_EQ(a->Count(Op::kCommit), 1);
  EXPECT_EQ(b->Count(Op::kAbort), 0);
  EXPECT_EQ(engine_->active(), 0u);
}

TEST_F(EngineTest, ARefusalAbortsEveryBranch) {
  Open();
  auto a = std::make_shared<ScriptedParticipant>();
  auto b = std::make_shared<ScriptedParticipant>();
  b->Refuse();
  ASSERT_TRUE(engine_->Submit(Plan("t2", {a, b})).ok());
  auto done = engine_->Wait("t2", 10'000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->outcome, "aborted");
  EXPECT_EQ(done->branches[1].last_error, "no funds");
  EXPECT_EQ(a->Count(Op::kAbort), 1);
  EXPECT_EQ(b->Count(Op::kAbort), 1);
  EXPECT_EQ(a->Count(Op::kCommit) + b->Count(Op::kCommit), 0);
}

TEST_F(EngineTest, TransientPreparesAreRetried) {
  Open();
  auto a = std::make_shared<ScriptedParticipant>();
  a->TransientPrepares(3);
  ASSERT_TRUE(engine_->Submit(Plan("t3", {a})).ok());
  auto done = engine_->Wait("t3", 10'000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->outcome, "committed");
  EXPECT_EQ(a->Count(Op::kPrepare), 4);
  EXPECT_EQ(done->branches[0].attempts, 1u);  // of its commit
}

TEST_F(EngineTest, ResubmissionIsIdempotentByBodyAndConflictsOtherwise) {
  Open();
  auto a = std::make_shared<ScriptedParticipant>();
  ASSERT_TRUE(engine_->Submit(Plan("t4", {a}, 77)).ok());
  ASSERT_TRUE(engine_->Wait("t4", 10'000).ok());
  auto again = engine_->Submit(Plan("t4", {a}, 77));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->submitted, Engine::Submitted::kExisting);
  EXPECT_EQ(again->document.outcome, "committed");
  auto other = engine_->Submit(Plan("t4", {a}, 78));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(a->Count(Op::kPrepare), 1);  // nothing ran twice
}

TEST_F(EngineTest, InFlightBoundRejectsWithoutStarting) {
  EngineOptions options;
  options.max_in_flight = 1;
  Open(options);
  auto slow = std::make_shared<ScriptedParticipant>();
  slow->BlockPrepare(true);
  ASSERT_TRUE(engine_->Submit(Plan("t5", {slow})).ok());
  auto other = std::make_shared<ScriptedParticipant>();
  auto refused = engine_->Submit(Plan("t6", {other}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(other->Count(Op::kPrepare), 0);
  EXPECT_FALSE(engine_->Get("t6").ok());
  slow->BlockPrepare(false);
  ASSERT_TRUE(engine_->Wait("t5", 10'000).ok());
}

TEST_F(EngineTest, OperatorAbortBeforeTheDecisionOnly) {
  Open();
  auto slow = std::make_shared<ScriptedParticipant>();
  slow->BlockPrepare(true);
  ASSERT_TRUE(engine_->Submit(Plan("t7", {slow})).ok());
  ASSERT_TRUE(engine_->Abort("t7").ok());
  slow->BlockPrepare(false);
  auto done = engine_->Wait("t7", 10'000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->outcome, "aborted");
  EXPECT_EQ(engine_->Abort("t7").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->Abort("nope").code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, RestartFinishesWhatWasDecidedAndKeepsFinishedDocuments) {
  auto a = std::make_shared<ScriptedParticipant>();
  Open();
  ASSERT_TRUE(engine_->Submit(Plan("done", {a})).ok());
  ASSERT_TRUE(engine_->Wait("done", 10'000).ok());
  Close();
  // A transaction the previous process left with a durable commit decision.
  {
    log::FileLogOptions log_options;
    log_options.dir = dir_.path() + "/log";
    auto log = log::FileLog::Open(log_options, nullptr);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(
        (*log)->Append({log::RecordType::kBegin, "half", 1, "2"}, log::Durability::kForced).ok());
    ASSERT_TRUE(
        (*log)
            ->Append({log::RecordType::kDecision, "half", 2, "commit"}, log::Durability::kForced)
            .ok());
  }
  Open();
  ASSERT_EQ(recovered_.unfinished.size(), 1u);
  auto x = std::make_shared<ScriptedParticipant>();
  auto y = std::make_shared<ScriptedParticipant>();
  ASSERT_TRUE(
      engine_
          ->Recover(recovered_,
                    [&](const std::string& gid,
                        const std::vector<log::LogRecord>& records) -> Result<TransactionPlan> {
                      auto machine = protocol::TwoPhaseCommit::Recover(2, records);
                      if (!machine.ok()) return machine.status();
                      TransactionPlan plan = Plan(gid, {x, y});
                      plan.machine =
                          std::make_unique<protocol::TwoPhaseCommit>(std::move(machine).value());
                      return plan;
                    })
          .ok());
  auto half = engine_->Wait("half", 10'000);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->outcome, "committed");
  EXPECT_EQ(x->Count(Op::kCommit), 1);
  EXPECT_EQ(y->Count(Op::kCommit), 1);
  EXPECT_EQ(x->Count(Op::kPrepare), 0);
  auto finished = engine_->Get("done");
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->outcome, "committed");
  EXPECT_TRUE(engine_->IsCommitDecided("done"));
}

TEST_F(EngineTest, ListPagesByGidWithFilters) {
  Open();
  for (int i = 0; i < 5; ++i) {
    auto p = std::make_shared<ScriptedParticipant>();
    if (i % 2 == 1) p->Refuse();
    const std::string gid = "L" + std::to_string(i);
    ASSERT_TRUE(engine_->Submit(Plan(gid, {p})).ok());
    ASSERT_TRUE(engine_->Wait(gid, 10'000).ok());
  }
  std::optional<std::string> cursor;
  ListFilter filter;
  filter.limit = 2;
  auto page = engine_->List(filter, &cursor);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].gid, "L0");
  ASSERT_TRUE(cursor);
  filter.after_gid = *cursor;
  page = engine_->List(filter, &cursor);
  EXPECT_EQ(page[0].gid, "L2");
  filter = ListFilter{};
  filter.state = "aborted";
  page = engine_->List(filter, &cursor);
  EXPECT_EQ(page.size(), 2u);
  EXPECT_FALSE(cursor);
}

}  // namespace
}  // namespace txc::engine
