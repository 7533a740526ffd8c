#include "examples/shop/common/holding.h"

#include "coordinator/common/check.h"

namespace txc::shop {

std::optional<Holding> Move(Holding holding, const Movement& movement, int64_t quantity) {
  TXC_CHECK(quantity > 0, "a movement moves a positive quantity");
  int64_t available = 0;
  int64_t held = 0;
  if (__builtin_mul_overflow(quantity, movement.available_sign, &available) ||
      __builtin_add_overflow(holding.available, available, &available) ||
      __builtin_mul_overflow(quantity, movement.held_sign, &held) ||
      __builtin_add_overflow(holding.held, held, &held)) {
    return std::nullopt;
  }
  if (available < 0 || held < 0) return std::nullopt;
  return Holding{available, held};
}

int64_t NetTaken(const Movement& movement, int64_t quantity) {
  return -(movement.available_sign + movement.held_sign) * quantity;
}

}  // namespace txc::shop
