#include "coordinator/server/structured_logger.h"

#include <cstdio>
#include <ctime>
#include <ostream>

namespace txc::server {
namespace {

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

enum class Quoting { kLogfmt, kJson };

// `value` quoted and escaped: logfmt escapes other control bytes as \xNN, JSON as \u00NN.
void AppendQuoted(std::string* line, std::string_view value, Quoting quoting) {
  line->push_back('"');
  for (char c : value) {
    switch (c) {
      case '"':
        line->append("\\\"");
        break;
      case '\\':
        line->append("\\\\");
        break;
      case '\n':
        line->append("\\n");
        break;
      case '\r':
        line->append("\\r");
        break;
      case '\t':
        line->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, quoting == Quoting::kJson ? "\\u%04x" : "\\x%02x",
                        static_cast<unsigned char>(c));
          line->append(escaped);
        } else {
          line->push_back(c);
        }
    }
  }
  line->push_back('"');
}

void AppendValue(std::string* line, std::string_view value) {
  if (NeedsQuotes(value)) {
    AppendQuoted(line, value, Quoting::kLogfmt);
  } else {
    line->append(value);
  }
}

void AppendJsonString(std::string* line, std::string_view value) {
  AppendQuoted(line, value, Quoting::kJson);
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

std::string FormatUtcMillis(int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return text;
}

StructuredLogger::StructuredLogger(std::ostream& out, const Clock& clock)
    : out_(out), clock_(clock) {}

std::string StructuredLogger::FormatLine(LogLevel level, std::string_view event,
                                         std::initializer_list<Field> fields) const {
  return FormatLine(level, event, std::vector<Field>(fields));
}

std::string StructuredLogger::FormatLine(LogLevel level, std::string_view event,
                                         const std::vector<Field>& fields) const {
  if (format_ == LogFormat::kJson) {
    std::string line = "{\"ts\":\"" + FormatUtcMillis(clock_.NowUnixMs()) + "\",\"level\":\"";
    line += LogLevelName(level);
    line += "\",\"event\":";
    AppendJsonString(&line, event);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      AppendJsonString(&line, key);
      line.push_back(':');
      AppendJsonString(&line, value);
    }
    line.push_back('}');
    return line;
  }
  std::string line = "ts=" + FormatUtcMillis(clock_.NowUnixMs());
  line += " level=";
  line += LogLevelName(level);
  line += " event=";
  AppendValue(&line, event);
  for (const auto& [key, value] : fields) {
    line.push_back(' ');
    line.append(key);
    line.push_back('=');
    AppendValue(&line, value);
  }
  return line;
}

void StructuredLogger::Log(LogLevel level, std::string_view event,
                           std::initializer_list<Field> fields) {
  Write(FormatLine(level, event, fields));
}

void StructuredLogger::Log(LogLevel level, std::string_view event,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
  std::vector<Field> views;
  views.reserve(fields.size());
  for (const auto& [key, value] : fields) views.emplace_back(key, value);
  Write(FormatLine(level, event, views));
}

void StructuredLogger::Write(std::string line) {
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << line << std::flush;
}

}  // namespace txc::server
