// Framing and encoding of log records (format in log_format.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "coordinator/common/status.h"
#include "coordinator/log/decision_log.h"

namespace txc::log {

// Appends one frame of `type` around `payload` to *out.
void AppendFrame(uint8_t type, std::string_view payload, std::string* out);

// The payload of a record frame.
std::string EncodeRecordPayload(const LogRecord& record);
// Parses a record payload; the frame type gives record.type.
Result<LogRecord> DecodeRecordPayload(RecordType type, std::string_view payload);

// What the index needs of a record, without copying its body.
struct RecordHeader {
  std::string_view gid;
  int64_t time_unix_ms = 0;
};
Result<RecordHeader> DecodeRecordHeader(std::string_view payload);

struct FileHeader {
  uint8_t kind = 0;  // format::kFileKindSegment or kFileKindSnapshot
  uint64_t number = 0;
};
std::string EncodeFileHeaderPayload(const FileHeader& header);
Result<FileHeader> DecodeFileHeaderPayload(std::string_view payload);

// Little-endian helpers shared by the writer and the reader.
void PutFixed32(std::string* out, uint32_t value);
void PutFixed64(std::string* out, uint64_t value);
uint32_t GetFixed32(const char* p);
uint64_t GetFixed64(const char* p);

}  // namespace txc::log
