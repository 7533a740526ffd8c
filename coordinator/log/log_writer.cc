#include "coordinator/log/log_writer.h"

#include "coordinator/log/log_format.h"

namespace txc::log {

Result<std::unique_ptr<LogFileWriter>> LogFileWriter::Create(FileSystem& file_system,
                                                             const std::string& path,
                                                             const FileHeader& header) {
  auto file = file_system.NewWritableFile(path);
  if (!file.ok()) return file.status();
  std::unique_ptr<LogFileWriter> writer(
      new LogFileWriter(std::move(file).value(), path, header.number));
  std::string frame;
  AppendFrame(format::kFileHeaderType, EncodeFileHeaderPayload(header), &frame);
  TXC_RETURN_IF_ERROR(writer->Append(frame));
  return writer;
}

Status LogFileWriter::Append(std::string_view frames) {
  // Count the bytes even when the write fails part-way: the caller poisons the log and never
  // trusts this file's size again.
  Status status = file_->Append(frames);
  size_ += frames.size();
  return status;
}

Status LogFileWriter::Sync() { return file_->Sync(); }

Status LogFileWriter::Close() { return file_->Close(); }

}  // namespace txc::log
