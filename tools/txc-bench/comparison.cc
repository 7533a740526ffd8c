#include "tools/txc-bench/comparison.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "tools/txc-bench/latency.h"

namespace txc::bench {
namespace {

void PrintPhase(const char* label, const ComparisonOptions& options, const ComparisonSide& side,
                const LoadResult& r) {
  std::printf("%-8s %-9s %-42s %8s %s  p50 %9.1f us  p99 %9.1f us  errors %s\n", label,
              side.name.c_str(), side.description.c_str(), Thousands(r.per_second).c_str(),
              options.unit.c_str(), r.p50_us, r.p99_us,
              Thousands(static_cast<double>(r.errors)).c_str());
  std::fflush(stdout);
}

// One phase; false (with the reason on stderr) when its workers could not be set up.
bool RunPhase(const ComparisonOptions& options, const ComparisonSide& side, const std::string& tag,
              double seconds, LoadResult* result) {
  *result = RunLoad(options.concurrency, seconds, side.workers(tag));
  if (!result->setup_error.empty()) {
    std::fprintf(stderr, "txc-bench %s: %s: %s\n", options.scenario.c_str(), side.name.c_str(),
                 result->setup_error.c_str());
    return false;
  }
  return true;
}

void Summarise(SideFigures* figures) {
  std::vector<double> rates, p50s, p99s;
  for (const LoadResult& r : figures->rounds) {
    rates.push_back(r.per_second);
    p50s.push_back(r.p50_us);
    p99s.push_back(r.p99_us);
    figures->ok += r.ok;
    figures->errors += r.errors;
    if (figures->first_error.empty()) figures->first_error = r.first_error;
  }
  figures->per_second = Median(rates);
  figures->p50_us = Median(p50s);
  figures->p99_us = Median(p99s);
}

}  // namespace

bool RunComparison(const ComparisonOptions& options, const ComparisonSide& baseline,
                   const ComparisonSide& txcoord, SideFigures* baseline_figures,
                   SideFigures* txcoord_figures) {
  const ComparisonSide* sides[2] = {&baseline, &txcoord};
  auto skipped = [&](const ComparisonSide& side) {
    return !options.only.empty() && options.only != side.name;
  };
  if (options.warmup_seconds > 0) {
    for (const ComparisonSide* side : sides) {
      if (skipped(*side)) continue;
      LoadResult warm;
      const std::string tag = side == &baseline ? "BW" : "TW";
      if (!RunPhase(options, *side, tag, options.warmup_seconds, &warm)) return false;
      PrintPhase("warm-up", options, *side, warm);
      if (warm.ok == 0) {
        std::fprintf(stderr,
                     "txc-bench %s: %s: no operation succeeded in the warm-up; first error: %s\n",
                     options.scenario.c_str(), side->name.c_str(), warm.first_error.c_str());
        return false;
      }
    }
  }
  for (int round = 1; round <= options.rounds; ++round) {
    const bool baseline_first = round % 2 == 1;
    for (int i = 0; i < 2; ++i) {
      const ComparisonSide& side = *sides[baseline_first ? i : 1 - i];
      if (skipped(side)) continue;
      SideFigures* figures = &side == &baseline ? baseline_figures : txcoord_figures;
      const std::string tag = std::string(&side == &baseline ? "B" : "T") + std::to_string(round);
      LoadResult result;
      if (!RunPhase(options, side, tag, options.seconds, &result)) return false;
      const std::string label = "round " + std::to_string(round);
      PrintPhase(label.c_str(), options, side, result);
      figures->rounds.push_back(result);
    }
  }
  Summarise(baseline_figures);
  Summarise(txcoord_figures);
  return true;
}

void PrintComparison(const ComparisonOptions& options, const ComparisonSide& baseline,
                     const ComparisonSide& txcoord, const SideFigures& baseline_figures,
                     const SideFigures& txcoord_figures) {
  for (const auto& [side, figures] :
       {std::pair{&baseline, &baseline_figures}, std::pair{&txcoord, &txcoord_figures}}) {
    if (figures->rounds.empty()) continue;
    std::printf("%-8s %-9s %-42s %8s %s  p50 %9.1f us  p99 %9.1f us  errors %s (of %s)\n", "median",
                side->name.c_str(), side->description.c_str(),
                Thousands(figures->per_second).c_str(), options.unit.c_str(), figures->p50_us,
                figures->p99_us, Thousands(static_cast<double>(figures->errors)).c_str(),
                Thousands(static_cast<double>(figures->ok + figures->errors)).c_str());
  }
  if (!baseline_figures.rounds.empty() && !txcoord_figures.rounds.empty()) {
    const double ratio = baseline_figures.per_second > 0
                             ? txcoord_figures.per_second / baseline_figures.per_second
                             : 0;
    std::string target;
    if (options.target_ratio > 0) {
      char text[64];
      std::snprintf(text, sizeof text, " (target >= %.2f: %s)", options.target_ratio,
                    ratio >= options.target_ratio ? "met" : "NOT met");
      target = text;
    }
    std::printf("ratio    %s/%s %.2f%s; p50 latency x%.2f, p99 latency x%.2f\n",
                txcoord.name.c_str(), baseline.name.c_str(), ratio, target.c_str(),
                baseline_figures.p50_us > 0 ? txcoord_figures.p50_us / baseline_figures.p50_us : 0,
                baseline_figures.p99_us > 0 ? txcoord_figures.p99_us / baseline_figures.p99_us : 0);
  }
  for (const auto& [side, figures] :
       {std::pair{&baseline, &baseline_figures}, std::pair{&txcoord, &txcoord_figures}}) {
    if (!figures->first_error.empty()) {
      std::printf("first error (%s): %s\n", side->name.c_str(), figures->first_error.c_str());
    }
  }
  std::fflush(stdout);
}

bool ParseNumber(const std::string& scenario, const std::string& option, const std::string& text,
                 double min, double max, double* out) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(value >= min && value <= max)) {
    std::fprintf(stderr, "txc-bench %s: %s must be a number from %g to %g, got \"%s\"\n",
                 scenario.c_str(), option.c_str(), min, max, text.c_str());
    return false;
  }
  *out = value;
  return true;
}

