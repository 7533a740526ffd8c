// The seeded simulation of sagas: random step DAGs, refused actions, refused compensations,
// coordinator crashes, lost, late and duplicated messages. A failure prints its seed; set
// TXC_SIM_SEED=<seed> to replay just that world, TXC_SIM_SEEDS=<n> to run more or fewer.
#include <gtest/gtest.h>

#include <string>

#include "tests/sim/saga_model.h"
#include "tests/sim/sim_world.h"

namespace txc::sim {
namespace {

std::unique_ptr<ProtocolModel> Model() { return std::make_unique<SagaModel>(); }

TEST(SagaSimTest, InvariantsHoldAcrossSeeds) {
  const SwarmResult swarm = RunSwarm(Model, WorldOptions{}, 10'000);
  ASSERT_EQ(swarm.failure, "");
  // The faults must really have been exercised, or the run proves nothing.
  EXPECT_EQ(ReportSwarm(swarm, "saga", "succeeded", "compensated"), "");
}

TEST(SagaSimTest, SameSeedReplaysTheSameWorld) {
  SimWorld first(777, WorldOptions{}, Model());
  SimWorld second(777, WorldOptions{}, Model());
  ASSERT_EQ(first.Run(), "");
  ASSERT_EQ(second.Run(), "");
  EXPECT_EQ(first.trace(), second.trace());
}

TEST(SagaSimTest, WithoutFaultsEverySagaSucceeds) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SimWorld world(seed, CalmWorld(), Model());
    ASSERT_EQ(world.Run(), "");
    EXPECT_EQ(world.committed(), CalmWorld().transactions) << "seed " << seed;
  }
}

}  // namespace
}  // namespace txc::sim
