// TXC_CHECK: invariants that stay on in release builds. A broken invariant in a coordinator is a
// programmer error; continuing could break a promise made to a client, so the process stops with
// the condition and its place. Environment failures are returned as Status, never checked.
#pragma once

namespace txc {
[[noreturn]] void CheckFailed(const char* condition, const char* file, int line, const char* what);
}  // namespace txc

#define TXC_CHECK(condition, what)                                \
  do {                                                            \
    if (!(condition)) [[unlikely]] {                              \
      ::txc::CheckFailed(#condition, __FILE__, __LINE__, (what)); \
    }                                                             \
  } while (0)
