#include "coordinator/common/check.h"

#include <cstdio>
#include <cstdlib>

namespace txc {

void CheckFailed(const char* condition, const char* file, int line, const char* what) {
  std::fprintf(stderr, "txc: invariant broken at %s:%d: %s (%s)\n", file, line, condition, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace txc
