// Database sessions for the scenarios that talk to PostgreSQL and MariaDB / MySQL themselves
// (2pc-db, barrier): connecting with timeouts, registering threads with the MySQL client library,
// one-line error messages, and the random account picker of their workloads.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <random>
#include <string>

#include "participants/mysql/mysql_dsn.h"

namespace sql {
class Connection;
}  // namespace sql

namespace txc::bench {

// The first line of an exception's text (libpq's messages run over several lines), with the
// database's error code: "MariaDB error 1205 (HY000): ...", "PostgreSQL error 40001: ...".
std::string DescribeException(const std::exception& e);

// Makes the MySQL client library ready for threads: call it on the main thread before any worker
// thread connects (the driver's first use is not thread-safe, shared/NOTES.md).
void InitMysqlDriver();

// Registers the current thread with the MySQL client library for as long as it lives; a worker
// holds one declared before its sessions, which it outlives.
class MysqlThread {
 public:
  MysqlThread();
  ~MysqlThread();
  MysqlThread(const MysqlThread&) = delete;
  MysqlThread& operator=(const MysqlThread&) = delete;
};

// A session to `dsn` (autocommit on, utf8mb4, no silent reconnect, 10 s connect and 120 s read
// and write timeouts); throws sql::SQLException.
std::unique_ptr<sql::Connection> ConnectMysql(const participants::mysql::MysqlDsn& dsn);

// Runs one statement, discarding any result set.
void MysqlExecute(sql::Connection& connection, const std::string& text);

// `dsn` with connect_timeout=10 unless it names one: libpq waits for an unresponsive server for
// ever unless told otherwise. Both the URI and the key=value forms.
std::string WithConnectTimeout(const std::string& dsn);

// Account ids 1..accounts, uniformly at random; one per worker (`index` varies its seed).
class AccountPicker {
 public:
  AccountPicker(int index, int64_t accounts)
      : random_(std::random_device{}() ^ (static_cast<uint64_t>(index) << 32)),
        pick_(1, accounts) {}
  int64_t Next() { return pick_(random_); }

 private:
  std::mt19937_64 random_;
  std::uniform_int_distribution<int64_t> pick_;
};

}  // namespace txc::bench
