// One named test per shape of damage a decision log file can take. The rule under test: a torn
// tail of the newest segment (a write that never completed, so never acknowledged) is cut off and
// counted; any other damage refuses the open and names the file and offset, because a silently
// skipped record could be a COMMIT decision.
#include <gtest/gtest.h>

#include <filesystem>

#include "coordinator/log/file_log.h"
#include "coordinator/log/log_format.h"
#include "tests/support/test_env.h"
#include "tests/unit/log/log_test_util.h"

namespace txc::log {
namespace {

class LogCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = dir_.path() + "/log";
    // Three unfinished transactions in one segment; the newest segment after Close is seg-1.
    auto log = FileLog::Open(options_, nullptr);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (const char* gid : {"first", "second", "third"}) {
      ASSERT_TRUE(
          (*log)
              ->Append(Rec(RecordType::kBegin, gid, std::string(100, 'b')), Durability::kForced)
              .ok());
    }
    (*log)->Close();
    auto segments = Segments(options_.dir);
    ASSERT_EQ(segments.size(), 1u);
    segment_ = segments[0];
    size_ = std::filesystem::file_size(segment_);
  }

  // Size of one frame holding a BEGIN of gid length 5 or 6 (see record_codec.cc).
  static uint64_t FrameBytes(size_t gid_size) {
    return format::kFrameHeaderBytes + 1 + 1 + gid_size + 8 + 100;
  }
  uint64_t LastFrameOffset() const { return size_ - FrameBytes(5); }  // "third"

  Result<std::unique_ptr<FileLog>> Reopen(RecoveredLog* recovered) {
    return FileLog::Open(options_, recovered);
  }

  void ExpectCutAfterSecond(uint64_t expected_torn_bytes) {
    RecoveredLog recovered;
    auto log = Reopen(&recovered);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_EQ(recovered.unfinished.size(), 2u);
    EXPECT_EQ(recovered.unfinished[0].gid, "first");
    EXPECT_EQ(recovered.unfinished[1].gid, "second");
    EXPECT_EQ(recovered.torn_tail_bytes, expected_torn_bytes);
    EXPECT_EQ(std::filesystem::file_size(segment_), LastFrameOffset());
    // And the log goes on: the next open sees no damage at all.
    ASSERT_TRUE((*log)->Append(Rec(RecordType::kBegin, "fourth", ""), Durability::kForced).ok());
    (*log)->Close();
    RecoveredLog again;
    auto reopened = Reopen(&again);
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EXPECT_EQ(again.unfinished.size(), 3u);
    EXPECT_EQ(again.torn_tail_bytes, 0u);
  }

  void ExpectRefusedAt(const std::string& file, uint64_t offset) {
    auto log = Reopen(nullptr);
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
    EXPECT_NE(log.status().message().find(file), std::string::npos) << log.status().message();
    EXPECT_NE(log.status().message().find("offset " + std::to_string(offset)), std::string::npos)
        << log.status().message();
  }

  testing::TempDir dir_;
  FileLogOptions options_;
  std::string segment_;
  uint64_t size_ = 0;
};

TEST_F(LogCorruptionTest, IntactLogOpensWithoutCuts) {
  RecoveredLog recovered;
  auto log = Reopen(&recovered);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(recovered.unfinished.size(), 3u);
  EXPECT_EQ(recovered.torn_tail_bytes, 0u);
}

TEST_F(LogCorruptionTest, TornHeaderAtTheTailIsCut) {
  std::filesystem::resize_file(segment_, LastFrameOffset() + 5);  // 5 of 9 header bytes
  ExpectCutAfterSecond(5);
}

TEST_F(LogCorruptionTest, TornPayloadAtTheTailIsCut) {
  std::filesystem::resize_file(segment_, size_ - 40);
  ExpectCutAfterSecond(FrameBytes(5) - 40);
}

TEST_F(LogCorruptionTest, BadCrcInTheLastRecordIsATornTail) {
  std::string data = ReadAll(segment_);
  data[size_ - 3] ^= 0x01;  // inside the body of "third"
  WriteAll(segment_, data);
  ExpectCutAfterSecond(FrameBytes(5));
}

TEST_F(LogCorruptionTest, ZeroFilledTailIsCut) {
  // A file system that extended the file but never wrote the data: zeros after the last record.
  std::string data = ReadAll(segment_);
  data.append(4096, '\0');
  WriteAll(segment_, data);
  RecoveredLog recovered;
  auto log = Reopen(&recovered);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(recovered.unfinished.size(), 3u);
  EXPECT_EQ(recovered.torn_tail_bytes, 4096u);
  EXPECT_EQ(std::filesystem::file_size(segment_), size_);
}

TEST_F(LogCorruptionTest, ZeroedLastRecordIsCut) {
  std::string data = ReadAll(segment_);
  std::fill(data.begin() + static_cast<long>(LastFrameOffset()), data.end(), '\0');
  WriteAll(segment_, data);
  ExpectCutAfterSecond(FrameBytes(5));
}

