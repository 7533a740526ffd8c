// Crash points: named places in the coordinator where a chaos test can make the process die at
// once (SIGKILL, no clean-up, exactly like a power cut for everything but the disk), to prove
// that recovery from that very point is correct.
//
// Inert unless armed: TXC_CRASH_AT=<name> arms one point; TXC_CRASH_AFTER=<n> (default 1) dies on
// its n-th passage. Reading the environment happens once, at the first passage of any point.
#pragma once

namespace txc {

// Dies here if `name` is the armed point and its count is reached.
void CrashPoint(const char* name);

// The names the coordinator uses, per protocol (tests iterate over them). 2PC:
inline constexpr const char* kCrashPoints[] = {
    "after_begin_durable",     // BEGIN is on disk, no participant was called yet
    "after_prepare_reply",     // a prepare has been answered, before the coordinator acts on it
    "after_decision_durable",  // the decision is on disk, phase 2 has not started
    "after_commit_reply",      // a branch acknowledged its commit, others may not have
    "after_abort_reply",       // a branch acknowledged its abort
    "before_end",              // every branch is done, END not yet written
};

// TCC: the same places, with TCC's operations.
inline constexpr const char* kTccCrashPoints[] = {
    "after_begin_durable", "after_try_reply",    "after_decision_durable",
    "after_confirm_reply", "after_cancel_reply", "before_end",
};

// Sagas: after_decision_durable is the COMPENSATE decision.
inline constexpr const char* kSagaCrashPoints[] = {
    "after_begin_durable",    "after_action_reply", "after_decision_durable",
    "after_compensate_reply", "before_end",
};

}  // namespace txc
