// A DecisionLog whose health the test sets; it stores nothing (the server tests need only health
// and kind).
#pragma once

#include <mutex>
#include <string>

#include "coordinator/log/decision_log.h"

namespace txc::testing {

class FakeDecisionLog final : public log::DecisionLog {
 public:
  Status Append(const log::LogRecord&, log::Durability) override { return Health(); }
  void AppendAsync(log::LogRecord, log::Durability, log::AppendCallback done) override {
    done(Health());
  }
  Status Compact() override { return Health(); }
  bool Healthy() const override { return Health().ok(); }
  Status Health() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return health_;
  }
  std::string Kind() const override { return "fake"; }
  void Close() override {}

  void Poison(Status why) {
    std::lock_guard<std::mutex> lock(mutex_);
    health_ = std::move(why);
  }

 private:
  mutable std::mutex mutex_;
  Status health_;
};

}  // namespace txc::testing
