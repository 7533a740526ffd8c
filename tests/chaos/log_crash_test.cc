// Chaos: the decision log of a process killed with SIGKILL at random moments (mid-append,
// mid-rotation, mid-compaction) keeps every record it acknowledged, and opens cleanly each time.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "coordinator/log/file_log.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace txc::log {
namespace {

// Runs the writer for `run_ms`, SIGKILLs it, returns everything it printed.
std::string RunAndKill(const std::string& dir, const std::string& prefix, int run_ms) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::string program = TXC_LOG_CRASH_WRITER;
  std::string threads = "8";
  char* argv[] = {program.data(), const_cast<char*>(dir.c_str()), const_cast<char*>(prefix.c_str()),
                  threads.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  EXPECT_EQ(spawned, 0) << "cannot start " << program;
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return "";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(run_ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself with status "
                                   << WEXITSTATUS(status) << " (it should run until killed)";
  std::string output;
  char buffer[65536];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) output.append(buffer, n);
  ::close(pipe_fds[0]);
  return output;
}

TEST(LogCrashTest, EveryAcknowledgedRecordSurvivesSigkill) {
  testing::TempDir temp;
  const std::string dir = temp.path() + "/log";
  std::mt19937 random(20261129);
  std::map<std::string, bool> acknowledged;  // gid → decision acknowledged too
  size_t total_records = 0;
  for (int round = 0; round < 12; ++round) {
    const int run_ms = 150 + static_cast<int>(random() % 400);
    const std::string output = RunAndKill(dir, "r" + std::to_string(round), run_ms);
    std::istringstream lines(output);
    std::string kind;
    std::string gid;
    while (lines >> kind >> gid) {
      if (kind == "B") acknowledged.emplace(gid, false);
      if (kind == "D") acknowledged[gid] = true;
      ++total_records;
    }
    RecoveredLog recovered;
    auto log =
        FileLog::Open(FileLogOptions{.dir = dir, .retention_finished_ms = 3'600'000}, &recovered);
    ASSERT_TRUE(log.ok()) << "round " << round << ": " << log.status().ToString();
    std::map<std::string, const RecoveredTransaction*> unfinished;
    for (const auto& txn : recovered.unfinished) unfinished[txn.gid] = &txn;
    std::set<std::string> finished;
    for (const auto& end : recovered.finished) finished.insert(end.gid);
    for (const auto& [acked_gid, decided] : acknowledged) {
      if (finished.contains(acked_gid)) continue;  // it finished: its decision came before
      auto it = unfinished.find(acked_gid);
      ASSERT_NE(it, unfinished.end())
          << "round " << round << ": acknowledged BEGIN lost for " << acked_gid;
      if (decided) {
        bool has_decision = false;
        for (const auto& record : it->second->records) {
          has_decision = has_decision || record.type == RecordType::kDecision;
        }
        ASSERT_TRUE(has_decision) << "round " << round << ": acknowledged decision lost for "
                                  << acked_gid;
      }
    }
    (*log)->Close();
  }
  // The run means something only if the writer got records acknowledged before the kills.
  EXPECT_GT(total_records, 1000u);
  std::printf("log_crash_test: %zu acknowledged records over 12 SIGKILLs, all present\n",
              total_records);
}

}  // namespace
}  // namespace txc::log
