// What tests need from their surroundings: server DSNs handed over by scripts/test.sh, and
// throwaway directories. A test that needs a server fails (never skips) when it is missing.
#pragma once

#include <string>

namespace txc::testing {

// The value of environment variable `name`. When it is unset or empty the current test fails
// with a message naming the variable and how to get it set (scripts/test.sh), and "" is returned;
// callers should ASSERT on !value.empty() or use TXC_REQUIRE_ENV.
std::string RequireEnv(const char* name);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace txc::testing

// Binds `var` to the environment variable or fails the test right here.
#define TXC_REQUIRE_ENV(var, name)                          \
  const std::string var = ::txc::testing::RequireEnv(name); \
  ASSERT_FALSE(var.empty()) << "environment variable " << (name) << " is required"
