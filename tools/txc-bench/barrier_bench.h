#pragma once

#include <string>
#include <vector>

namespace txc::bench {

// `txc-bench barrier`: what the participant-side barrier (tcc/barrier) costs a handler, on the
// real databases and with no coordinator: a handler-like transaction (BEGIN; with the barrier,
// EnterPostgres / EnterMysql for a fresh (gid, branch, "try") key; UPDATE one random account;
// COMMIT) run by concurrent clients with and without the barrier, alternately over several
// rounds, on PostgreSQL and on MariaDB / MySQL; medians and the ratio with/without.
int RunBarrierBench(const std::vector<std::string>& args);

// The scenario's usage text (txc-bench --help, txc-bench barrier --help).
const char* BarrierUsage();

}  // namespace txc::bench
