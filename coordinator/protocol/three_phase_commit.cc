#include "coordinator/protocol/three_phase_commit.h"

#include <algorithm>
#include <charconv>

#include "coordinator/common/check.h"

namespace txc::protocol {

using log::Durability;
using log::RecordType;
using participants::CallOutcome;
using participants::CallResult;
using participants::Op;
using Status3 = ThreePhaseBranchStatus;

const char* ThreePhaseStateName(ThreePhaseState state) {
  switch (state) {
    case ThreePhaseState::kQuerying:
      return "querying";
    case ThreePhaseState::kPrecommitting:
      return "precommitting";
    case ThreePhaseState::kCommitting:
      return "committing";
    case ThreePhaseState::kAborting:
      return "aborting";
    case ThreePhaseState::kCommitted:
      return "committed";
    case ThreePhaseState::kAborted:
      return "aborted";
  }
  return "unknown";
}

const char* ThreePhaseBranchStatusName(ThreePhaseBranchStatus status) {
  switch (status) {
    case Status3::kPending:
      return "pending";
    case Status3::kVoted:
      return "voted";
    case Status3::kRefused:
      return "refused";
    case Status3::kPrecommitted:
      return "precommitted";
    case Status3::kCommitted:
      return "committed";
    case Status3::kAborted:
      return "aborted";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kPrecommitWord = "precommit";
constexpr std::string_view kCommitWord = "commit";
constexpr std::string_view kAbortWord = "abort";

bool AtLeastPrecommitted(Status3 status) {
  return status == Status3::kPrecommitted || status == Status3::kCommitted;
}

}  // namespace

ThreePhaseCommit::ThreePhaseCommit(uint32_t branch_count, int64_t deadline_ms)
    : deadline_ms_(deadline_ms), branches_(branch_count) {
  TXC_CHECK(branch_count > 0, "a transaction has at least one branch");
}

std::string ThreePhaseCommit::EncodeProgress(uint32_t branch, ThreePhaseBranchStatus status) {
  return std::to_string(branch) + " " + ThreePhaseBranchStatusName(status);
}

Result<ThreePhaseCommit> ThreePhaseCommit::Recover(uint32_t branch_count,
                                                   const std::vector<log::LogRecord>& records) {
  if (records.empty() || records.front().type != RecordType::kBegin) {
    return Status::Corruption("3pc transaction without a BEGIN record");
  }
  ThreePhaseCommit machine(branch_count, 0);
  machine.started_ = true;
  for (const auto& record : records) {
    const std::string_view body = record.body;
    if (record.type == RecordType::kDecision) {
      if (body == kPrecommitWord) {
        machine.state_ = ThreePhaseState::kPrecommitting;
      } else if (body == kCommitWord) {
        machine.state_ = ThreePhaseState::kCommitting;
      } else if (body.starts_with(kAbortWord)) {
        machine.state_ = ThreePhaseState::kAborting;
        machine.decision_reason_ = std::string(body.substr(std::min(body.size(), size_t{6})));
      } else {
        return Status::Corruption("3pc decision record '" + record.body + "'");
      }
    } else if (record.type == RecordType::kProgress) {
      const size_t space = body.find(' ');
      uint32_t branch = 0;
      const auto parsed =
          std::from_chars(body.data(), body.data() + std::min(space, body.size()), branch);
      std::optional<Status3> status;
      for (auto s :
           {Status3::kVoted, Status3::kPrecommitted, Status3::kCommitted, Status3::kAborted}) {
        if (space != std::string_view::npos &&
            body.substr(space + 1) == ThreePhaseBranchStatusName(s)) {
          status = s;
        }
      }
      if (parsed.ec != std::errc() || branch >= branch_count || !status) {
        return Status::Corruption("3pc progress record '" + record.body + "'");
      }
      machine.branches_[branch].status = *status;
    }
  }
  // A decision is logged only once what it rests on held; the lazy records of it may be lost.
  for (auto& branch : machine.branches_) {
    if (machine.state_ == ThreePhaseState::kPrecommitting && branch.status == Status3::kPending) {
      branch.status = Status3::kVoted;
    }
    if (machine.state_ == ThreePhaseState::kCommitting && !AtLeastPrecommitted(branch.status)) {
      branch.status = Status3::kPrecommitted;
    }
  }
  machine.CheckInvariants();
  return machine;
}

std::optional<Outcome> ThreePhaseCommit::FinalOutcome() const {
  if (state_ == ThreePhaseState::kCommitted) return Outcome::kCommitted;
  if (state_ == ThreePhaseState::kAborted) return Outcome::kAborted;
  return std::nullopt;
}

BranchView ThreePhaseCommit::Branch(uint32_t index) const {
  TXC_CHECK(index < branches_.size(), "branch index in range");
  const BranchProgress& b = branches_[index];
  return BranchView{ThreePhaseBranchStatusName(b.status), b.attempts, b.last_error,
                    b.needs_operator};
}

Ready ThreePhaseCommit::Start(int64_t now_ms) {
  TXC_CHECK(!started_, "Start only once, on a new transaction");
  started_ = true;
  Ready ready;
  ready.persist.push_back({RecordType::kBegin, "", Durability::kForced});
  if (now_ms >= deadline_ms_) {
    Abort("the deadline passed before the first can_commit", &ready);
  } else {
    for (uint32_t b = 0; b < branches_.size(); ++b) Call(b, Op::kCanCommit, &ready);
    ready.deadline_at_ms = deadline_ms_;
  }
  CheckInvariants();
  return ready;
}

Ready ThreePhaseCommit::Resume(int64_t /*now_ms*/) {
  Ready ready;
  if (state_ == ThreePhaseState::kQuerying) {
    Abort("the coordinator restarted before the pre-commit decision", &ready);
  } else {
    SendOwed(&ready);
    AdvanceIfDone(&ready);
  }
  CheckInvariants();
  return ready;
}

std::optional<Op> ThreePhaseCommit::OwedOp(uint32_t branch) const {
  const Status3 status = branches_[branch].status;
  switch (state_) {
    case ThreePhaseState::kPrecommitting:
      if (!AtLeastPrecommitted(status)) return Op::kPreCommit;
      return std::nullopt;
    case ThreePhaseState::kCommitting:
      if (status != Status3::kCommitted) return Op::kDoCommit;
      return std::nullopt;
    case ThreePhaseState::kAborting:
      if (status != Status3::kAborted) return Op::kAbort;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void ThreePhaseCommit::SendOwed(Ready* ready) {
  for (uint32_t b = 0; b < branches_.size(); ++b) {
    const BranchProgress& branch = branches_[b];
    if (branch.in_flight || branch.awaiting_retry) continue;
    if (auto op = OwedOp(b)) Call(b, *op, ready);
  }
}

Ready ThreePhaseCommit::OnReply(uint32_t branch_index, Op op, const CallResult& result,
                                int64_t now_ms) {
  TXC_CHECK(branch_index < branches_.size(), "reply for a branch that does not exist");
  Ready ready;
  BranchProgress& branch = branches_[branch_index];
  if (!branch.in_flight || branch.in_flight_op != op) return ready;  // duplicate or stale
  branch.in_flight = false;
  if (!result.ok()) branch.last_error = result.reason;
  const bool ok = result.ok();
  const bool refused =
      result.outcome == CallOutcome::kRefused || result.outcome == CallOutcome::kPermanent;
  if (op == Op::kCanCommit) {
    if (ok) {
      branch.status = Status3::kVoted;
      branch.last_error.clear();
      ready.persist.push_back({RecordType::kProgress, EncodeProgress(branch_index, Status3::kVoted),
                               Durability::kLazy});
    } else if (refused) {
      branch.status = Status3::kRefused;
    }
    if (state_ == ThreePhaseState::kQuerying) {
      if (refused) {
        Abort("branch " + std::to_string(branch_index) + " voted no: " + result.reason, &ready);
      } else if (!ok) {
        if (now_ms >= deadline_ms_) {
          Abort("the deadline passed before branch " + std::to_string(branch_index) +
                    " voted: " + result.reason,
                &ready);
        } else {
          ScheduleRetry(branch_index, Op::kCanCommit, false, &ready);
        }
      } else if (std::all_of(branches_.begin(), branches_.end(),
                             [](const BranchProgress& b) { return b.status == Status3::kVoted; })) {
        Precommit(&ready);
      }
    } else {
      SendOwed(&ready);  // the decision came while this vote was out: its abort goes now
    }
  } else {
    TXC_CHECK(OwedOp(branch_index) == op || ok, "a reply matches what the state owes");
    if (ok) {
      const Status3 done = op == Op::kPreCommit  ? Status3::kPrecommitted
                           : op == Op::kDoCommit ? Status3::kCommitted
                                                 : Status3::kAborted;
      if (branch.status != Status3::kRefused) branch.last_error.clear();
      branch.status = done;
      branch.needs_operator = false;
      ready.persist.push_back(
          {RecordType::kProgress, EncodeProgress(branch_index, done), Durability::kLazy});
      AdvanceIfDone(&ready);
    } else if (refused) {
      // Past the decision a participant must not say no: a person has to look.
      branch.needs_operator = true;
      ScheduleRetry(branch_index, op, true, &ready);
    } else {
      ScheduleRetry(branch_index, op, false, &ready);
    }
  }
  CheckInvariants();
  return ready;
}

Ready ThreePhaseCommit::OnRetryDue(uint32_t branch_index, uint64_t token, int64_t now_ms) {
  TXC_CHECK(branch_index < branches_.size(), "retry for a branch that does not exist");
  Ready ready;
  BranchProgress& branch = branches_[branch_index];
  if (token != branch.retry_token || !branch.awaiting_retry || branch.in_flight || IsFinished()) {
    return ready;  // stale
  }
  branch.awaiting_retry = false;
  if (state_ == ThreePhaseState::kQuerying) {
    if (now_ms >= deadline_ms_) {
      Abort("the deadline passed before branch " + std::to_string(branch_index) +
                " voted: " + branch.last_error,
            &ready);
    } else {
      Call(branch_index, Op::kCanCommit, &ready);
    }
  } else {
    SendOwed(&ready);
  }
  CheckInvariants();
  return ready;
}

Ready ThreePhaseCommit::OnDeadline(int64_t now_ms) {
  Ready ready;
  if (state_ == ThreePhaseState::kQuerying && now_ms >= deadline_ms_) {
    Abort("the deadline passed before every branch voted", &ready);
  }
  CheckInvariants();
  return ready;
}

std::optional<Ready> ThreePhaseCommit::OnOperatorAbort(int64_t /*now_ms*/) {
  if (state_ != ThreePhaseState::kQuerying) return std::nullopt;
  Ready ready;
  Abort("aborted by an operator", &ready);
  CheckInvariants();
  return ready;
}

Result<Ready> ThreePhaseCommit::OnOperatorResolve(uint32_t branch_index, Outcome outcome,
                                                  int64_t /*now_ms*/) {
  TXC_CHECK(branch_index < branches_.size(), "resolve of a branch that does not exist");
  if (state_ == ThreePhaseState::kQuerying) {
    return Status::FailedPrecondition(
        "the transaction has no decision yet: abort it instead of resolving a branch");
  }
  if (IsFinished()) return Status::FailedPrecondition("the transaction is finished");
  const Outcome decision =
      state_ == ThreePhaseState::kAborting ? Outcome::kAborted : Outcome::kCommitted;
  if (outcome != decision) {
    return Status::FailedPrecondition(std::string("the decision is ") + OutcomeName(decision) +
                                      ": a branch can only be resolved as " +
                                      OutcomeName(decision));
  }
  BranchProgress& branch = branches_[branch_index];
  const Status3 done = decision == Outcome::kCommitted ? Status3::kCommitted : Status3::kAborted;
  if (branch.status == done) {
    return Status::FailedPrecondition(std::string("the branch is already ") +
                                      ThreePhaseBranchStatusName(done));
  }
  branch.in_flight = false;
  branch.awaiting_retry = false;
  ++branch.retry_token;
  branch.status = done;
  branch.needs_operator = false;
  Ready ready;
  ready.persist.push_back(
      {RecordType::kProgress, EncodeProgress(branch_index, done), Durability::kForced});
  AdvanceIfDone(&ready);
  CheckInvariants();
  return ready;
}

void ThreePhaseCommit::Abort(std::string reason, Ready* ready) {
  TXC_CHECK(state_ == ThreePhaseState::kQuerying, "3pc aborts only before the pre-commit");
  state_ = ThreePhaseState::kAborting;
  decision_reason_ = std::move(reason);
  ready->persist.push_back({RecordType::kDecision, std::string(kAbortWord) + " " + decision_reason_,
                            Durability::kForced});
  for (auto& branch : branches_) {
    ++branch.retry_token;  // votes' retries are void now
    branch.awaiting_retry = false;
  }
  SendOwed(ready);
  AdvanceIfDone(ready);
}

void ThreePhaseCommit::Precommit(Ready* ready) {
  TXC_CHECK(state_ == ThreePhaseState::kQuerying, "pre-commit follows the votes");
  state_ = ThreePhaseState::kPrecommitting;
  ready->persist.push_back(
      {RecordType::kDecision, std::string(kPrecommitWord), Durability::kForced});
  SendOwed(ready);
}

void ThreePhaseCommit::Commit(Ready* ready) {
  TXC_CHECK(state_ == ThreePhaseState::kPrecommitting, "commit follows the pre-commit");
  state_ = ThreePhaseState::kCommitting;
  ready->persist.push_back({RecordType::kDecision, std::string(kCommitWord), Durability::kForced});
  SendOwed(ready);
}

void ThreePhaseCommit::AdvanceIfDone(Ready* ready) {
  const bool quiet = std::none_of(branches_.begin(), branches_.end(),
                                  [](const BranchProgress& b) { return b.in_flight; });
  if (!quiet) return;
  auto all = [this](auto predicate) {
    return std::all_of(branches_.begin(), branches_.end(),
                       [&](const BranchProgress& b) { return predicate(b.status); });
  };
  if (state_ == ThreePhaseState::kPrecommitting && all(AtLeastPrecommitted)) {
    Commit(ready);
    return;
  }
  if (state_ == ThreePhaseState::kCommitting &&
      all([](Status3 s) { return s == Status3::kCommitted; })) {
    state_ = ThreePhaseState::kCommitted;
    ready->persist.push_back({RecordType::kEnd, "", Durability::kLazy});
    ready->finished = Outcome::kCommitted;
  } else if (state_ == ThreePhaseState::kAborting &&
             all([](Status3 s) { return s == Status3::kAborted; })) {
    state_ = ThreePhaseState::kAborted;
    ready->persist.push_back({RecordType::kEnd, "", Durability::kLazy});
    ready->finished = Outcome::kAborted;
  }
}

void ThreePhaseCommit::Call(uint32_t branch_index, Op op, Ready* ready) {
  branches_[branch_index].Call(branch_index, op, ready);
}

void ThreePhaseCommit::ScheduleRetry(uint32_t branch_index, Op op, bool longest, Ready* ready) {
  branches_[branch_index].ScheduleRetry(branch_index, op, longest, ready);
}

void ThreePhaseCommit::CheckInvariants() const {
  for (const auto& branch : branches_) {
    const bool aborting =
        state_ == ThreePhaseState::kAborting || state_ == ThreePhaseState::kAborted;
    if (aborting) {
      TXC_CHECK(!AtLeastPrecommitted(branch.status), "nothing is pre-committed under an abort");
      TXC_CHECK(!branch.in_flight || branch.in_flight_op == Op::kAbort ||
                    branch.in_flight_op == Op::kCanCommit,
                "only aborts (and votes still out) under an abort");
    }
    if (state_ == ThreePhaseState::kPrecommitting || state_ == ThreePhaseState::kCommitting ||
        state_ == ThreePhaseState::kCommitted) {
      TXC_CHECK(branch.status != Status3::kRefused && branch.status != Status3::kAborted &&
                    branch.status != Status3::kPending,
                "past the pre-commit every branch voted yes");
      TXC_CHECK(!branch.in_flight || branch.in_flight_op != Op::kAbort,
                "no abort is sent past the pre-commit");
    }
    if (state_ == ThreePhaseState::kCommitting || state_ == ThreePhaseState::kCommitted) {
      TXC_CHECK(AtLeastPrecommitted(branch.status),
                "commit only once every branch acknowledged the pre-commit");
    }
    if (state_ == ThreePhaseState::kQuerying) {
      TXC_CHECK(branch.status == Status3::kPending || branch.status == Status3::kVoted,
                "before the decision a branch is pending or voted yes");
    }
  }
}

}  // namespace txc::protocol
