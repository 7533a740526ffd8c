#include "coordinator/protocol/two_phase_commit.h"

#include <algorithm>
#include <charconv>

#include "coordinator/common/check.h"

namespace txc::protocol {

using log::Durability;
using log::RecordType;
using participants::CallOutcome;
using participants::CallResult;
using participants::Op;

const char* TwoPhaseStateName(TwoPhaseState state) {
  switch (state) {
    case TwoPhaseState::kPreparing:
      return "preparing";
    case TwoPhaseState::kCommitting:
      return "committing";
    case TwoPhaseState::kAborting:
      return "aborting";
    case TwoPhaseState::kCommitted:
      return "committed";
    case TwoPhaseState::kAborted:
      return "aborted";
  }
  return "unknown";
}

const char* BranchStatusName(BranchStatus status) {
  switch (status) {
    case BranchStatus::kPending:
      return "pending";
    case BranchStatus::kPrepared:
      return "prepared";
    case BranchStatus::kRefused:
      return "refused";
    case BranchStatus::kCommitted:
      return "committed";
    case BranchStatus::kAborted:
      return "aborted";
  }
  return "unknown";
}

namespace {

std::optional<BranchStatus> ParseBranchStatus(std::string_view name) {
  for (auto status : {BranchStatus::kPending, BranchStatus::kPrepared, BranchStatus::kRefused,
                      BranchStatus::kCommitted, BranchStatus::kAborted}) {
    if (name == BranchStatusName(status)) return status;
  }
  return std::nullopt;
}

}  // namespace

const TwoPhaseVocabulary& TwoPhaseCommitVocabulary() {
  static const TwoPhaseVocabulary kTwoPhaseCommit;
  return kTwoPhaseCommit;
}

TwoPhaseCommit::TwoPhaseCommit(uint32_t branch_count, int64_t deadline_ms,
                               const TwoPhaseVocabulary& vocabulary)
    : vocabulary_(&vocabulary), deadline_ms_(deadline_ms), branches_(branch_count) {
  TXC_CHECK(branch_count > 0, "a transaction has at least one branch");
}

std::string TwoPhaseCommit::EncodeDecision(Outcome outcome, const std::string& reason) {
  return std::string(outcome == Outcome::kCommitted ? "commit" : "abort") +
         (reason.empty() ? "" : " " + reason);
}

std::string TwoPhaseCommit::EncodeProgress(uint32_t branch, BranchStatus status) {
  return std::to_string(branch) + " " + BranchStatusName(status);
}

Result<TwoPhaseCommit> TwoPhaseCommit::Recover(uint32_t branch_count,
                                               const std::vector<log::LogRecord>& records,
                                               const TwoPhaseVocabulary& vocabulary) {
  if (records.empty() || records.front().type != RecordType::kBegin) {
    return Status::Corruption("2pc transaction without a BEGIN record");
  }
  TwoPhaseCommit machine(branch_count, 0, vocabulary);
  for (const auto& record : records) {
    if (record.type == RecordType::kDecision) {
      const std::string_view body = record.body;
      const bool commit = body.starts_with("commit");
      if (!commit && !body.starts_with("abort")) {
        return Status::Corruption("2pc decision record '" + record.body + "' for " + record.gid);
      }
      machine.state_ = commit ? TwoPhaseState::kCommitting : TwoPhaseState::kAborting;
      const size_t space = body.find(' ');
      machine.decision_reason_ =
          space == std::string_view::npos ? "" : record.body.substr(space + 1);
    } else if (record.type == RecordType::kProgress) {
      const std::string_view body = record.body;
      const size_t space = body.find(' ');
      uint32_t branch = 0;
      const auto parsed =
          std::from_chars(body.data(), body.data() + std::min(space, body.size()), branch);
      const auto status = space == std::string_view::npos
                              ? std::nullopt
                              : ParseBranchStatus(body.substr(space + 1));
      if (parsed.ec != std::errc() || branch >= branch_count || !status) {
        return Status::Corruption("2pc progress record '" + record.body + "' for " + record.gid);
      }
      machine.branches_[branch].status = *status;
    }
  }
  if (machine.state_ == TwoPhaseState::kCommitting) {
    // A commit decision is only ever logged after every branch voted yes; the lazy records of
    // those votes may not have reached the disk, the decision did.
    for (auto& branch : machine.branches_) {
      if (branch.status == BranchStatus::kPending) branch.status = BranchStatus::kPrepared;
      if (branch.status == BranchStatus::kRefused || branch.status == BranchStatus::kAborted) {
        return Status::Corruption("2pc transaction " + records.front().gid +
                                  " has a commit decision and a branch that did not prepare");
      }
    }
  }
  return machine;
}

std::optional<Outcome> TwoPhaseCommit::outcome() const {
  if (state_ == TwoPhaseState::kCommitted) return Outcome::kCommitted;
  if (state_ == TwoPhaseState::kAborted) return Outcome::kAborted;
  return std::nullopt;
}

BranchView TwoPhaseCommit::Branch(uint32_t index) const {
  TXC_CHECK(index < branches_.size(), "branch index in range");
  const BranchProgress& b = branches_[index];
  return BranchView{vocabulary_->branch_states[static_cast<size_t>(b.status)], b.attempts,
                    b.last_error, b.needs_operator};
}

bool TwoPhaseCommit::AnyNeedsOperator() const {
  return std::any_of(branches_.begin(), branches_.end(),
                     [](const BranchProgress& b) { return b.needs_operator; });
}

Op TwoPhaseCommit::PhaseTwoOp() const {
  TXC_CHECK(decided(), "phase 2 exists only after the decision");
  return state_ == TwoPhaseState::kCommitting || state_ == TwoPhaseState::kCommitted
             ? vocabulary_->commit
             : vocabulary_->abort;
}

Ready TwoPhaseCommit::Start(int64_t now_ms) {
  TXC_CHECK(state_ == TwoPhaseState::kPreparing && branches_[0].attempts == 0,
            "Start only once, on a new transaction");
  Ready ready;
  ready.persist.push_back({RecordType::kBegin, "", Durability::kForced});
  if (now_ms >= deadline_ms_) {
    Decide(Outcome::kAborted, "the deadline passed before the first prepare", &ready);
  } else {
    for (uint32_t b = 0; b < branches_.size(); ++b) Call(b, vocabulary_->vote, &ready);
    ready.deadline_at_ms = deadline_ms_;
  }
  CheckInvariants();
  return ready;
}

Ready TwoPhaseCommit::Resume(int64_t /*now_ms*/) {
  Ready ready;
  if (!decided()) {
    Decide(Outcome::kAborted, "the coordinator restarted before a decision (presumed abort)",
           &ready);
  } else {
    for (uint32_t b = 0; b < branches_.size(); ++b) CallPhaseTwo(b, &ready);
    FinishIfDone(&ready);
  }
  CheckInvariants();
  return ready;
}

Ready TwoPhaseCommit::OnReply(uint32_t branch_index, Op op, const CallResult& result,
                              int64_t now_ms) {
  TXC_CHECK(branch_index < branches_.size(), "reply for a branch that does not exist");
  Ready ready;
  BranchProgress& branch = branches_[branch_index];
  if (!branch.in_flight || branch.in_flight_op != op) return ready;  // duplicate or stale reply
  branch.in_flight = false;
  if (!result.ok()) branch.last_error = result.reason;

  if (op == vocabulary_->vote) {
    switch (result.outcome) {
      case CallOutcome::kOk:
        branch.status = BranchStatus::kPrepared;
        branch.last_error.clear();
        ready.persist.push_back({RecordType::kProgress,
                                 EncodeProgress(branch_index, BranchStatus::kPrepared),
                                 Durability::kLazy});
        break;
      case CallOutcome::kRefused:
      case CallOutcome::kPermanent:
        branch.status = BranchStatus::kRefused;
        if (!decided()) {
          Decide(Outcome::kAborted,
                 "branch " + std::to_string(branch_index) + " voted no: " + result.reason, &ready);
        }
        break;
      case CallOutcome::kTransient:
      case CallOutcome::kUnknown:
        if (!decided()) {
          if (now_ms >= deadline_ms_) {
            Decide(Outcome::kAborted,
                   "the deadline passed before branch " + std::to_string(branch_index) +
                       " voted: " + result.reason,
                   &ready);
          } else {
            ScheduleRetry(branch_index, vocabulary_->vote, false, &ready);
          }
        }
        break;
    }
    if (decided()) {
      // The decision was made while this prepare was out: its phase 2 goes now.
      CallPhaseTwo(branch_index, &ready);
    } else if (std::all_of(branches_.begin(), branches_.end(), [](const BranchProgress& b) {
                 return b.status == BranchStatus::kPrepared;
               })) {
      Decide(Outcome::kCommitted, "", &ready);
    }
  } else {
    TXC_CHECK(decided() && op == PhaseTwoOp(), "a phase-2 reply matches the decision");
    switch (result.outcome) {
      case CallOutcome::kOk: {
        // A no vote's reason stays in last_error: it is why the transaction aborted.
        if (branch.status != BranchStatus::kRefused) branch.last_error.clear();
        branch.status =
            op == vocabulary_->commit ? BranchStatus::kCommitted : BranchStatus::kAborted;
        branch.needs_operator = false;
        ready.persist.push_back({RecordType::kProgress, EncodeProgress(branch_index, branch.status),
                                 Durability::kLazy});
        FinishIfDone(&ready);
        break;
      }
      case CallOutcome::kTransient:
      case CallOutcome::kUnknown:
        ScheduleRetry(branch_index, op, false, &ready);
        break;
      case CallOutcome::kRefused:
      case CallOutcome::kPermanent:
        // A participant that will not carry out a logged decision needs a person; keep trying
        // slowly in case it was a passing misconfiguration.
        branch.needs_operator = true;
        ScheduleRetry(branch_index, op, true, &ready);
        break;
    }
  }
  CheckInvariants();
  return ready;
}

Ready TwoPhaseCommit::OnRetryDue(uint32_t branch_index, uint64_t token, int64_t now_ms) {
  TXC_CHECK(branch_index < branches_.size(), "retry for a branch that does not exist");
  Ready ready;
  BranchProgress& branch = branches_[branch_index];
  if (token != branch.retry_token || branch.in_flight || finished()) return ready;  // stale
  branch.awaiting_retry = false;
  if (!decided()) {
    if (now_ms >= deadline_ms_) {
      Decide(Outcome::kAborted,
             "the deadline passed before branch " + std::to_string(branch_index) +
                 " voted: " + branch.last_error,
             &ready);
    } else {
      Call(branch_index, vocabulary_->vote, &ready);
    }
  } else {
    CallPhaseTwo(branch_index, &ready);
  }
  CheckInvariants();
  return ready;
}

Ready TwoPhaseCommit::OnDeadline(int64_t now_ms) {
  Ready ready;
  if (!decided() && now_ms >= deadline_ms_) {
    std::string waiting;
    for (uint32_t b = 0; b < branches_.size(); ++b) {
      if (branches_[b].status != BranchStatus::kPrepared) {
        waiting += (waiting.empty() ? "" : ", ") + std::to_string(b);
      }
    }
    Decide(Outcome::kAborted, "the deadline passed with branches " + waiting + " not prepared",
           &ready);
  }
  CheckInvariants();
  return ready;
}

std::optional<Ready> TwoPhaseCommit::OnOperatorAbort(int64_t /*now_ms*/) {
  if (decided()) return std::nullopt;
  Ready ready;
  Decide(Outcome::kAborted, "aborted by an operator", &ready);
  CheckInvariants();
  return ready;
}

Result<Ready> TwoPhaseCommit::OnOperatorResolve(uint32_t branch_index, Outcome outcome,
                                                int64_t /*now_ms*/) {
  TXC_CHECK(branch_index < branches_.size(), "resolve of a branch that does not exist");
  if (!decided()) {
    return Status::FailedPrecondition(
        "the transaction has no decision yet: abort it instead of resolving a branch");
  }
  const Outcome decision =
      PhaseTwoOp() == vocabulary_->commit ? Outcome::kCommitted : Outcome::kAborted;
  if (outcome != decision) {
    return Status::FailedPrecondition(std::string("the decision is ") + OutcomeName(decision) +
                                      ": a branch can only be resolved as " +
                                      OutcomeName(decision));
  }
  BranchProgress& branch = branches_[branch_index];
  const BranchStatus done =
      decision == Outcome::kCommitted ? BranchStatus::kCommitted : BranchStatus::kAborted;
  if (branch.status == done) {
    return Status::FailedPrecondition(std::string("the branch is already ") +
                                      vocabulary_->branch_states[static_cast<size_t>(done)]);
  }
  // Whatever is out or armed for this branch is void: a late reply is ignored as stale.
  branch.in_flight = false;
  ++branch.retry_token;
  branch.status = done;
  branch.needs_operator = false;
  Ready ready;
  ready.persist.push_back(
      {RecordType::kProgress, EncodeProgress(branch_index, done), Durability::kForced});
  FinishIfDone(&ready);
  CheckInvariants();
  return ready;
}

void TwoPhaseCommit::Decide(Outcome outcome, std::string reason, Ready* ready) {
  TXC_CHECK(!decided(), "a decision is made once");
  if (outcome == Outcome::kCommitted) {
    TXC_CHECK(
        std::all_of(branches_.begin(), branches_.end(),
                    [](const BranchProgress& b) { return b.status == BranchStatus::kPrepared; }),
        "commit only when every branch voted yes");
  }
  state_ = outcome == Outcome::kCommitted ? TwoPhaseState::kCommitting : TwoPhaseState::kAborting;
  decision_reason_ = std::move(reason);
  ready->persist.push_back(
      {RecordType::kDecision, EncodeDecision(outcome, decision_reason_), Durability::kForced});
  for (uint32_t b = 0; b < branches_.size(); ++b) {
    // Retries of phase 1 are void now; a prepare still out gets its phase 2 after its reply.
    ++branches_[b].retry_token;
    if (!branches_[b].in_flight) CallPhaseTwo(b, ready);
  }
}

void TwoPhaseCommit::CallPhaseTwo(uint32_t branch_index, Ready* ready) {
  const BranchProgress& branch = branches_[branch_index];
  if (branch.in_flight) return;
  const Op op = PhaseTwoOp();
  const BranchStatus done =
      op == vocabulary_->commit ? BranchStatus::kCommitted : BranchStatus::kAborted;
  if (branch.status == done) return;
  Call(branch_index, op, ready);
}

void TwoPhaseCommit::Call(uint32_t branch_index, Op op, Ready* ready) {
  branches_[branch_index].Call(branch_index, op, ready);
}

void TwoPhaseCommit::ScheduleRetry(uint32_t branch_index, Op op, bool longest, Ready* ready) {
  branches_[branch_index].ScheduleRetry(branch_index, op, longest, ready);
}

void TwoPhaseCommit::FinishIfDone(Ready* ready) {
  if (!decided() || finished()) return;
  const BranchStatus done =
      PhaseTwoOp() == vocabulary_->commit ? BranchStatus::kCommitted : BranchStatus::kAborted;
  for (const auto& branch : branches_) {
    if (branch.status != done || branch.in_flight) return;
  }
  state_ =
      state_ == TwoPhaseState::kCommitting ? TwoPhaseState::kCommitted : TwoPhaseState::kAborted;
  ready->persist.push_back({RecordType::kEnd, "", Durability::kLazy});
  ready->finished = *outcome();
}

void TwoPhaseCommit::CheckInvariants() const {
  for (const auto& branch : branches_) {
    // The negative space: what the decision rules out.
    if (state_ == TwoPhaseState::kAborting || state_ == TwoPhaseState::kAborted) {
      TXC_CHECK(branch.status != BranchStatus::kCommitted, "no branch commits under an abort");
      TXC_CHECK(!branch.in_flight || branch.in_flight_op != vocabulary_->commit,
                "no commit is sent under an abort");
    }
    if (state_ == TwoPhaseState::kCommitting || state_ == TwoPhaseState::kCommitted) {
      TXC_CHECK(
          branch.status == BranchStatus::kPrepared || branch.status == BranchStatus::kCommitted,
          "under a commit every branch is prepared or committed");
      TXC_CHECK(!branch.in_flight || branch.in_flight_op == vocabulary_->commit,
                "only commits are sent under a commit");
    }
    if (state_ == TwoPhaseState::kPreparing) {
      TXC_CHECK(branch.status == BranchStatus::kPending || branch.status == BranchStatus::kPrepared,
                "before the decision a branch is pending or prepared");
    }
  }
}

}  // namespace txc::protocol
