// The DSN parsing and xid helpers the integration tests stand on (tests/support/db_env.h).
// They need no server.
#include "tests/support/db_env.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace txc::testing {
namespace {

TEST(ParseMysqlDsnTest, SplitsAFullDsn) {
  std::string error;
  const std::optional<MysqlDsn> dsn =
      ParseMysqlDsn("mysql://txc:txc_test_pw@127.0.0.1:23306/txc_test", &error);
  ASSERT_TRUE(dsn.has_value()) << error;
  EXPECT_EQ(dsn->user, "txc");
  EXPECT_EQ(dsn->password, "txc_test_pw");
  EXPECT_EQ(dsn->host, "127.0.0.1");
  EXPECT_EQ(dsn->port, 23306);
  EXPECT_EQ(dsn->database, "txc_test");
}

TEST(ParseMysqlDsnTest, DefaultsThePortAndAllowsNoPasswordAndNoDatabase) {
  std::string error;
  const std::optional<MysqlDsn> dsn = ParseMysqlDsn("mysql://root@db.example", &error);
  ASSERT_TRUE(dsn.has_value()) << error;
  EXPECT_EQ(dsn->user, "root");
  EXPECT_EQ(dsn->password, "");
  EXPECT_EQ(dsn->host, "db.example");
  EXPECT_EQ(dsn->port, 3306);
  EXPECT_EQ(dsn->database, "");
}

TEST(ParseMysqlDsnTest, PercentDecodesUserPasswordAndDatabase) {
  std::string error;
  const std::optional<MysqlDsn> dsn =
      ParseMysqlDsn("mysql://a%40b:p%3Aw%2F%25@[::1]:3307/my%20db", &error);
  ASSERT_TRUE(dsn.has_value()) << error;
  EXPECT_EQ(dsn->user, "a@b");
  EXPECT_EQ(dsn->password, "p:w/%");
  EXPECT_EQ(dsn->host, "::1");
  EXPECT_EQ(dsn->port, 3307);
  EXPECT_EQ(dsn->database, "my db");
}

TEST(ParseMysqlDsnTest, RejectsMalformedDsns) {
  for (const char* bad :
       {"postgresql://u@h/db", "mysql://h:3306/db", "mysql://@h/db", "mysql://u@/db",
        "mysql://u@h:/db", "mysql://u@h:0/db", "mysql://u@h:65536/db", "mysql://u@h:33x/db",
        "mysql://u@h/db?ssl=1", "mysql://u:%zz@h/db", "mysql://u:%4@h/db", "mysql://u@[::1/db"}) {
    std::string error;
    EXPECT_FALSE(ParseMysqlDsn(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(XaXidSqlTest, WritesHexLiteralsAndTheFormatId) {
  EXPECT_EQ(XaXidSql(XaXid{"txc:g", "c1:0", 7889763}), "X'7478633a67',X'63313a30',7889763");
  EXPECT_EQ(XaXidSql(XaXid{"", "", 1}), "X'',X'',1");
  EXPECT_EQ(XaXidSql(XaXid{std::string("\xff\x00", 2), "'", 0}), "X'ff00',X'27',0");
}

}  // namespace
}  // namespace txc::testing
