// Test hooks for the e2e and chaos tests: make a service fail or slow down on purpose, the way a
// real one does when its database is gone or its machine is overloaded.
//
//   POST /faults {"fail_next": N, "status": 503}   the next N business calls answer `status`
//                                                   without touching the database
//   POST /faults {"fail_next": N, "after_commit": true}
//                                                   ... run and commit, then answer `status`: the
//                                                   reply is lost, the work is done (the
//                                                   coordinator retries; the barrier dedups)
//   POST /faults {"delay_ms": M}                    every business call waits M ms first
//   GET /faults                                     the current plan and how many were injected
//   DELETE /faults                                  back to normal
//
// A POST changes only the fields it carries. Business calls are the saga and TCC endpoints; the
// admin and read endpoints are never affected. Thread-safe.
#pragma once

#include <Poco/JSON/Object.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "coordinator/common/status.h"
#include "coordinator/server/router.h"

namespace txc::shop {

class FaultInjector {
 public:
  struct Plan {
    int64_t fail_next = 0;      // business calls still to fail
    int status = 503;           // what they answer
    bool after_commit = false;  // fail after the work is committed instead of before
    int64_t delay_ms = 0;       // added to every business call
  };

  // What one business call must do.
  struct Fault {
    std::chrono::milliseconds delay{0};
    std::optional<int> fail_before;  // answer this status, touch nothing
    std::optional<int> fail_after;   // do the work, then answer this status
  };

  static constexpr int64_t kFailNextMax = 1'000'000;
  static constexpr int64_t kDelayMsMax = 60'000;

  // Applies a POST /faults body; InvalidArgument naming the field, and nothing changed, when a
  // field is wrong.
  Status Configure(const Poco::JSON::Object& request);
  void Clear();
  Plan plan() const;
  uint64_t injected_total() const;

  // Called once at the start of every business call; consumes one of fail_next.
  Fault Take();

 private:
  mutable std::mutex mutex_;
  Plan plan_;                    // guarded by mutex_
  uint64_t injected_total_ = 0;  // guarded by mutex_
};

// POST, GET and DELETE /faults.
void AddFaultRoutes(server::Router& router, FaultInjector* faults);

}  // namespace txc::shop
