// The shop demo as users meet it (examples/shop/README.md "The demo"): `scripts/demo.sh
// --build-dir <this build>` starts its own throwaway PostgreSQL and MariaDB (scripts/dbs.sh),
// txcoord and the three services, submits the three sagas of examples/shop/sagas and checks every
// outcome and final number itself. It must exit 0 and say that every check passed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <optional>
#include <string>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace txc::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The databases start in seconds and the sagas take milliseconds; this is for a loaded machine.
constexpr std::chrono::seconds kDemoTimeout{240};
// On SIGTERM the script stops what it started (the servers' fast shutdown, then SIGKILL).
constexpr std::chrono::seconds kCleanupTimeout{60};

TEST(DemoScriptTest, RunsOnTheBuiltBinariesAndEveryCheckPasses) {
  TempDir scratch;
  ChildProcess::Options options;
  options.program = TXC_SOURCE_DIR "/scripts/demo.sh";
  options.args = {"--build-dir", TXC_BINARY_DIR};
  options.environment = CurrentEnvironment();
  // A user's shell has none of the test runner's settings (its database servers, a crash point):
  // the demo starts and configures everything it needs itself.
  for (auto it = options.environment.begin(); it != options.environment.end();) {
    it = it->first.starts_with("TXC_") || it->first.starts_with("SHOP_")
             ? options.environment.erase(it)
             : std::next(it);
  }
  options.stdout_path = scratch.File("demo.stdout");
  options.stderr_path = scratch.File("demo.stderr");
  ChildProcess demo(options);

  std::optional<int> status = demo.WaitForExit(kDemoTimeout);
  if (!status.has_value()) {
    demo.Signal(SIGTERM);  // let it stop its servers and services
    demo.WaitForExit(kCleanupTimeout);
  }
  const std::string out = ReadFileOrEmpty(options.stdout_path);
  const std::string err = ReadFileOrEmpty(options.stderr_path);
  const std::string output = "---- stdout ----\n" + out + "---- stderr ----\n" + err;
  ASSERT_TRUE(status.has_value()) << "demo.sh did not finish within " << kDemoTimeout.count()
                                  << " s\n"
                                  << output;
  EXPECT_EQ(*status, 0) << output;
  EXPECT_THAT(out, HasSubstr("All checks passed.")) << output;
  EXPECT_THAT(out, Not(HasSubstr("NOT OK"))) << output;
  // It did check things: the outcome of every transaction it submitted and the final numbers
  // (which checks is the script's business; here only that there were some and none failed).
  size_t checks = 0;
  for (size_t at = out.find("  ok: "); at != std::string::npos; at = out.find("  ok: ", at + 1)) {
    ++checks;
  }
  EXPECT_GE(checks, 6u) << output;
  EXPECT_THAT(out, HasSubstr("ok: state = succeeded")) << output;
  EXPECT_THAT(out, HasSubstr("ok: state = compensated")) << output;
}

}  // namespace
}  // namespace txc::testing
