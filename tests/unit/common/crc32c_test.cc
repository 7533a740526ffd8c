#include "coordinator/common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace txc::crc32c {
uint32_t ExtendPortableForTest(uint32_t crc, const char* data, size_t size);
namespace {

// The check value of the CRC-32C (Castagnoli) catalogue entry, and RFC 3720 (iSCSI) B.4 vectors.
TEST(Crc32cTest, StandardCheckValue) { EXPECT_EQ(Value("123456789"), 0xE3069283u); }

TEST(Crc32cTest, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Value(ones), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, ExtendEqualsWholeValue) {
  const std::string data = "hello, decision log";
  for (size_t split = 0; split <= data.size(); ++split) {
    EXPECT_EQ(Extend(Value(data.data(), split), data.data() + split, data.size() - split),
              Value(data));
  }
}

TEST(Crc32cTest, HardwareAndPortablePathsAgree) {
  std::mt19937 random(42);
  for (size_t size : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4097u}) {
    std::string data(size, '\0');
    for (auto& c : data) c = static_cast<char>(random());
    EXPECT_EQ(ExtendPortableForTest(0, data.data(), data.size()), Value(data)) << size;
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  const uint32_t crc = Value("foo");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
}

}  // namespace
}  // namespace txc::crc32c
