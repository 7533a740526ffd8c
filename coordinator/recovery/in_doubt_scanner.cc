#include "coordinator/recovery/in_doubt_scanner.h"

#include <chrono>
#include <cstdio>

namespace txc::recovery {

const char* InDoubtActionName(InDoubtAction action) {
  switch (action) {
    case InDoubtAction::kLeave:
      return "leave";
    case InDoubtAction::kCommit:
      return "commit";
    case InDoubtAction::kRollback:
      return "rollback";
  }
  return "unknown";
}

InDoubtAction DecideInDoubt(bool active, bool commit_decided) {
  if (active) return InDoubtAction::kLeave;
  if (commit_decided) return InDoubtAction::kCommit;
  return InDoubtAction::kRollback;
}

InDoubtScanner::InDoubtScanner(std::vector<participants::database::DatabaseResource*> resources,
                               Owner owner, OnResolved on_resolved, InDoubtScannerOptions options)
    : resources_(std::move(resources)),
      owner_(std::move(owner)),
      on_resolved_(std::move(on_resolved)),
      options_(options) {}

InDoubtScanner::~InDoubtScanner() { Stop(); }

InDoubtScanner::Pass InDoubtScanner::ScanOnce() {
  Pass pass;
  const auto timeout = std::chrono::milliseconds(options_.call_timeout_ms);
  for (auto* resource : resources_) {
    auto listed = resource->ListInDoubt(timeout);
    if (!listed.ok()) {
      pass.errors.push_back(resource->name() + ": " + listed.status().ToString());
      continue;
    }
    for (const auto& xid : *listed) {
      const InDoubtAction action =
          DecideInDoubt(owner_.is_active(xid.gid), owner_.is_commit_decided(xid.gid));
      if (action == InDoubtAction::kLeave) {
        ++pass.left_to_engine;
        continue;
      }
      const auto result = action == InDoubtAction::kCommit
                              ? resource->CommitPrepared(xid.gid, xid.branch_index, timeout)
                              : resource->RollbackPrepared(xid.gid, xid.branch_index, timeout);
      if (!result.ok()) {
        pass.errors.push_back(resource->name() + " " + xid.xid + ": " + result.reason);
        continue;
      }
      (action == InDoubtAction::kCommit ? pass.committed : pass.rolled_back) += 1;
      std::fprintf(stderr, "txc: in-doubt scan: %s %s on %s\n", InDoubtActionName(action),
                   xid.xid.c_str(), resource->name().c_str());
      if (on_resolved_) on_resolved_(resource->name(), InDoubtActionName(action));
    }
  }
  return pass;
}

void InDoubtScanner::Start() {
  thread_ = std::thread([this] {
    const auto started = std::chrono::steady_clock::now();
    std::unique_lock lock(mu_);
    while (!stopping_) {
      const bool startup = std::chrono::steady_clock::now() - started <
                           std::chrono::milliseconds(options_.startup_period_ms);
      cv_.wait_for(lock, std::chrono::milliseconds(startup ? options_.startup_interval_ms
                                                           : options_.interval_ms));
      if (stopping_) break;
      lock.unlock();
      const Pass pass = ScanOnce();
      for (const auto& error : pass.errors) {
        std::fprintf(stderr, "txc: in-doubt scan: %s\n", error.c_str());
      }
      lock.lock();
    }
  });
}

void InDoubtScanner::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace txc::recovery
