// A fair comparison of txcoord with a baseline that does the same work without it: both sides
// run with the same concurrency and duration, alternately, in several rounds (odd rounds start
// with the baseline, even rounds with txcoord, so neither side always runs on a warmer or a
// quieter machine), and each side is summarised by the median of its rounds. The same holds for
// any two ways of doing the same work: `barrier` compares handlers without and with the barrier.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tools/txc-bench/load_runner.h"

namespace txc::bench {

struct ComparisonSide {
  std::string name;         // "baseline", "txcoord"
  std::string description;  // what one operation is, in a few words
  // The workers of one phase; `tag` ("B1", "T2", "BW" for a warm-up...) names the phase and
  // goes into its gids, so that no two phases ever use the same gid.
  std::function<LoadWorkerFactory(const std::string& tag)> workers;
};

struct ComparisonOptions {
  std::string scenario;  // "2pc-db": starts error messages
  std::string unit;      // "transfers/s"
  int rounds = 3;
  double seconds = 10;
  int concurrency = 8;
  double warmup_seconds = 1;
  double target_ratio = 0;  // the ratio txcoord/baseline aimed at; 0: none
  // "baseline" or "txcoord": run that side only (for profiling one side); empty: both.
  std::string only;
};

struct SideFigures {
  std::vector<LoadResult> rounds;
  double per_second = 0;  // medians over the rounds
  double p50_us = 0;
  double p99_us = 0;
  uint64_t ok = 0;  // sums over the rounds
  uint64_t errors = 0;
  std::string first_error;
};

// Warm-up of each side (printed, not counted: it opens the connection pools on both sides),
// then the rounds, a line per phase. False, after saying why on stderr, when a side's workers
// could not be set up or its warm-up did not complete a single operation.
bool RunComparison(const ComparisonOptions& options, const ComparisonSide& baseline,
                   const ComparisonSide& txcoord, SideFigures* baseline_figures,
                   SideFigures* txcoord_figures);

// The medians of both sides and the ratio of their rates, txcoord's over the baseline's (named
// by the sides' names: "ratio    txcoord/baseline 0.30").
void PrintComparison(const ComparisonOptions& options, const ComparisonSide& baseline,
                     const ComparisonSide& txcoord, const SideFigures& baseline_figures,
                     const SideFigures& txcoord_figures);

// Parses `text`, the value of `option`, as a number from min to max; false after saying what is
// wrong on stderr.
bool ParseNumber(const std::string& scenario, const std::string& option, const std::string& text,
                 double min, double max, double* out);

// A prefix for the gids of one bench run: "tb" and 8 random hex digits, so that runs against
// the same coordinator and databases never reuse a gid.
std::string RunGidPrefix();

// "<prefix>-<tag>-<index>-": the start of the gids of worker `index` in phase `tag`; each worker
// numbers its transactions after it.
std::string PhaseGidBase(const std::string& prefix, const std::string& tag, int index);

// The options every comparison scenario takes: --seconds, --concurrency, --rounds, --warmup,
// --only and --timeout-ms. kNotMine: the scenario handles `option` itself.
enum class OptionParse { kHandled, kNotMine, kError };
OptionParse ParseComparisonOption(const char* scenario, const std::string& option,
                                  const std::string& value, ComparisonOptions* comparison,
                                  int64_t* timeout_ms);

// Ends the process with exit code 3 and a message when it is still running `seconds` after it
// was armed: no failure of a server or of the network can keep a run from ending.
class Watchdog {
 public:
  Watchdog(std::string scenario, double seconds);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace txc::bench
