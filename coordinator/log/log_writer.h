// LogFileWriter: one log file being appended to; starts it with its file header frame and knows
// its size. The FileLog writer thread owns it; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"
#include "coordinator/log/file_system.h"
#include "coordinator/log/record_codec.h"

namespace txc::log {

class LogFileWriter {
 public:
  // Creates `path` (replacing any file there) and writes the header frame. Nothing is synced.
  static Result<std::unique_ptr<LogFileWriter>> Create(FileSystem& file_system,
                                                       const std::string& path,
                                                       const FileHeader& header);

  // Appends already-framed bytes.
  Status Append(std::string_view frames);
  Status Sync();
  Status Close();

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  uint64_t number() const { return number_; }

 private:
  LogFileWriter(std::unique_ptr<WritableFile> file, std::string path, uint64_t number)
      : file_(std::move(file)), path_(std::move(path)), number_(number) {}

  std::unique_ptr<WritableFile> file_;
  std::string path_;
  uint64_t number_;
  uint64_t size_ = 0;
};

}  // namespace txc::log
