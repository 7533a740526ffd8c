// StructuredLogger: txcoord's own log, one line per event on stderr in logfmt:
//
//   ts=2026-11-29T21:00:00.123Z level=info event=listening listen=127.0.0.1:8080
//
// or, with SetFormat(kJson) (txcoord's `log_format: json`), one JSON object per line:
//
//   {"ts":"2026-11-29T21:00:00.123Z","level":"info","event":"listening","listen":"127.0.0.1:8080"}
//
// Events are named in snake_case and carry fields, never prose alone, so lines can be grepped and
// parsed. Values with spaces, quotes or '=' are quoted. Secrets never reach it: callers pass DSNs
// through config::RedactDsn. Thread-safe: a line is written whole.
#pragma once

#include <initializer_list>
#include <iosfwd>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/common/clock.h"

namespace txc::server {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kLogfmt, kJson };
const char* LogLevelName(LogLevel level);

class StructuredLogger {
 public:
  using Field = std::pair<std::string_view, std::string>;

  // `out` and `clock` must outlive the logger.
  explicit StructuredLogger(std::ostream& out, const Clock& clock = SystemClock());

  // Before the first line from other threads: the format is read without the lock.
  void SetFormat(LogFormat format) { format_ = format; }

  void Log(LogLevel level, std::string_view event, std::initializer_list<Field> fields = {});
  // The same, with fields built at run time.
  void Log(LogLevel level, std::string_view event,
           const std::vector<std::pair<std::string, std::string>>& fields);
  void Info(std::string_view event, std::initializer_list<Field> fields = {}) {
    Log(LogLevel::kInfo, event, fields);
  }
  void Warn(std::string_view event, std::initializer_list<Field> fields = {}) {
    Log(LogLevel::kWarn, event, fields);
  }
  void Error(std::string_view event, std::initializer_list<Field> fields = {}) {
    Log(LogLevel::kError, event, fields);
  }

  // One line without the newline (tests).
  std::string FormatLine(LogLevel level, std::string_view event,
                         std::initializer_list<Field> fields) const;
  std::string FormatLine(LogLevel level, std::string_view event,
                         const std::vector<Field>& fields) const;

 private:
  void Write(std::string line);

  std::ostream& out_;
  const Clock& clock_;
  LogFormat format_ = LogFormat::kLogfmt;
  std::mutex mutex_;
};

// 2026-11-29T21:00:00.123Z
std::string FormatUtcMillis(int64_t unix_ms);

}  // namespace txc::server
