// FaultInjectionFileSystem: a FileSystem that forwards to a real one and can be told to fail.
// Tests and the chaos programs use it to make writes short, syncs fail, and to simulate power
// loss: every byte not yet made durable by Sync is cut off, and every file created since its
// directory was last synced disappears.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "coordinator/log/file_system.h"

namespace txc::log {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem& base) : base_(base) {}

  // The next `count` Sync calls (after `successful_first` more succeed) fail with an I/O error.
  void FailSyncs(int count, int successful_first = 0);
  // Appends write at most `bytes` more bytes in total, then fail (a short write), until reset
  // with a negative value.
  void LimitAppendBytes(int64_t bytes);
  // Simulated power loss: cut unsynced bytes and unsynced new files. Open files keep their
  // handles but their later writes are meaningless; call this only after the log is closed or
  // abandoned.
  Status DropUnsyncedData();
  // A crash: from now on every append and sync fails (nothing more reaches the disk), and the
  // unsynced data is dropped as by DropUnsyncedData.
  Status SimulateCrash();

  int sync_calls() const;
  int failed_syncs() const;

  Status CreateDirectories(const std::string& path) override {
    return base_.CreateDirectories(path);
  }
  Result<std::vector<std::string>> ListDirectory(const std::string& dir) override {
    return base_.ListDirectory(dir);
  }
  Result<uint64_t> FileSize(const std::string& path) override { return base_.FileSize(path); }
  bool FileExists(const std::string& path) override { return base_.FileExists(path); }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    return base_.NewSequentialFile(path);
  }
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDirectory(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_.LockFile(path);
  }

 private:
  class File;
  friend class File;
  struct FileState {
    uint64_t size = 0;
    uint64_t synced_size = 0;
  };

  // Called by File.
  Status BeforeAppend(size_t wanted, size_t* allowed);
  void AfterAppend(const std::string& path, size_t bytes);
  Status BeforeSync();
  void AfterSync(const std::string& path);

  FileSystem& base_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;    // every file written through us
  std::set<std::string> unsynced_new_files_;  // created since their directory's last sync
  int syncs_to_pass_ = 0;
  int syncs_to_fail_ = 0;
  int sync_calls_ = 0;
  int failed_syncs_ = 0;
  int64_t append_bytes_left_ = -1;  // < 0: unlimited
  bool crashed_ = false;
};

}  // namespace txc::log
