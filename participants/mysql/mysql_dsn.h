// The DSN of a MySQL / MariaDB resource (API.md `resources:`):
//   mysql://user[:password]@host[:port][/database]
// user, password and database are percent-decoded (a password with '@', ':' or '/' must be
// written %40, %3A, %2F); host may be an [IPv6] literal; port defaults to 3306. Query
// parameters are not supported. Messages about a DSN never contain its password.
#pragma once

#include <string>
#include <string_view>

#include "coordinator/common/status.h"

namespace txc::participants::mysql {

struct MysqlDsn {
  std::string host;
  int port = 3306;
  std::string user;
  std::string password;
  std::string database;  // may be empty: no default schema

  // mysql://user:***@host:port/database: for logs and messages.
  std::string Redacted() const;
  // The Connector/C++ hostName: tcp://host:port (tcp://[v6]:port).
  std::string ConnectorHostName() const;
};

// InvalidArgument naming what is wrong (never echoing the password) for a malformed DSN.
Result<MysqlDsn> ParseMysqlDsn(std::string_view dsn);

}  // namespace txc::participants::mysql
