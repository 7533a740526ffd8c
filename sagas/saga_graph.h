// SagaGraph: the order of a saga's steps (API.md: each step runs after the steps named in its
// `after`; without `after`, after the previous step; `after: []` starts at once). Checked once,
// when a saga is submitted, so that the state machine can rely on a graph without cycles.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::sagas {

class SagaGraph {
 public:
  // `after[i]`: the names step i waits for, or nullopt for the default (the previous step).
  // InvalidArgument naming the field (`branches[2].after[0]: ...`) for an unknown name, a step
  // that waits for itself, a name given twice, or a cycle.
  static Result<SagaGraph> Build(const std::vector<std::string>& names,
                                 const std::vector<std::optional<std::vector<std::string>>>& after);

  // A graph from indices (tests, the simulator); every index must be below `step_count` and the
  // graph acyclic (checked).
  static SagaGraph FromIndices(std::vector<std::vector<uint32_t>> after);

  uint32_t size() const { return static_cast<uint32_t>(after_.size()); }
  const std::vector<uint32_t>& after(uint32_t step) const { return after_[step]; }
  // The steps that wait for `step`: they are compensated before it.
  const std::vector<uint32_t>& dependents(uint32_t step) const { return dependents_[step]; }

 private:
  explicit SagaGraph(std::vector<std::vector<uint32_t>> after);
  // The index of a step on a cycle, or nullopt when there is none.
  std::optional<uint32_t> FindCycle() const;

  std::vector<std::vector<uint32_t>> after_;
  std::vector<std::vector<uint32_t>> dependents_;
};

}  // namespace txc::sagas
