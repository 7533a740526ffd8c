// InDoubtScanner: finds branches prepared in the databases under this coordinator's node_id that
// no live transaction owns (a crash between PREPARE and the log, a prepare that landed after its
// timeout) and settles them, so nothing prepared keeps holding locks. Runs once at start-up,
// before /readyz turns 200, then every `interval_ms`.
//
// The decision table, for a prepared xid of gid G:
//   G is active in the engine          → leave it: the engine is driving it to its decision
//   G has a commit decision or outcome → COMMIT PREPARED (the decision is durable; carry it out)
//   anything else                      → ROLLBACK PREPARED (presumed abort: no commit was ever
//                                        logged for G, so no client was told it committed)
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "participants/database/database_resource.h"

namespace txc::recovery {

enum class InDoubtAction { kLeave, kCommit, kRollback };
const char* InDoubtActionName(InDoubtAction action);  // "leave", "commit", "rollback"

// The table above, as a function (tests enumerate it).
InDoubtAction DecideInDoubt(bool active, bool commit_decided);

struct InDoubtScannerOptions {
  int64_t interval_ms = 30'000;
  int64_t call_timeout_ms = 10'000;
  // Right after a restart, a statement the previous process sent may still be running in a
  // database session that does not know its client is gone, and its PREPARE can land after
  // recovery has already aborted that transaction. Such a branch can appear for as long as a
  // database call may last, so for that long the scan runs every startup_interval_ms.
  int64_t startup_interval_ms = 1'000;
  int64_t startup_period_ms = 65'000;  // above the longest database call (60 s)
};

class InDoubtScanner {
 public:
  struct Owner {
    std::function<bool(const std::string& gid)> is_active;
    std::function<bool(const std::string& gid)> is_commit_decided;
  };
  // Called for each branch settled: (resource name, "commit" | "rollback").
  using OnResolved = std::function<void(const std::string& resource, const std::string& action)>;

  InDoubtScanner(std::vector<participants::database::DatabaseResource*> resources, Owner owner,
                 OnResolved on_resolved, InDoubtScannerOptions options = {});
  ~InDoubtScanner();

  struct Pass {
    int committed = 0;
    int rolled_back = 0;
    int left_to_engine = 0;
    std::vector<std::string> errors;  // per resource or branch, in words
  };
  Pass ScanOnce();

  void Start();  // the periodic scan
  void Stop();

 private:
  std::vector<participants::database::DatabaseResource*> resources_;
  Owner owner_;
  OnResolved on_resolved_;
  InDoubtScannerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace txc::recovery
