// FileSystem: everything the decision log asks of the operating system, behind one interface
// (the LevelDB Env idea), so tests can inject short writes, failed syncs and power loss
// (fault_injection_file_system.h) and the log code stays the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/common/status.h"

namespace txc::log {

// A file opened for appending. Not thread-safe: the log's writer thread owns it.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `data` or fails; a failure may leave part of it written.
  virtual Status Append(std::string_view data) = 0;
  // Makes every appended byte durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

// A file read front to back.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into *out (replacing its content); an empty *out means end of file.
  virtual Status Read(size_t n, std::string* out) = 0;
};

// Held while a directory is ours; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Status CreateDirectories(const std::string& path) = 0;
  // File names (not paths) in `dir`, unsorted.
  virtual Result<std::vector<std::string>> ListDirectory(const std::string& dir) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;

  // Creates the file (truncating an existing one) for appending.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens an existing file for appending at its end.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;

  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Cuts a file to `size` bytes (the torn tail) and syncs it.
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Makes a directory's entries (created, renamed, removed files) durable.
  virtual Status SyncDirectory(const std::string& dir) = 0;

  // An exclusive, advisory lock on `path` (created when missing) held by this process. A second
  // lock on the same path, from this or another process, fails with FailedPrecondition.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// The real file system (POSIX calls, fdatasync, flock).
FileSystem& DefaultFileSystem();

}  // namespace txc::log
