#include "sagas/saga_graph.h"

#include <algorithm>
#include <map>

#include "coordinator/common/check.h"

namespace txc::sagas {

SagaGraph::SagaGraph(std::vector<std::vector<uint32_t>> after)
    : after_(std::move(after)), dependents_(after_.size()) {
  for (uint32_t step = 0; step < after_.size(); ++step) {
    for (uint32_t before : after_[step]) {
      TXC_CHECK(before < after_.size() && before != step, "a dependency names another step");
      dependents_[before].push_back(step);
    }
  }
}

SagaGraph SagaGraph::FromIndices(std::vector<std::vector<uint32_t>> after) {
  SagaGraph graph(std::move(after));
  TXC_CHECK(!graph.FindCycle(), "a saga's steps form no cycle");
  return graph;
}

Result<SagaGraph> SagaGraph::Build(
    const std::vector<std::string>& names,
    const std::vector<std::optional<std::vector<std::string>>>& after) {
  TXC_CHECK(names.size() == after.size(), "one `after` per step");
  std::map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < names.size(); ++i) index.emplace(names[i], i);
  std::vector<std::vector<uint32_t>> edges(names.size());
  for (uint32_t step = 0; step < names.size(); ++step) {
    const std::string field = "branches[" + std::to_string(step) + "].after";
    if (!after[step]) {
      if (step > 0) edges[step].push_back(step - 1);
      continue;
    }
    for (size_t j = 0; j < after[step]->size(); ++j) {
      const std::string& name = (*after[step])[j];
      const std::string item = field + "[" + std::to_string(j) + "]";
      auto found = index.find(name);
      if (found == index.end()) {
        return Status::InvalidArgument(item + ": names no step ('" + name + "')");
      }
      if (found->second == step) {
        return Status::InvalidArgument(item + ": a step cannot wait for itself ('" + name + "')");
      }
      if (std::find(edges[step].begin(), edges[step].end(), found->second) != edges[step].end()) {
        return Status::InvalidArgument(item + ": '" + name + "' is named twice");
      }
      edges[step].push_back(found->second);
    }
  }
  SagaGraph graph(std::move(edges));
  if (auto on_cycle = graph.FindCycle()) {
    return Status::InvalidArgument("branches[" + std::to_string(*on_cycle) +
                                   "].after: the steps' `after` lists form a cycle through '" +
                                   names[*on_cycle] + "'");
  }
  return graph;
}

std::optional<uint32_t> SagaGraph::FindCycle() const {
  // Kahn's algorithm: whatever cannot be ordered lies on (or behind) a cycle.
  std::vector<uint32_t> waiting(after_.size());
  std::vector<uint32_t> ready;
  for (uint32_t step = 0; step < after_.size(); ++step) {
    waiting[step] = static_cast<uint32_t>(after_[step].size());
    if (waiting[step] == 0) ready.push_back(step);
  }
  size_t ordered = 0;
  while (!ready.empty()) {
    const uint32_t step = ready.back();
    ready.pop_back();
    ++ordered;
    for (uint32_t next : dependents_[step]) {
      if (--waiting[next] == 0) ready.push_back(next);
    }
  }
  if (ordered == after_.size()) return std::nullopt;
  // Name a step that is really on the cycle: walk back from an unordered one until a step
  // repeats.
  uint32_t step = 0;
  while (waiting[step] == 0) ++step;
  std::vector<bool> seen(after_.size(), false);
  while (!seen[step]) {
    seen[step] = true;
    for (uint32_t before : after_[step]) {
      if (waiting[before] != 0) {
        step = before;
        break;
      }
    }
  }
  return step;
}

}  // namespace txc::sagas
