// CRC32C (Castagnoli), the checksum of every decision-log record. No Debian package offers it
// for C++, so it lives here: SSE4.2 when the CPU has it, a slicing table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace txc::crc32c {

// Extends `crc` (the CRC32C of some prefix) with `size` more bytes.
uint32_t Extend(uint32_t crc, const char* data, size_t size);
inline uint32_t Value(const char* data, size_t size) { return Extend(0, data, size); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Stored CRCs are masked, so a CRC computed over data that embeds CRCs (a log inside a log, a
// record holding another record) does not degenerate.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

// True when the running CPU has the SSE4.2 crc32 instruction (reported by txc-bench).
bool HardwareAccelerated();

}  // namespace txc::crc32c