TEST_F(LogCorruptionTest, BadCrcInTheMiddleRefusesToOpen) {
  std::string data = ReadAll(segment_);
  const uint64_t second_offset = LastFrameOffset() - FrameBytes(6);
  data[second_offset + 20] ^= 0x40;  // inside "second", with "third" intact after it
  WriteAll(segment_, data);
  ExpectRefusedAt("seg-0000000000000001.log", second_offset);
}

TEST_F(LogCorruptionTest, BadLengthInTheMiddleRefusesToOpen) {
  std::string data = ReadAll(segment_);
  const uint64_t second_offset = LastFrameOffset() - FrameBytes(6);
  data[second_offset + 4] = 0x30;  // the length no longer matches, "third" still intact after
  WriteAll(segment_, data);
  ExpectRefusedAt("seg-0000000000000001.log", second_offset);
}

TEST_F(LogCorruptionTest, TruncatedOlderSegmentRefusesToOpen) {
  // Make seg-1 an older segment: reopen (which starts seg-2) and append there.
  {
    auto log = Reopen(nullptr);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Rec(RecordType::kBegin, "later", ""), Durability::kForced).ok());
  }
  std::filesystem::resize_file(segment_, size_ - 10);
  ExpectRefusedAt("seg-0000000000000001.log", LastFrameOffset());
}

TEST_F(LogCorruptionTest, MissingSegmentRefusesToOpen) {
  for (int i = 0; i < 2; ++i) {
    auto log = Reopen(nullptr);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(
        (*log)
            ->Append(Rec(RecordType::kBegin, "r" + std::to_string(i), ""), Durability::kForced)
            .ok());
  }
  ASSERT_EQ(Segments(options_.dir).size(), 3u);
  std::filesystem::remove(Segments(options_.dir)[1]);
  auto log = Reopen(nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("seg-0000000000000002.log is missing"), std::string::npos)
      << log.status().message();
}

TEST_F(LogCorruptionTest, SegmentWithAnotherFilesHeaderRefusesToOpen) {
  {
    auto log = Reopen(nullptr);
    ASSERT_TRUE(log.ok());
  }
  // seg-2 now exists (header only); put seg-2's content under seg-1's name... and vice versa.
  const auto segments = Segments(options_.dir);
  ASSERT_EQ(segments.size(), 2u);
  const std::string one = ReadAll(segments[0]);
  const std::string two = ReadAll(segments[1]);
  WriteAll(segments[0], two);
  WriteAll(segments[1], one);
  ExpectRefusedAt("seg-0000000000000001.log", 0);
}

TEST_F(LogCorruptionTest, DamagedSnapshotRefusesToOpen) {
  {
    auto log = Reopen(nullptr);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Compact().ok());
  }
  std::string snapshot;
  for (const auto& name : ListDir(options_.dir)) {
    if (name.starts_with("snap-")) snapshot = options_.dir + "/" + name;
  }
  ASSERT_FALSE(snapshot.empty());
  std::string data = ReadAll(snapshot);
  data[data.size() - 1] ^= 0x01;  // even the last record: a snapshot is never torn
  WriteAll(snapshot, data);
  auto log = Reopen(nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("snap-"), std::string::npos) << log.status().message();
}

TEST_F(LogCorruptionTest, LeftoverTempSnapshotIsRemoved) {
  WriteAll(options_.dir + "/snap-0000000000000001.tmp", "half a snapshot");
  RecoveredLog recovered;
  auto log = Reopen(&recovered);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(recovered.unfinished.size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(options_.dir + "/snap-0000000000000001.tmp"));
}

TEST_F(LogCorruptionTest, SegmentsLeftByACompactionThatCrashedBeforeDeletingAreIgnored) {
  const std::string before = ReadAll(segment_);
  {
    auto log = Reopen(nullptr);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Rec(RecordType::kEnd, "first", ""), Durability::kForced).ok());
    ASSERT_TRUE((*log)->Compact().ok());
  }
  // The crash came after the snapshot's rename, before the old segment was removed.
  WriteAll(segment_, before);
  RecoveredLog recovered;
  auto log = Reopen(&recovered);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(recovered.unfinished.size(), 2u);
  EXPECT_EQ(recovered.unfinished[0].gid, "second");
  EXPECT_FALSE(std::filesystem::exists(segment_));
}

TEST_F(LogCorruptionTest, NewestSegmentWithATornHeaderIsReplaced) {
  {
    auto log = Reopen(nullptr);  // creates seg-2 (header only)
    ASSERT_TRUE(log.ok());
  }
  const auto segments = Segments(options_.dir);
  ASSERT_EQ(segments.size(), 2u);
  std::filesystem::resize_file(segments[1], 4);
  RecoveredLog recovered;
  auto log = Reopen(&recovered);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(recovered.unfinished.size(), 3u);
  EXPECT_EQ(recovered.torn_tail_bytes, 4u);
  (*log)->Close();
  RecoveredLog again;
  auto reopened = Reopen(&again);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
}

}  // namespace
}  // namespace txc::log
