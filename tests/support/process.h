// Child processes for end-to-end tests: the real txcoord binary, started with a chosen
// environment, its stdout and stderr captured in files, always reaped (a test that fails midway
// kills what it started instead of leaking it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace txc::testing {

// The environment of this process, name → value.
std::map<std::string, std::string> CurrentEnvironment();

class ChildProcess {
 public:
  struct Options {
    std::string program;                             // a path, not searched in PATH
    std::vector<std::string> args;                   // without argv[0]
    std::map<std::string, std::string> environment;  // the child's whole environment
    std::string stdout_path;                         // truncated and written by the child
    std::string stderr_path;
  };

  // Starts the program (stdin is /dev/null, signals at their defaults). Throws
  // std::runtime_error when it cannot be started.
  explicit ChildProcess(const Options& options);
  // Kills the child with SIGKILL if it still runs, and reaps it.
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends `signal_number`; false when the child is already gone.
  bool Signal(int signal_number);

  // Waits up to `timeout` for the child to end. Its exit code, or 128 + the signal that killed
  // it; nullopt when it is still running at the deadline.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);

  // True while the child has not ended (reaps it when it has).
  bool Running();

  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string stdout_path_;
  std::string stderr_path_;
};

// The whole content of a file, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
uint16_t FreeLoopbackPort();

}  // namespace txc::testing
