// ParseMysqlDsn: mysql://user:password@host:port/database, percent-decoding, and messages that
// never show the password.
#include "participants/mysql/mysql_dsn.h"

#include <gtest/gtest.h>

#include <string>

namespace txc::participants::mysql {
namespace {

TEST(MysqlDsnTest, ParsesEveryPart) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://txc:pw@127.0.0.1:3307/payments");
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  EXPECT_EQ(dsn->user, "txc");
  EXPECT_EQ(dsn->password, "pw");
  EXPECT_EQ(dsn->host, "127.0.0.1");
  EXPECT_EQ(dsn->port, 3307);
  EXPECT_EQ(dsn->database, "payments");
  EXPECT_EQ(dsn->ConnectorHostName(), "tcp://127.0.0.1:3307");
}

TEST(MysqlDsnTest, DefaultsAndOptionalParts) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://root@db.example");
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  EXPECT_EQ(dsn->port, 3306);
  EXPECT_EQ(dsn->password, "");
  EXPECT_EQ(dsn->database, "");
  EXPECT_TRUE(ParseMysqlDsn("mysql://root:pw@host/").ok());
}

TEST(MysqlDsnTest, PercentDecodesUserPasswordAndDatabase) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://us%65r:p%40ss%3Aw%2Fo%25rd@h:1/d%62");
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  EXPECT_EQ(dsn->user, "user");
  EXPECT_EQ(dsn->password, "p@ss:w/o%rd");
  EXPECT_EQ(dsn->database, "db");
}

TEST(MysqlDsnTest, AnUnencodedAtInThePasswordStillParses) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://u:p@ss@h:1/d");
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  EXPECT_EQ(dsn->password, "p@ss");
  EXPECT_EQ(dsn->host, "h");
}

TEST(MysqlDsnTest, Ipv6Literal) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://u:p@[::1]:3308/d");
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  EXPECT_EQ(dsn->host, "::1");
  EXPECT_EQ(dsn->port, 3308);
  EXPECT_EQ(dsn->ConnectorHostName(), "tcp://[::1]:3308");
}

TEST(MysqlDsnTest, RejectsMalformedDsnsWithoutShowingThePassword) {
  for (const char* text : {
           "postgresql://u:s3cret@h/d",   // another scheme
           "mysql://h:1/d",               // no user
           "mysql://:s3cret@h/d",         // empty user
           "mysql://u:s3cret@/d",         // empty host
           "mysql://u:s3cret@h:0/d",      // port out of range
           "mysql://u:s3cret@h:65536/d",  // port out of range
           "mysql://u:s3cret@h:x/d",      // port not a number
           "mysql://u:s3cret@h:/d",       // empty port
           "mysql://u:s3cret@h/d?ssl=1",  // query parameters
           "mysql://u:s3cret%4@h/d",      // truncated escape
           "mysql://u:s3cret%zz@h/d",     // non-hex escape
           "mysql://u:s3cret@h/a/b",      // '/' in the database
           "mysql://u:s3cret@[::1/d",     // unclosed IPv6
       }) {
    const Result<MysqlDsn> dsn = ParseMysqlDsn(text);
    ASSERT_FALSE(dsn.ok()) << text;
    EXPECT_EQ(dsn.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(dsn.status().message().find("s3cret"), std::string::npos)
        << text << ": " << dsn.status().message();
  }
}

TEST(MysqlDsnTest, RedactedHidesThePassword) {
  Result<MysqlDsn> dsn = ParseMysqlDsn("mysql://txc:s3cret@127.0.0.1:3307/payments");
  ASSERT_TRUE(dsn.ok());
  EXPECT_EQ(dsn->Redacted(), "mysql://txc:***@127.0.0.1:3307/payments");
  EXPECT_EQ(ParseMysqlDsn("mysql://txc@h")->Redacted(), "mysql://txc@h:3306");
}

}  // namespace
}  // namespace txc::participants::mysql
