#include "coordinator/log/fault_injection_file_system.h"

#include <filesystem>

namespace txc::log {
namespace {

std::string DirectoryOf(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

}  // namespace

class FaultInjectionFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectionFileSystem& owner, std::string path, std::unique_ptr<WritableFile> base)
      : owner_(owner), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    size_t allowed = data.size();
    const Status limit = owner_.BeforeAppend(data.size(), &allowed);
    if (allowed > 0) {
      TXC_RETURN_IF_ERROR(base_->Append(data.substr(0, allowed)));
      owner_.AfterAppend(path_, allowed);
    }
    return limit;
  }

  Status Sync() override {
    TXC_RETURN_IF_ERROR(owner_.BeforeSync());
    TXC_RETURN_IF_ERROR(base_->Sync());
    owner_.AfterSync(path_);
    return Status::Ok();
  }

  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionFileSystem& owner_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

void FaultInjectionFileSystem::FailSyncs(int count, int successful_first) {
  std::lock_guard lock(mu_);
  syncs_to_fail_ = count;
  syncs_to_pass_ = successful_first;
}

void FaultInjectionFileSystem::LimitAppendBytes(int64_t bytes) {
  std::lock_guard lock(mu_);
  append_bytes_left_ = bytes;
}

int FaultInjectionFileSystem::sync_calls() const {
  std::lock_guard lock(mu_);
  return sync_calls_;
}

int FaultInjectionFileSystem::failed_syncs() const {
  std::lock_guard lock(mu_);
  return failed_syncs_;
}

Status FaultInjectionFileSystem::BeforeAppend(size_t wanted, size_t* allowed) {
  std::lock_guard lock(mu_);
  *allowed = wanted;
  if (crashed_) {
    *allowed = 0;
    return Status::IoError("injected crash: the machine is down");
  }
  if (append_bytes_left_ < 0) return Status::Ok();
  if (static_cast<int64_t>(wanted) <= append_bytes_left_) {
    append_bytes_left_ -= static_cast<int64_t>(wanted);
    return Status::Ok();
  }
  *allowed = static_cast<size_t>(append_bytes_left_);
  append_bytes_left_ = 0;
  return Status::IoError("injected short write: no space left on device");
}

void FaultInjectionFileSystem::AfterAppend(const std::string& path, size_t bytes) {
  std::lock_guard lock(mu_);
  files_[path].size += bytes;
}

Status FaultInjectionFileSystem::BeforeSync() {
  std::lock_guard lock(mu_);
  ++sync_calls_;
  if (crashed_) return Status::IoError("injected crash: the machine is down");
  if (syncs_to_pass_ > 0) {
    --syncs_to_pass_;
    return Status::Ok();
  }
  if (syncs_to_fail_ > 0) {
    --syncs_to_fail_;
    ++failed_syncs_;
    return Status::IoError("injected fdatasync failure: Input/output error");
  }
  return Status::Ok();
}

void FaultInjectionFileSystem::AfterSync(const std::string& path) {
  std::lock_guard lock(mu_);
  auto& state = files_[path];
  state.synced_size = state.size;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path) {
  auto base = base_.NewWritableFile(path);
  if (!base.ok()) return base.status();
  {
    std::lock_guard lock(mu_);
    files_[path] = FileState{};
    unsynced_new_files_.insert(path);
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(*this, path, std::move(base).value()));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewAppendableFile(
    const std::string& path) {
  auto size = base_.FileSize(path);
  if (!size.ok()) return size.status();
  auto base = base_.NewAppendableFile(path);
  if (!base.ok()) return base.status();
  {
    std::lock_guard lock(mu_);
    auto& state = files_[path];
    state.size = *size;
    state.synced_size = *size;  // what was there before we saw it counts as durable
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(*this, path, std::move(base).value()));
}

Status FaultInjectionFileSystem::RemoveFile(const std::string& path) {
  TXC_RETURN_IF_ERROR(base_.RemoveFile(path));
  std::lock_guard lock(mu_);
  files_.erase(path);
  unsynced_new_files_.erase(path);
  return Status::Ok();
}

Status FaultInjectionFileSystem::RenameFile(const std::string& from, const std::string& to) {
  TXC_RETURN_IF_ERROR(base_.RenameFile(from, to));
  std::lock_guard lock(mu_);
  // The renamed file keeps its sync state under its new name. (A rename itself is modelled as
  // durable once the directory is synced, like a creation.)
  if (auto it = files_.find(from); it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  }
  if (unsynced_new_files_.erase(from) > 0) unsynced_new_files_.insert(to);
  return Status::Ok();
}

Status FaultInjectionFileSystem::Truncate(const std::string& path, uint64_t size) {
  TXC_RETURN_IF_ERROR(base_.Truncate(path, size));
  std::lock_guard lock(mu_);
  if (auto it = files_.find(path); it != files_.end()) {
    it->second.size = size;
    it->second.synced_size = size;
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::SyncDirectory(const std::string& dir) {
  TXC_RETURN_IF_ERROR(base_.SyncDirectory(dir));
  std::lock_guard lock(mu_);
  for (auto it = unsynced_new_files_.begin(); it != unsynced_new_files_.end();) {
    it = DirectoryOf(*it) == dir ? unsynced_new_files_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::SimulateCrash() {
  {
    std::lock_guard lock(mu_);
    crashed_ = true;
  }
  return DropUnsyncedData();
}

Status FaultInjectionFileSystem::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (const auto& path : unsynced_new_files_) {
    if (base_.FileExists(path)) TXC_RETURN_IF_ERROR(base_.RemoveFile(path));
    files_.erase(path);
  }
  unsynced_new_files_.clear();
  for (auto& [path, state] : files_) {
    if (!base_.FileExists(path)) continue;
    if (state.size != state.synced_size) {
      TXC_RETURN_IF_ERROR(base_.Truncate(path, state.synced_size));
      state.size = state.synced_size;
    }
  }
  return Status::Ok();
}

}  // namespace txc::log
