// Small helpers shared by the decision-log tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "coordinator/log/decision_log.h"

namespace txc::log {

inline LogRecord Rec(RecordType type, std::string gid, std::string body, int64_t time_ms = 0) {
  return LogRecord{type, std::move(gid), time_ms, std::move(body)};
}

inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

// Paths of the segment files, oldest first.
inline std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> paths;
  for (const auto& name : ListDir(dir)) {
    if (name.starts_with("seg-")) paths.push_back(dir + "/" + name);
  }
  return paths;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace txc::log
