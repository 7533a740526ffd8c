#include "coordinator/log/log_reader.h"

#include "coordinator/common/crc32c.h"
#include "coordinator/log/decision_log.h"
#include "coordinator/log/log_format.h"
#include "coordinator/log/record_codec.h"

namespace txc::log {
namespace {

constexpr size_t kReadChunkBytes = 1u << 20;

bool IsKnownFrameType(uint8_t type) {
  return type == format::kFileHeaderType || IsValidRecordType(type);
}

}  // namespace

std::string_view Frame::payload() const {
  return std::string_view(bytes).substr(format::kFrameHeaderBytes);
}

bool IsValidFrameAt(const std::string& data, size_t at, uint32_t payload_bytes_max) {
  if (at + format::kFrameHeaderBytes > data.size()) return false;
  const uint32_t length = GetFixed32(data.data() + at + 4);
  const auto type = static_cast<uint8_t>(data[at + 8]);
  if (!IsKnownFrameType(type) || length > payload_bytes_max) return false;
  if (data.size() - at - format::kFrameHeaderBytes < length) return false;
  const uint32_t expected = crc32c::Unmask(GetFixed32(data.data() + at));
  return crc32c::Value(data.data() + at + 4, 5 + length) == expected;
}

LogFileReader::LogFileReader(std::unique_ptr<SequentialFile> file, std::string path,
                             uint32_t payload_bytes_max)
    : file_(std::move(file)), path_(std::move(path)), payload_bytes_max_(payload_bytes_max) {}

Status LogFileReader::Fill(size_t n) {
  if (Available() >= n || eof_) return Status::Ok();
  // Drop what was consumed so the buffer holds at most one frame plus a chunk.
  buffer_.erase(0, pos_);
  buffer_offset_ += pos_;
  pos_ = 0;
  std::string chunk;
  while (buffer_.size() < n && !eof_) {
    TXC_RETURN_IF_ERROR(file_->Read(std::max(kReadChunkBytes, n - buffer_.size()), &chunk));
    if (chunk.empty()) {
      eof_ = true;
    } else {
      buffer_.append(chunk);
    }
  }
  return Status::Ok();
}

LogFileReader::Next LogFileReader::ReadNext(Frame* frame) {
  io_status_ = Fill(format::kFrameHeaderBytes);
  if (!io_status_.ok()) return Next::kIoError;
  const uint64_t offset = buffer_offset_ + pos_;
  if (Available() == 0) return Next::kEnd;
  auto damaged = [&](std::string reason) {
    damage_offset_ = offset;
    damage_reason_ = std::move(reason);
    return Next::kDamaged;
  };
  if (Available() < format::kFrameHeaderBytes) return damaged("partial frame header");
  const char* header = buffer_.data() + pos_;
  const uint32_t length = GetFixed32(header + 4);
  const auto type = static_cast<uint8_t>(header[8]);
  if (GetFixed32(header) == 0 && length == 0 && type == 0) return damaged("zero-filled bytes");
  if (!IsKnownFrameType(type)) return damaged("unknown frame type " + std::to_string(type));
  if (length > payload_bytes_max_) {
    return damaged("frame length " + std::to_string(length) + " over the limit");
  }
  io_status_ = Fill(format::kFrameHeaderBytes + length);
  if (!io_status_.ok()) return Next::kIoError;
  if (Available() < format::kFrameHeaderBytes + length) return damaged("partial frame payload");
  header = buffer_.data() + pos_;
  const uint32_t expected = crc32c::Unmask(GetFixed32(header));
  if (crc32c::Value(header + 4, 5 + length) != expected) return damaged("CRC mismatch");
  frame->type = type;
  frame->offset = offset;
  frame->bytes.assign(header, format::kFrameHeaderBytes + length);
  pos_ += format::kFrameHeaderBytes + length;
  return Next::kFrame;
}

Result<bool> LogFileReader::RestHasValidFrame() {
  // Load everything after the damage; a torn tail is at most the bytes of the writes in flight.
  std::string chunk;
  while (!eof_) {
    TXC_RETURN_IF_ERROR(file_->Read(kReadChunkBytes, &chunk));
    if (chunk.empty()) {
      eof_ = true;
    } else {
      buffer_.append(chunk);
    }
  }
  for (size_t at = pos_ + 1; at + format::kFrameHeaderBytes <= buffer_.size(); ++at) {
    if (IsValidFrameAt(buffer_, at, payload_bytes_max_)) return true;
  }
  return false;
}

}  // namespace txc::log
