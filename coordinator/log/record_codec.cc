#include "coordinator/log/record_codec.h"

#include <cstring>

#include "coordinator/common/check.h"
#include "coordinator/common/crc32c.h"
#include "coordinator/log/log_format.h"

namespace txc::log {

void PutFixed32(std::string* out, uint32_t value) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  out->append(buf, 4);
}

void PutFixed64(std::string* out, uint64_t value) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  out->append(buf, 8);
}

uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void AppendFrame(uint8_t type, std::string_view payload, std::string* out) {
  TXC_CHECK(payload.size() <= format::kPayloadBytesLimit, "frame payload over the format limit");
  const size_t start = out->size();
  out->append(4, '\0');  // CRC, filled below
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(payload);
  const uint32_t crc = crc32c::Value(out->data() + start + 4, out->size() - start - 4);
  const uint32_t masked = crc32c::Mask(crc);
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>((masked >> (8 * i)) & 0xff);
}

std::string EncodeRecordPayload(const LogRecord& record) {
  TXC_CHECK(!record.gid.empty() && record.gid.size() <= format::kGidBytesMax,
            "gid length must be checked before encoding");
  std::string out;
  out.reserve(1 + 1 + record.gid.size() + 8 + record.body.size());
  out.push_back(static_cast<char>(format::kRecordVersion));
  out.push_back(static_cast<char>(record.gid.size()));
  out.append(record.gid);
  PutFixed64(&out, static_cast<uint64_t>(record.time_unix_ms));
  out.append(record.body);
  return out;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view payload) {
  if (payload.size() < 2) return Status::Corruption("record payload shorter than its header");
  const auto version = static_cast<uint8_t>(payload[0]);
  if (version != format::kRecordVersion) {
    return Status::Corruption("record version " + std::to_string(version) + " is not known");
  }
  const auto gid_size = static_cast<uint8_t>(payload[1]);
  if (gid_size == 0 || payload.size() < size_t{2} + gid_size + 8) {
    return Status::Corruption("record payload shorter than its gid and time");
  }
  RecordHeader header;
  header.gid = payload.substr(2, gid_size);
  header.time_unix_ms = static_cast<int64_t>(GetFixed64(payload.data() + 2 + gid_size));
  return header;
}

Result<LogRecord> DecodeRecordPayload(RecordType type, std::string_view payload) {
  auto header = DecodeRecordHeader(payload);
  if (!header.ok()) return header.status();
  LogRecord record;
  record.type = type;
  record.gid.assign(header->gid);
  record.time_unix_ms = header->time_unix_ms;
  record.body.assign(payload.substr(2 + header->gid.size() + 8));
  return record;
}

std::string EncodeFileHeaderPayload(const FileHeader& header) {
  std::string out;
  out.append(format::kMagic);
  out.push_back(static_cast<char>(format::kFormatVersion));
  out.push_back(static_cast<char>(header.kind));
  PutFixed64(&out, header.number);
  TXC_CHECK(out.size() == format::kFileHeaderPayloadBytes, "file header size");
  return out;
}

Result<FileHeader> DecodeFileHeaderPayload(std::string_view payload) {
  if (payload.size() != format::kFileHeaderPayloadBytes ||
      payload.substr(0, format::kMagic.size()) != format::kMagic) {
    return Status::Corruption("not a txc log file (bad file header)");
  }
  const auto version = static_cast<uint8_t>(payload[format::kMagic.size()]);
  if (version != format::kFormatVersion) {
    return Status::Corruption("log format version " + std::to_string(version) +
                              " is not known to this txcoord");
  }
  FileHeader header;
  header.kind = static_cast<uint8_t>(payload[format::kMagic.size() + 1]);
  if (header.kind != format::kFileKindSegment && header.kind != format::kFileKindSnapshot) {
    return Status::Corruption("unknown log file kind " + std::to_string(header.kind));
  }
  header.number = GetFixed64(payload.data() + format::kMagic.size() + 2);
  return header;
}

}  // namespace txc::log
