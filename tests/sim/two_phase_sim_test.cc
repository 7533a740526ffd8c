// The seeded simulation of 2PC: thousands of worlds with crashes, lost, late and duplicated
// messages and no votes; every invariant is checked in each. A failure prints its seed; set
// TXC_SIM_SEED=<seed> to replay just that world, TXC_SIM_SEEDS=<n> to run more or fewer.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/sim/two_phase_world.h"

namespace txc::sim {
namespace {

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

TEST(TwoPhaseSimTest, InvariantsHoldAcrossSeeds) {
  const char* one = std::getenv("TXC_SIM_SEED");
  const uint64_t first = one != nullptr ? std::strtoull(one, nullptr, 10) : 1;
  const uint64_t count = one != nullptr ? 1 : EnvOr("TXC_SIM_SEEDS", 10'000);
  int crashes = 0;
  int committed = 0;
  int aborted = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    TwoPhaseWorld world(seed, WorldOptions{});
    const std::string failure = world.Run();
    ASSERT_EQ(failure, "");
    crashes += world.crashes();
    committed += world.committed();
    aborted += world.aborted();
  }
  std::printf("2pc simulation: %llu seeds, %d coordinator crashes, %d committed, %d aborted\n",
              static_cast<unsigned long long>(count), crashes, committed, aborted);
  if (count >= 1000) {
    // The faults must really have been exercised, or the run proves nothing.
    EXPECT_GT(crashes, static_cast<int>(count));
    EXPECT_GT(committed, static_cast<int>(count / 4));
    EXPECT_GT(aborted, static_cast<int>(count / 4));
  }
}

TEST(TwoPhaseSimTest, SameSeedReplaysTheSameWorld) {
  TwoPhaseWorld first(4242, WorldOptions{});
  TwoPhaseWorld second(4242, WorldOptions{});
  ASSERT_EQ(first.Run(), "");
  ASSERT_EQ(second.Run(), "");
  EXPECT_EQ(first.trace(), second.trace());
}

TEST(TwoPhaseSimTest, WithoutFaultsEveryYesVoteCommits) {
  WorldOptions calm;
  calm.crash_probability = 0;
  calm.drop_probability = 0;
  calm.transient_probability = 0;
  calm.duplicate_probability = 0;
  calm.vote_no_probability = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    TwoPhaseWorld world(seed, calm);
    ASSERT_EQ(world.Run(), "");
    EXPECT_EQ(world.committed(), calm.transactions) << "seed " << seed;
    EXPECT_EQ(world.aborted(), 0) << "seed " << seed;
  }
}

}  // namespace
}  // namespace txc::sim
