#include "tcc/tcc.h"

namespace txc::tcc {

const protocol::TwoPhaseVocabulary& TccVocabulary() {
  static const protocol::TwoPhaseVocabulary kTcc{
      participants::Op::kTry,
      participants::Op::kConfirm,
      participants::Op::kCancel,
      {"trying", "confirming", "cancelling", "confirmed", "cancelled"},
      {"pending", "tried", "refused", "confirmed", "cancelled"},
  };
  return kTcc;
}

}  // namespace txc::tcc
