// txc-bench: load generators that print figures beside a baseline measured in the same run.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/txc-bench/barrier_bench.h"
#include "tools/txc-bench/log_bench.h"
#include "tools/txc-bench/saga_http_bench.h"
#include "tools/txc-bench/tcc_http_bench.h"
#include "tools/txc-bench/two_phase_db_bench.h"
#include "tools/txc-bench/two_phase_http_bench.h"

namespace {

void PrintUsage() {
  std::printf(
      "usage: txc-bench SCENARIO [options]\n"
      "scenarios:\n"
      "  log   forced appends to the file decision log from 1/16/256 writers beside the raw\n"
      "        fdatasync rate; time to open a log of 1,000,000 finished + 10,000 live\n"
      "        transactions. Options: --seconds N (per run, default 3), --dir DIR (default: a\n"
      "        fresh directory under ./var/bench), --writers 1,16,256, --finished N, --live N,\n"
      "        --skip-open\n"
      "%s%s%s%s%s"
      "Every scenario takes --help.\n",
      txc::bench::TwoPhaseDbUsage(), txc::bench::TwoPhaseHttpUsage(), txc::bench::SagaHttpUsage(),
      txc::bench::TccHttpUsage(), txc::bench::BarrierUsage());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  const std::string scenario = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (scenario == "log") return txc::bench::RunLogBench(args);
  if (scenario == "2pc-db") return txc::bench::RunTwoPhaseDbBench(args);
  if (scenario == "2pc-http") return txc::bench::RunTwoPhaseHttpBench(args);
  if (scenario == "saga-http") return txc::bench::RunSagaHttpBench(args);
  if (scenario == "tcc-http") return txc::bench::RunTccHttpBench(args);
  if (scenario == "barrier") return txc::bench::RunBarrierBench(args);
  std::fprintf(stderr, "txc-bench: unknown scenario '%s'\n", scenario.c_str());
  PrintUsage();
  return 2;
}
