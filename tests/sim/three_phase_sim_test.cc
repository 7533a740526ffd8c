// The seeded simulation of 3PC: no votes, coordinator crashes (before and after the pre-commit),
// lost, late and duplicated messages. A failure prints its seed; set TXC_SIM_SEED=<seed> to
// replay just that world, TXC_SIM_SEEDS=<n> to run more or fewer.
#include <gtest/gtest.h>

#include <string>

#include "tests/sim/sim_world.h"
#include "tests/sim/three_phase_model.h"

namespace txc::sim {
namespace {

std::unique_ptr<ProtocolModel> Model() { return std::make_unique<ThreePhaseModel>(); }

TEST(ThreePhaseSimTest, InvariantsHoldAcrossSeeds) {
  const SwarmResult swarm = RunSwarm(Model, WorldOptions{}, 10'000);
  ASSERT_EQ(swarm.failure, "");
  // The faults must really have been exercised, or the run proves nothing.
  EXPECT_EQ(ReportSwarm(swarm, "3pc", "committed", "aborted"), "");
}

TEST(ThreePhaseSimTest, WithoutFaultsEveryYesVoteCommits) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SimWorld world(seed, CalmWorld(), Model());
    ASSERT_EQ(world.Run(), "");
    EXPECT_EQ(world.committed(), CalmWorld().transactions) << "seed " << seed;
  }
}

}  // namespace
}  // namespace txc::sim