std::string RunGidPrefix() {
  std::random_device random;
  char text[16];
  std::snprintf(text, sizeof text, "tb%08x", static_cast<unsigned>(random()));
  return text;
}

std::string PhaseGidBase(const std::string& prefix, const std::string& tag, int index) {
  return prefix + "-" + tag + "-" + std::to_string(index) + "-";
}

struct Watchdog::State {
  std::mutex mu;
  std::condition_variable cv;
  bool disarmed = false;
  std::thread thread;
};

Watchdog::Watchdog(std::string scenario, double seconds) : state_(std::make_unique<State>()) {
  State* state = state_.get();
  state->thread = std::thread([state, scenario = std::move(scenario), seconds] {
    std::unique_lock lock(state->mu);
    const auto limit = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    if (state->cv.wait_for(lock, limit, [state] { return state->disarmed; })) return;
    std::fprintf(stderr,
                 "txc-bench %s: still running %.0f s after the start, far beyond the planned "
                 "duration: a server stopped answering; giving up\n",
                 scenario.c_str(), seconds);
    std::fflush(stdout);
    std::_Exit(3);
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(state_->mu);
    state_->disarmed = true;
  }
  state_->cv.notify_all();
  state_->thread.join();
}

OptionParse ParseComparisonOption(const char* scenario, const std::string& option,
                                  const std::string& value, ComparisonOptions* comparison,
                                  int64_t* timeout_ms) {
  double number = 0;
  auto parse = [&](double min, double max) {
    return ParseNumber(scenario, option, value, min, max, &number);
  };
  if (option == "--seconds") {
    if (!parse(0.1, 3600)) return OptionParse::kError;
    comparison->seconds = number;
  } else if (option == "--concurrency") {
    if (!parse(1, 256)) return OptionParse::kError;
    comparison->concurrency = static_cast<int>(number);
  } else if (option == "--rounds") {
    if (!parse(1, 100)) return OptionParse::kError;
    comparison->rounds = static_cast<int>(number);
  } else if (option == "--warmup") {
    if (!parse(0, 60)) return OptionParse::kError;
    comparison->warmup_seconds = number;
  } else if (option == "--only") {
    if (value != "baseline" && value != "txcoord") {
      std::fprintf(stderr, "txc-bench %s: --only must be baseline or txcoord\n", scenario);
      return OptionParse::kError;
    }
    comparison->only = value;
  } else if (option == "--timeout-ms") {
    if (!parse(100, 600'000)) return OptionParse::kError;
    *timeout_ms = static_cast<int64_t>(number);
  } else {
    return OptionParse::kNotMine;
  }
  return OptionParse::kHandled;
}

}  // namespace txc::bench
