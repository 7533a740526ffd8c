// The order of a saga's steps, as submitted: defaults, DAGs and every malformed `after`.
#include "sagas/saga_graph.h"

#include <gtest/gtest.h>

namespace txc::sagas {
namespace {

using After = std::optional<std::vector<std::string>>;

TEST(SagaGraphTest, WithoutAfterEachStepWaitsForThePreviousOne) {
  auto graph = SagaGraph::Build({"order", "payment", "stock"}, {After{}, After{}, After{}});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_TRUE(graph->after(0).empty());
  EXPECT_EQ(graph->after(1), (std::vector<uint32_t>{0}));
  EXPECT_EQ(graph->after(2), (std::vector<uint32_t>{1}));
  EXPECT_EQ(graph->dependents(0), (std::vector<uint32_t>{1}));
  EXPECT_TRUE(graph->dependents(2).empty());
}

TEST(SagaGraphTest, EmptyAfterStartsAtOnceAndNamesMakeADag) {
  auto graph =
      SagaGraph::Build({"order", "payment", "stock", "notify"},
                       {After{}, After{{"order"}}, After{{"order"}}, After{{"payment", "stock"}}});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->dependents(0), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(graph->after(3), (std::vector<uint32_t>{1, 2}));
  auto parallel = SagaGraph::Build({"a", "b"}, {After{}, After{std::vector<std::string>{}}});
  ASSERT_TRUE(parallel.ok());
  EXPECT_TRUE(parallel->after(1).empty());
}

TEST(SagaGraphTest, UnknownNameIsRefusedNamingTheField) {
  auto graph = SagaGraph::Build({"a", "b"}, {After{}, After{{"a", "nope"}}});
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().message(), "branches[1].after[1]: names no step ('nope')");
}

TEST(SagaGraphTest, SelfReferenceAndRepeatsAreRefused) {
  auto self = SagaGraph::Build({"a", "b"}, {After{}, After{{"b"}}});
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.status().message().find("branches[1].after[0]: a step cannot wait for itself"),
            std::string::npos);
  auto twice = SagaGraph::Build({"a", "b"}, {After{}, After{{"a", "a"}}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("branches[1].after[1]: 'a' is named twice"),
            std::string::npos);
}

TEST(SagaGraphTest, CyclesAreRefusedNamingAStepOnTheCycle) {
  // a waits for c, b for a, c for b: a cycle of three; d hangs behind it.
  auto graph = SagaGraph::Build({"a", "b", "c", "d"},
                                {After{{"c"}}, After{{"a"}}, After{{"b"}}, After{{"c"}}});
  ASSERT_FALSE(graph.ok());
  const std::string message = graph.status().message();
  EXPECT_NE(message.find("form a cycle"), std::string::npos) << message;
  EXPECT_TRUE(message.starts_with("branches[0].after") ||
              message.starts_with("branches[1].after") || message.starts_with("branches[2].after"))
      << message;
  // The default (previous step) can close a cycle too: a waits for b, b (default) for a.
  auto implicit = SagaGraph::Build({"a", "b"}, {After{{"b"}}, After{}});
  ASSERT_FALSE(implicit.ok());
  EXPECT_NE(implicit.status().message().find("cycle"), std::string::npos);
}

}  // namespace
}  // namespace txc::sagas
