// The seeded simulation of 2PC: thousands of worlds with crashes, lost, late and duplicated
// messages and no votes; every invariant is checked in each. A failure prints its seed; set
// TXC_SIM_SEED=<seed> to replay just that world, TXC_SIM_SEEDS=<n> to run more or fewer.
#include <gtest/gtest.h>

#include <string>

#include "tests/sim/sim_world.h"
#include "tests/sim/two_phase_model.h"

namespace txc::sim {
namespace {

std::unique_ptr<ProtocolModel> Model() { return std::make_unique<TwoPhaseModel>(); }

TEST(TwoPhaseSimTest, InvariantsHoldAcrossSeeds) {
  const SwarmResult swarm = RunSwarm(Model, WorldOptions{}, 10'000);
  ASSERT_EQ(swarm.failure, "");
  // The faults must really have been exercised, or the run proves nothing.
  EXPECT_EQ(ReportSwarm(swarm, "2pc", "committed", "aborted"), "");
}

TEST(TwoPhaseSimTest, SameSeedReplaysTheSameWorld) {
  SimWorld first(4242, WorldOptions{}, Model());
  SimWorld second(4242, WorldOptions{}, Model());
  ASSERT_EQ(first.Run(), "");
  ASSERT_EQ(second.Run(), "");
  EXPECT_EQ(first.trace(), second.trace());
}

TEST(TwoPhaseSimTest, WithoutFaultsEveryYesVoteCommits) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SimWorld world(seed, CalmWorld(), Model());
    ASSERT_EQ(world.Run(), "");
    EXPECT_EQ(world.committed(), CalmWorld().transactions) << "seed " << seed;
    EXPECT_EQ(world.aborted(), 0) << "seed " << seed;
  }
}

}  // namespace
}  // namespace txc::sim
