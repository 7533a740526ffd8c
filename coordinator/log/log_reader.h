// LogFileReader: the frames of one log file, front to back, telling a clean end from damage.
// Whether damage is a torn tail (cut it off) or corruption (refuse to open) is FileLog's call:
// it depends on whether the file is the newest segment and on what follows the damage, which
// RestHasValidFrame answers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"
#include "coordinator/log/file_system.h"

namespace txc::log {

struct Frame {
  uint8_t type = 0;
  std::string bytes;    // the whole frame, header included (kept as is by the index)
  uint64_t offset = 0;  // of the frame's first byte in the file
  std::string_view payload() const;
};

class LogFileReader {
 public:
  enum class Next { kFrame, kEnd, kDamaged, kIoError };

  // `payload_bytes_max`: a length field above it is damage.
  LogFileReader(std::unique_ptr<SequentialFile> file, std::string path, uint32_t payload_bytes_max);

  // kFrame fills *frame. kEnd: the file ended exactly at a frame boundary. kDamaged: the bytes
  // at damage_offset() are not a whole valid frame (damage_reason() says how). kIoError: see
  // io_status(). After anything but kFrame, do not call Next again.
  Next ReadNext(Frame* frame);

  uint64_t damage_offset() const { return damage_offset_; }
  const std::string& damage_reason() const { return damage_reason_; }
  const Status& io_status() const { return io_status_; }

  // After kDamaged: whether a valid frame starts anywhere after the damaged offset (scanning
  // byte by byte to the end of the file). No valid frame after it means the damage is a torn
  // tail: the end of a write that never completed.
  Result<bool> RestHasValidFrame();

 private:
  // Makes at least `n` bytes available from pos_, unless the file ends first.
  Status Fill(size_t n);
  size_t Available() const { return buffer_.size() - pos_; }

  std::unique_ptr<SequentialFile> file_;
  std::string path_;
  uint32_t payload_bytes_max_;
  std::string buffer_;
  size_t pos_ = 0;
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  bool eof_ = false;
  uint64_t damage_offset_ = 0;
  std::string damage_reason_;
  Status io_status_;
};

// Whether a valid frame (plausible header, matching CRC) starts at data[at].
bool IsValidFrameAt(const std::string& data, size_t at, uint32_t payload_bytes_max);

}  // namespace txc::log
