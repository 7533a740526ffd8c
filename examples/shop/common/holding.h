// The arithmetic payment and inventory share: a quantity kept in two columns, what is available
// (an account's balance, an item's stock) and what is held for a TCC try that may still be
// cancelled (frozen, reserved). Every saga and TCC operation of both services is one Movement:
//
//   saga action        available -= q                 (charge, reserve)
//   saga compensate    available += q                 (refund, release)
//   tcc try            available -= q, held += q      (freeze, reserve)
//   tcc confirm                        held -= q      (the held units are gone for good)
//   tcc cancel         available += q, held -= q      (unfreeze, release)
//
// So available + held + (what left through actions and confirms, minus what came back through
// compensations) stays equal to what was put in: the invariant the e2e and chaos tests check.
#pragma once

#include <cstdint>
#include <optional>

namespace txc::shop {

struct Holding {
  int64_t available = 0;
  int64_t held = 0;
};

struct Movement {
  const char* kind;    // the ledger's name for it: "charge", "tcc_freeze", ...
  int available_sign;  // -1, 0 or +1 times the quantity
  int held_sign;
};

// The holding after `movement` of `quantity` (> 0) units, or nullopt when a column would go below
// zero (not enough available, or less held than a confirm or cancel releases).
std::optional<Holding> Move(Holding holding, const Movement& movement, int64_t quantity);

// How much a movement takes out of the system for good: +q for an action or a confirm, -q for a
// compensation, 0 for a try or a cancel (the units stay, held or available).
int64_t NetTaken(const Movement& movement, int64_t quantity);

}  // namespace txc::shop
