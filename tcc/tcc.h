// TCC (try / confirm / cancel) as a state machine: two-phase commit whose phases are business
// operations. Every branch's try runs in parallel; all tried → the CONFIRM decision is forced,
// then every branch is confirmed; a refused try (409), a permanent error or the deadline → the
// CANCEL decision is forced, then every branch is cancelled, those whose try is unanswered or was
// never sent included (the barrier, tcc/barrier, makes a cancel without its try a recorded no-op
// and refuses the late try). A cancel goes to a branch only after its try has answered. Phase 2
// is retried until it succeeds; a permanent failure there marks the branch as needing an
// operator. Recovery: CONFIRM decided → confirm all; otherwise cancel all.
//
// The machine is protocol::TwoPhaseCommit with TCC's vocabulary: one implementation of the rules
// above, tested and simulated for both protocols.
#pragma once

#include "coordinator/protocol/two_phase_commit.h"

namespace txc::tcc {

// try / confirm / cancel; states trying, confirming, cancelling, confirmed, cancelled; branch
// states pending, tried, refused, confirmed, cancelled.
const protocol::TwoPhaseVocabulary& TccVocabulary();

}  // namespace txc::tcc
