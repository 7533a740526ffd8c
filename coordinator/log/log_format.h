// The decision log's on-disk format, all of it in one place.
//
// A data directory holds:
//   LOCK                      flock()ed by the one coordinator that owns the directory
//   seg-<n>.log               segments, appended in order; n grows by one per segment
//   snap-<n>.log              a snapshot: the live state as of the end of segment n
//   snap-<n>.tmp              a snapshot being written (deleted at open)
// Open reads the newest snapshot, then every segment numbered above it.
//
// Every file is a sequence of frames:
//   +-----------------+-----------------+--------+---------------------+
//   | masked crc32c 4 | payload length 4| type 1 | payload (length)    |
//   +-----------------+-----------------+--------+---------------------+
// integers little-endian; the CRC covers the length, the type and the payload. The first frame of
// a file is a kFileHeader naming what the file is; the others hold LogRecords (record_codec.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace txc::log::format {

inline constexpr size_t kFrameHeaderBytes = 4 + 4 + 1;

// Frame types 1..5 are txc::log::RecordType; the file header sits apart from them.
inline constexpr uint8_t kFileHeaderType = 0x40;

// File header payload: magic, format version, file kind, file number (u64 LE).
inline constexpr std::string_view kMagic = "txclog";
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr uint8_t kFileKindSegment = 1;
inline constexpr uint8_t kFileKindSnapshot = 2;
inline constexpr size_t kFileHeaderPayloadBytes = 6 + 1 + 1 + 8;

// Record payload: version byte, then gid (u8 length + bytes), time (i64 LE), body (the rest).
inline constexpr uint8_t kRecordVersion = 1;
inline constexpr size_t kGidBytesMax = 255;

// No payload is ever larger than this, whatever the options say: a length field above it is
// damage, not a record.
inline constexpr uint32_t kPayloadBytesLimit = 64u << 20;

inline constexpr std::string_view kLockFileName = "LOCK";
inline constexpr std::string_view kSegmentPrefix = "seg-";
inline constexpr std::string_view kSnapshotPrefix = "snap-";
inline constexpr std::string_view kLogSuffix = ".log";
inline constexpr std::string_view kTempSuffix = ".tmp";

}  // namespace txc::log::format
