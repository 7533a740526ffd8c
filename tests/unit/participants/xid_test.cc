// The xids of API.md "Database branches": formats, limits, SQL forms, and parsing back only our
// own (the in-doubt scan must never pick up another node's or another program's branches).
#include "participants/database/xid.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace txc::participants::database {
namespace {

constexpr uint32_t kMaxBranch = std::numeric_limits<uint32_t>::max();

TEST(XidTest, PostgresXidIsPrefixNodeGidBranch) {
  Result<std::string> xid = PostgresXid("c1", "order-1234", 0);
  ASSERT_TRUE(xid.ok()) << xid.status().ToString();
  EXPECT_EQ(*xid, "txc:c1:order-1234:0");
  EXPECT_EQ(*PostgresXid("node_A-2", "a.b_c-d", 17), "txc:node_A-2:a.b_c-d:17");
}

TEST(XidTest, MysqlXidIsGtridOfGidAndBqualOfNodeAndBranch) {
  Result<MysqlXid> xid = MakeMysqlXid("c1", "order-1234", 2);
  ASSERT_TRUE(xid.ok()) << xid.status().ToString();
  EXPECT_EQ(xid->gtrid, "txc:order-1234");
  EXPECT_EQ(xid->bqual, "c1:2");
  EXPECT_EQ(xid->format_id, 7889763);
}

// API.md: a gid is at most 56 characters "(it must fit in a MySQL XID)": "txc:" + 56 = 60 <= 64.
TEST(XidTest, LongestIdsFitEveryDatabaseLimit) {
  const std::string gid(kGidLengthMax, 'g');
  const std::string node(kNodeIdLengthMax, 'n');
  Result<MysqlXid> mysql = MakeMysqlXid(node, gid, kMaxBranch);
  ASSERT_TRUE(mysql.ok()) << mysql.status().ToString();
  EXPECT_EQ(mysql->gtrid.size(), 60u);
  EXPECT_LE(mysql->gtrid.size(), kMysqlXidPartLengthMax);
  EXPECT_LE(mysql->bqual.size(), kMysqlXidPartLengthMax);
  Result<std::string> postgres = PostgresXid(node, gid, kMaxBranch);
  ASSERT_TRUE(postgres.ok()) << postgres.status().ToString();
  EXPECT_LT(postgres->size(), 200u);  // "less than 200 bytes"
}

TEST(XidTest, RejectsInvalidGids) {
  for (const std::string& gid :
       {std::string(), std::string(kGidLengthMax + 1, 'g'), std::string("a:b"), std::string("a b"),
        std::string("a'b"), std::string("caf\xc3\xa9"), std::string("a/b")}) {
    EXPECT_EQ(PostgresXid("c1", gid, 0).status().code(), StatusCode::kInvalidArgument) << gid;
    EXPECT_EQ(MakeMysqlXid("c1", gid, 0).status().code(), StatusCode::kInvalidArgument) << gid;
    EXPECT_FALSE(ValidateGid(gid).ok()) << gid;
  }
}

TEST(XidTest, RejectsInvalidNodeIds) {
  // Node ids allow [A-Za-z0-9_-] only: no '.', unlike gids.
  for (const std::string& node : {std::string(), std::string(kNodeIdLengthMax + 1, 'n'),
                                  std::string("c.1"), std::string("c:1"), std::string("c 1")}) {
    EXPECT_EQ(PostgresXid(node, "g", 0).status().code(), StatusCode::kInvalidArgument) << node;
    EXPECT_EQ(MakeMysqlXid(node, "g", 0).status().code(), StatusCode::kInvalidArgument) << node;
    EXPECT_FALSE(ValidateNodeId(node).ok()) << node;
  }
  EXPECT_TRUE(ValidateNodeId(std::string(kNodeIdLengthMax, 'n')).ok());
}

TEST(XidTest, PostgresXidParsesBackForItsOwnNode) {
  for (const uint32_t branch : {0u, 1u, 63u, kMaxBranch}) {
    const std::string gid(kGidLengthMax, 'x');
    const std::optional<BranchId> parsed = ParsePostgresXid(*PostgresXid("c1", gid, branch), "c1");
    ASSERT_TRUE(parsed.has_value()) << branch;
    EXPECT_EQ(*parsed, (BranchId{gid, branch}));
  }
}

TEST(XidTest, PostgresParserRejectsForeignAndMalformedXids) {
  for (const char* xid : {
           "txc:c2:g:0",           // another node
           "txc:c10:g:0",          // a node whose id starts with ours
           "txc:c:g:0",            // a node whose id is a prefix of ours
           "TXC:c1:g:0",           // another prefix
           "pgbench:c1:g:0",       // another program
           "other-program-gid",    // no structure at all
           "txc:c1:g",             // no branch
           "txc:c1:g:",            // empty branch
           "txc:c1::0",            // empty gid
           "txc:c1:g:01",          // not canonical: one branch has one xid
           "txc:c1:g:-1",          // negative
           "txc:c1:g:+1",          // signed
           "txc:c1:g:4294967296",  // beyond uint32
           "txc:c1:g:0:1",         // extra part
           "txc:c1:g h:0",         // invalid gid
       }) {
    EXPECT_FALSE(ParsePostgresXid(xid, "c1").has_value()) << xid;
  }
}

TEST(XidTest, MysqlXidParsesBackForItsOwnNode) {
  for (const uint32_t branch : {0u, 5u, kMaxBranch}) {
    const std::optional<BranchId> parsed =
        ParseMysqlXid(*MakeMysqlXid("node-1", "order.1", branch), "node-1");
    ASSERT_TRUE(parsed.has_value()) << branch;
    EXPECT_EQ(*parsed, (BranchId{"order.1", branch}));
  }
}

TEST(XidTest, MysqlParserRejectsForeignAndMalformedXids) {
  const auto xid = [](std::string gtrid, std::string bqual, int64_t format_id) {
    return MysqlXid{std::move(gtrid), std::move(bqual), format_id};
  };
  for (const MysqlXid& foreign : {
           xid("txc:g", "c2:0", kMysqlFormatId),    // another node
           xid("txc:g", "c10:0", kMysqlFormatId),   // a node whose id starts with ours
           xid("txc:g", "c1:0", 1),                 // another formatID (another program)
           xid("txc:g", "c1", kMysqlFormatId),      // no branch
           xid("txc:g", "c1:01", kMysqlFormatId),   // not canonical
           xid("txc:g", "c1:0:0", kMysqlFormatId),  // extra part
           xid("tx:g", "c1:0", kMysqlFormatId),     // another prefix
           xid("txc:", "c1:0", kMysqlFormatId),     // empty gid
           xid("txc:g:h", "c1:0", kMysqlFormatId),  // invalid gid
           xid("g", "c1:0", kMysqlFormatId),        // no prefix at all
       }) {
    EXPECT_FALSE(ParseMysqlXid(foreign, "c1").has_value())
        << foreign.gtrid << " / " << foreign.bqual << " / " << foreign.format_id;
  }
}

TEST(XidTest, MysqlXidSqlUsesHexLiterals) {
  EXPECT_EQ(MysqlXidSql(MysqlXid{"txc:o-1", "c1:0", kMysqlFormatId}),
            "X'7478633a6f2d31',X'63313a30',7889763");
  EXPECT_EQ(MysqlXidSql(MysqlXid{"", "\xff'", 1}), "X'',X'ff27',1");
}

TEST(XidTest, PostgresStringLiteralDoublesQuotes) {
  EXPECT_EQ(PostgresStringLiteral("txc:c1:g:0"), "'txc:c1:g:0'");
  EXPECT_EQ(PostgresStringLiteral("it's"), "'it''s'");
  EXPECT_EQ(PostgresStringLiteral(""), "''");
}

// XA RECOVER: formatID, gtrid_length, bqual_length, data = gtrid followed by bqual.
TEST(XidTest, RecoverRowSplitsDataByLengths) {
  const std::optional<MysqlXid> xid = MysqlXidFromRecoverRow(kMysqlFormatId, 5, 4, "txc:gc1:0");
  ASSERT_TRUE(xid.has_value());
  EXPECT_EQ(*xid, (MysqlXid{"txc:g", "c1:0", kMysqlFormatId}));
  EXPECT_FALSE(MysqlXidFromRecoverRow(kMysqlFormatId, 5, 5, "txc:gc1:0").has_value());
  EXPECT_FALSE(MysqlXidFromRecoverRow(kMysqlFormatId, -1, 10, "txc:gc1:0").has_value());
  EXPECT_FALSE(MysqlXidFromRecoverRow(kMysqlFormatId, 3, 3, "txc:gc1:0").has_value());
}

}  // namespace
}  // namespace txc::participants::database
