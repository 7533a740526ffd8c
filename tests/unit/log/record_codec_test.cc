#include "coordinator/log/record_codec.h"

#include <gtest/gtest.h>

#include "coordinator/log/log_format.h"
#include "coordinator/log/log_reader.h"

namespace txc::log {
namespace {

TEST(RecordCodecTest, RecordPayloadRoundTrips) {
  LogRecord record{RecordType::kDecision, "order-1234", 1'800'000'000'123,
                   std::string("\0c\xff", 3)};
  auto decoded = DecodeRecordPayload(RecordType::kDecision, EncodeRecordPayload(record));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, record);
}

TEST(RecordCodecTest, UnknownRecordVersionIsCorruption) {
  std::string payload = EncodeRecordPayload(LogRecord{RecordType::kBegin, "g", 1, "b"});
  payload[0] = 9;
  auto decoded = DecodeRecordPayload(RecordType::kBegin, payload);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
}

TEST(RecordCodecTest, ShortPayloadIsCorruption) {
  const std::string payload = EncodeRecordPayload(LogRecord{RecordType::kBegin, "gid", 1, ""});
  for (size_t size = 0; size < payload.size(); ++size) {
    EXPECT_FALSE(DecodeRecordPayload(RecordType::kBegin, payload.substr(0, size)).ok()) << size;
  }
}

TEST(RecordCodecTest, FrameIsValidOnlyWhenWhole) {
  std::string frame;
  AppendFrame(static_cast<uint8_t>(RecordType::kBegin), "payload", &frame);
  EXPECT_EQ(frame.size(), format::kFrameHeaderBytes + 7);
  EXPECT_TRUE(IsValidFrameAt(frame, 0, 1024));
  EXPECT_FALSE(IsValidFrameAt(frame.substr(0, frame.size() - 1), 0, 1024));
  for (size_t i = 0; i < frame.size(); ++i) {
    std::string flipped = frame;
    flipped[i] ^= 0x20;
    EXPECT_FALSE(IsValidFrameAt(flipped, 0, 1024)) << "flip at " << i;
  }
}

TEST(RecordCodecTest, FileHeaderRoundTripsAndRejectsForeignFiles) {
  const std::string payload = EncodeFileHeaderPayload(FileHeader{format::kFileKindSnapshot, 77});
  auto header = DecodeFileHeaderPayload(payload);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->kind, format::kFileKindSnapshot);
  EXPECT_EQ(header->number, 77u);
  std::string foreign = payload;
  foreign[0] = 'X';
  EXPECT_FALSE(DecodeFileHeaderPayload(foreign).ok());
  std::string future = payload;
  future[format::kMagic.size()] = 2;
  EXPECT_FALSE(DecodeFileHeaderPayload(future).ok());
}

}  // namespace
}  // namespace txc::log
