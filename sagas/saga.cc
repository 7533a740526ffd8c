#include "sagas/saga.h"

#include <algorithm>
#include <charconv>

#include "coordinator/common/check.h"

namespace txc::sagas {

using log::Durability;
using log::RecordType;
using participants::CallOutcome;
using participants::CallResult;
using participants::Op;
using protocol::Outcome;
using protocol::Ready;

const char* SagaStateName(SagaState state) {
  switch (state) {
    case SagaState::kRunning:
      return "running";
    case SagaState::kCompensating:
      return "compensating";
    case SagaState::kSucceeded:
      return "succeeded";
    case SagaState::kCompensated:
      return "compensated";
  }
  return "unknown";
}

const char* StepStatusName(StepStatus status) {
  switch (status) {
    case StepStatus::kPending:
      return "pending";
    case StepStatus::kRunning:
      return "running";
    case StepStatus::kDone:
      return "done";
    case StepStatus::kRefused:
      return "refused";
    case StepStatus::kCompensating:
      return "compensating";
    case StepStatus::kCompensated:
      return "compensated";
    case StepStatus::kSkipped:
      return "skipped";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kCompensateWord = "compensate";

// "<number>" at the front of `text`; nullopt when there is none or it is out of range.
std::optional<uint32_t> ParseIndex(std::string_view text, uint32_t limit) {
  uint32_t value = 0;
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
  if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || value >= limit) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

Saga::Saga(SagaGraph graph, int64_t deadline_ms)
    : graph_(std::move(graph)), deadline_ms_(deadline_ms), steps_(graph_.size()) {
  TXC_CHECK(graph_.size() > 0, "a saga has at least one step");
}

std::string Saga::EncodeCompensate(const std::vector<uint32_t>& may_have_run,
                                   const std::string& reason) {
  // Three lines: the word, the steps to compensate, the reason (which may hold anything).
  std::string body(kCompensateWord);
  body += '\n';
  for (size_t i = 0; i < may_have_run.size(); ++i) {
    if (i > 0) body += ',';
    body += std::to_string(may_have_run[i]);
  }
  body += '\n';
  body += reason;
  return body;
}

std::string Saga::EncodeProgress(uint32_t step, StepStatus status) {
  return std::to_string(step) + " " + StepStatusName(status);
}

Result<Saga> Saga::Recover(SagaGraph graph, int64_t deadline_ms,
                           const std::vector<log::LogRecord>& records) {
  if (records.empty() || records.front().type != RecordType::kBegin) {
    return Status::Corruption("saga without a BEGIN record");
  }
  const std::string& gid = records.front().gid;
  Saga saga(std::move(graph), deadline_ms);
  saga.started_ = true;
  const uint32_t count = saga.graph_.size();
  std::optional<std::vector<uint32_t>> to_compensate;
  for (const auto& record : records) {
    const std::string_view body = record.body;
    if (record.type == RecordType::kDecision) {
      const size_t first = body.find('\n');
      const size_t second = first == std::string_view::npos ? first : body.find('\n', first + 1);
      if (body.substr(0, first) != kCompensateWord || second == std::string_view::npos) {
        return Status::Corruption("saga decision record '" + record.body + "' for " + gid);
      }
      std::vector<uint32_t> listed;
      std::string_view list = body.substr(first + 1, second - first - 1);
      while (!list.empty()) {
        const size_t comma = std::min(list.find(','), list.size());
        auto step = ParseIndex(list.substr(0, comma), count);
        if (!step) return Status::Corruption("saga decision record '" + record.body + "'");
        listed.push_back(*step);
        list.remove_prefix(std::min(comma + 1, list.size()));
      }
      to_compensate = std::move(listed);
      saga.decision_reason_ = std::string(body.substr(second + 1));
    } else if (record.type == RecordType::kProgress) {
      const size_t space = body.find(' ');
      auto step =
          space == std::string_view::npos ? std::nullopt : ParseIndex(body.substr(0, space), count);
      const std::string_view status = space == std::string_view::npos ? "" : body.substr(space + 1);
      if (!step || (status != StepStatusName(StepStatus::kDone) &&
                    status != StepStatusName(StepStatus::kCompensated))) {
        return Status::Corruption("saga progress record '" + record.body + "' for " + gid);
      }
      StepProgress& progress = saga.steps_[*step];
      if (status == StepStatusName(StepStatus::kDone)) {
        if (progress.status != StepStatus::kCompensated) progress.status = StepStatus::kDone;
      } else {
        progress.status = StepStatus::kCompensated;
      }
      progress.may_have_run = true;
    }
  }
  if (to_compensate) {
    saga.state_ = SagaState::kCompensating;
    for (uint32_t step : *to_compensate) saga.steps_[step].may_have_run = true;
    for (auto& step : saga.steps_) {
      // A step the decision did not list never ran; one it listed without a result record may
      // have run (its outcome is unknown): both are settled by compensating, or not, below.
      if (!step.may_have_run) step.status = StepStatus::kSkipped;
      if (step.may_have_run && step.status == StepStatus::kPending) {
        step.status = StepStatus::kRunning;
      }
    }
  } else {
    for (auto& step : saga.steps_) {
      if (step.status == StepStatus::kCompensated) {
        return Status::Corruption("saga " + gid + " has a compensated step and no decision");
      }
      // Its action may have been sent before the crash, its result lost with the lazy record.
      if (step.status != StepStatus::kDone) step.may_have_run = true;
    }
  }
  saga.CheckInvariants();
  return saga;
}

std::optional<Outcome> Saga::FinalOutcome() const {
  if (state_ == SagaState::kSucceeded) return Outcome::kCommitted;
  if (state_ == SagaState::kCompensated) return Outcome::kAborted;
  return std::nullopt;
}

protocol::BranchView Saga::Branch(uint32_t index) const {
  TXC_CHECK(index < steps_.size(), "step index in range");
  const StepProgress& s = steps_[index];
  return protocol::BranchView{StepStatusName(s.status), s.attempts, s.last_error, s.needs_operator};
}

Ready Saga::Start(int64_t now_ms) {
  TXC_CHECK(!started_, "Start only once, on a new saga");
  started_ = true;
  Ready ready;
  ready.persist.push_back({RecordType::kBegin, "", Durability::kForced});
  if (now_ms >= deadline_ms_) {
    DecideToCompensate("the deadline passed before the first step", &ready);
  } else {
    StartReadySteps(now_ms, &ready);
    ready.deadline_at_ms = deadline_ms_;
  }
  CheckInvariants();
  return ready;
}

Ready Saga::Resume(int64_t now_ms) {
  Ready ready;
  if (state_ == SagaState::kRunning) {
    if (now_ms >= deadline_ms_) {
      DecideToCompensate("the deadline passed while the coordinator was down", &ready);
    } else {
      StartReadySteps(now_ms, &ready);
      ready.deadline_at_ms = deadline_ms_;
      // Every step may be done already (their records lost): StartReadySteps finishes then.
    }
  } else {
    CompensateWhatIsReady(&ready);
  }
  CheckInvariants();
  return ready;
}

void Saga::StartReadySteps(int64_t /*now_ms*/, Ready* ready) {
  TXC_CHECK(state_ == SagaState::kRunning, "actions run only before the decision");
  bool all_done = true;
  for (uint32_t step = 0; step < steps_.size(); ++step) {
    StepProgress& progress = steps_[step];
    if (progress.status != StepStatus::kDone) all_done = false;
    if (progress.status != StepStatus::kPending || progress.in_flight) continue;
    const auto& before = graph_.after(step);
    if (std::all_of(before.begin(), before.end(),
                    [this](uint32_t b) { return steps_[b].status == StepStatus::kDone; })) {
      progress.status = StepStatus::kRunning;
      Call(step, Op::kAction, ready);
    }
  }
  if (all_done) {
    state_ = SagaState::kSucceeded;
    // Forced, unlike the other ENDs: success is reported once this record is durable. A lazy one
    // could be lost in a crash with the steps' lazy results, and a restart past the deadline
    // would then compensate a saga that a client was told had succeeded.
    ready->persist.push_back({RecordType::kEnd, "", Durability::kForced});
    ready->finished = Outcome::kCommitted;
  }
}

Ready Saga::OnReply(uint32_t step, Op op, const CallResult& result, int64_t now_ms) {
  TXC_CHECK(step < steps_.size(), "reply for a step that does not exist");
  Ready ready;
  StepProgress& progress = steps_[step];
  if (!progress.in_flight || progress.in_flight_op != op) return ready;  // duplicate or stale
  progress.in_flight = false;
  if (!result.ok()) progress.last_error = result.reason;
  if (op == Op::kAction) {
    OnActionReply(step, result, now_ms, &ready);
  } else {
    TXC_CHECK(op == Op::kCompensate, "a saga sends actions and compensations only");
    OnCompensateReply(step, result, &ready);
  }
  CheckInvariants();
  return ready;
}

void Saga::OnActionReply(uint32_t step, const CallResult& result, int64_t now_ms, Ready* ready) {
  StepProgress& progress = steps_[step];
  switch (result.outcome) {
    case CallOutcome::kOk:
      progress.status = StepStatus::kDone;
      progress.last_error.clear();
      ready->persist.push_back(
          {RecordType::kProgress, EncodeProgress(step, StepStatus::kDone), Durability::kLazy});
      break;
    case CallOutcome::kRefused:
      // Idempotent participants answer a key the same way every time: a 409 did nothing, even
      // if an earlier attempt timed out. It is the only answer that says so.
      progress.status = StepStatus::kRefused;
      progress.may_have_run = false;
      break;
    case CallOutcome::kPermanent:
      progress.status = StepStatus::kRefused;  // as refused for the decision, still compensated
      break;
    case CallOutcome::kTransient:
    case CallOutcome::kUnknown:
      // A 5xx may come from a proxy while the service goes on: the step may have run.
      break;
  }
  if (state_ == SagaState::kRunning) {
    switch (result.outcome) {
      case CallOutcome::kOk:
        StartReadySteps(now_ms, ready);
        return;
      case CallOutcome::kRefused:
      case CallOutcome::kPermanent:
        DecideToCompensate("step " + std::to_string(step) + " was refused: " + result.reason,
                           ready);
        return;
      case CallOutcome::kTransient:
      case CallOutcome::kUnknown:
        if (now_ms >= deadline_ms_) {
          DecideToCompensate("the deadline passed before step " + std::to_string(step) +
                                 " succeeded: " + result.reason,
                             ready);
        } else {
          ScheduleRetry(step, Op::kAction, false, ready);
        }
        return;
    }
  }
  // The decision was made while this action was out: it is not retried; its step is
  // compensated (if it may have run) once the steps after it are.
  if (progress.status == StepStatus::kRunning && !progress.may_have_run) {
    progress.status = StepStatus::kSkipped;
  }
  CompensateWhatIsReady(ready);
}

void Saga::OnCompensateReply(uint32_t step, const CallResult& result, Ready* ready) {
  StepProgress& progress = steps_[step];
  TXC_CHECK(state_ == SagaState::kCompensating, "compensations only after the decision");
  switch (result.outcome) {
    case CallOutcome::kOk:
      progress.status = StepStatus::kCompensated;
      progress.needs_operator = false;
      progress.last_error.clear();
      ready->persist.push_back({RecordType::kProgress,
                                EncodeProgress(step, StepStatus::kCompensated), Durability::kLazy});
      CompensateWhatIsReady(ready);
      return;
    case CallOutcome::kTransient:
    case CallOutcome::kUnknown:
      ScheduleRetry(step, Op::kCompensate, false, ready);
      return;
    case CallOutcome::kRefused:
    case CallOutcome::kPermanent:
      // A compensation must not be refused: a person has to look. Keep trying slowly in case it
      // was a passing misconfiguration; the steps before this one wait.
      progress.needs_operator = true;
      ScheduleRetry(step, Op::kCompensate, true, ready);
      return;
  }
}

Ready Saga::OnRetryDue(uint32_t step, uint64_t token, int64_t now_ms) {
  TXC_CHECK(step < steps_.size(), "retry for a step that does not exist");
  Ready ready;
  StepProgress& progress = steps_[step];
  if (token != progress.retry_token || !progress.awaiting_retry || progress.in_flight ||
      IsFinished()) {
    return ready;  // stale
  }
  progress.awaiting_retry = false;
  if (state_ == SagaState::kRunning) {
    if (now_ms >= deadline_ms_) {
      DecideToCompensate("the deadline passed before step " + std::to_string(step) +
                             " succeeded: " + progress.last_error,
                         &ready);
    } else {
      Call(step, Op::kAction, &ready);
    }
  } else {
    CompensateWhatIsReady(&ready);
  }
  CheckInvariants();
  return ready;
}

Ready Saga::OnDeadline(int64_t now_ms) {
  Ready ready;
  if (state_ == SagaState::kRunning && now_ms >= deadline_ms_) {
    std::string waiting;
    for (uint32_t step = 0; step < steps_.size(); ++step) {
      if (steps_[step].status != StepStatus::kDone) {
        waiting += (waiting.empty() ? "" : ", ") + std::to_string(step);
      }
    }
    DecideToCompensate("the deadline passed with steps " + waiting + " not done", &ready);
  }
  CheckInvariants();
  return ready;
}

std::optional<Ready> Saga::OnOperatorAbort(int64_t /*now_ms*/) {
  if (state_ != SagaState::kRunning) return std::nullopt;
  Ready ready;
  DecideToCompensate("aborted by an operator", &ready);
  CheckInvariants();
  return ready;
}

Result<Ready> Saga::OnOperatorResolve(uint32_t step, Outcome outcome, int64_t /*now_ms*/) {
  TXC_CHECK(step < steps_.size(), "resolve of a step that does not exist");
  if (state_ == SagaState::kRunning) {
    return Status::FailedPrecondition(
        "the saga is running forward: abort it to compensate, or wait for its steps");
  }
  if (IsFinished()) return Status::FailedPrecondition("the saga is finished");
  if (outcome != Outcome::kAborted) {
    return Status::FailedPrecondition(
        "the saga is compensating: a step can only be resolved as aborted (undone by hand)");
  }
  StepProgress& progress = steps_[step];
  if (!NeedsCompensation(step)) {
    return Status::FailedPrecondition(std::string("the step needs no compensation (it is ") +
                                      StepStatusName(progress.status) + ")");
  }
  progress.in_flight = false;
  progress.awaiting_retry = false;
  ++progress.retry_token;
  progress.status = StepStatus::kCompensated;
  progress.needs_operator = false;
  Ready ready;
  ready.persist.push_back(
      {RecordType::kProgress, EncodeProgress(step, StepStatus::kCompensated), Durability::kForced});
  CompensateWhatIsReady(&ready);
  CheckInvariants();
  return ready;
}

void Saga::DecideToCompensate(std::string reason, Ready* ready) {
  TXC_CHECK(state_ == SagaState::kRunning, "the decision to compensate is made once");
  state_ = SagaState::kCompensating;
  decision_reason_ = std::move(reason);
  std::vector<uint32_t> listed;
  for (uint32_t step = 0; step < steps_.size(); ++step) {
    StepProgress& progress = steps_[step];
    // Action retries are void now; an action still out is settled after its reply.
    ++progress.retry_token;
    progress.awaiting_retry = false;
    const bool action_out = progress.in_flight && progress.in_flight_op == Op::kAction;
    if (action_out || NeedsCompensation(step)) {
      listed.push_back(step);
    } else if (progress.status == StepStatus::kPending || progress.status == StepStatus::kRunning) {
      progress.status = StepStatus::kSkipped;
    }
  }
  ready->persist.push_back(
      {RecordType::kDecision, EncodeCompensate(listed, decision_reason_), Durability::kForced});
  CompensateWhatIsReady(ready);
}

bool Saga::NeedsCompensation(uint32_t step) const {
  const StepProgress& progress = steps_[step];
  return progress.may_have_run && progress.status != StepStatus::kCompensated;
}

bool Saga::SettledForCompensation(uint32_t step) const {
  return !steps_[step].in_flight && !NeedsCompensation(step);
}

void Saga::CompensateWhatIsReady(Ready* ready) {
  TXC_CHECK(state_ == SagaState::kCompensating, "compensations only after the decision");
  for (uint32_t step = 0; step < steps_.size(); ++step) {
    StepProgress& progress = steps_[step];
    if (progress.in_flight || progress.awaiting_retry || !NeedsCompensation(step)) continue;
    const auto& later = graph_.dependents(step);
    if (!std::all_of(later.begin(), later.end(),
                     [this](uint32_t t) { return SettledForCompensation(t); })) {
      continue;
    }
    progress.status = StepStatus::kCompensating;
    Call(step, Op::kCompensate, ready);
  }
  FinishIfDone(ready);
}

void Saga::Call(uint32_t step, Op op, Ready* ready) {
  TXC_CHECK(op != Op::kAction || state_ == SagaState::kRunning,
            "no action is sent after the decision to compensate");
  StepProgress& progress = steps_[step];
  if (op == Op::kAction) progress.may_have_run = true;  // until a 409 says otherwise
  progress.Call(step, op, ready);
}

void Saga::ScheduleRetry(uint32_t step, Op op, bool longest, Ready* ready) {
  steps_[step].ScheduleRetry(step, op, longest, ready);
}

void Saga::FinishIfDone(Ready* ready) {
  if (state_ != SagaState::kCompensating) return;
  for (uint32_t step = 0; step < steps_.size(); ++step) {
    if (steps_[step].in_flight || NeedsCompensation(step)) return;
  }
  for (auto& progress : steps_) {
    if (progress.status == StepStatus::kPending || progress.status == StepStatus::kRunning) {
      progress.status = StepStatus::kSkipped;
    }
  }
  state_ = SagaState::kCompensated;
  ready->persist.push_back({RecordType::kEnd, "", Durability::kLazy});
  ready->finished = Outcome::kAborted;
}

void Saga::CheckInvariants() const {
  for (uint32_t step = 0; step < steps_.size(); ++step) {
    const StepProgress& progress = steps_[step];
    if (state_ == SagaState::kRunning || state_ == SagaState::kSucceeded) {
      TXC_CHECK(progress.status != StepStatus::kCompensated &&
                    progress.status != StepStatus::kCompensating &&
                    (!progress.in_flight || progress.in_flight_op == Op::kAction),
                "nothing is compensated before the decision");
    }
    if (progress.status == StepStatus::kDone || progress.status == StepStatus::kRunning) {
      // A step runs only after the steps it waits for (their records may be lost after a
      // restart, in which case they are re-run and the step may run again: idempotent).
      if (state_ == SagaState::kRunning && progress.in_flight) {
        for (uint32_t before : graph_.after(step)) {
          TXC_CHECK(steps_[before].status == StepStatus::kDone,
                    "an action is sent only after the steps it waits for are done");
        }
      }
    }
    if (progress.in_flight && progress.in_flight_op == Op::kCompensate) {
      for (uint32_t later : graph_.dependents(step)) {
        TXC_CHECK(SettledForCompensation(later),
                  "a step is compensated only after every step that ran after it");
      }
    }
    if (state_ == SagaState::kSucceeded) {
      TXC_CHECK(progress.status == StepStatus::kDone, "a saga succeeds when every step is done");
    }
    if (state_ == SagaState::kCompensated) {
      TXC_CHECK(!progress.in_flight && !NeedsCompensation(step),
                "a compensated saga has nothing left that may have run");
    }
  }
}

}  // namespace txc::sagas
