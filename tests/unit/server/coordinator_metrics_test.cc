// Every metric of API.md's table is declared, named by the conventions, and the log observer
// feeds the log metrics.
#include "coordinator/metrics/coordinator_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace txc::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// API.md "Metrics", plus the log metrics this project adds.
const std::vector<std::pair<std::string, std::string>>& ExpectedFamilies() {
  static const std::vector<std::pair<std::string, std::string>> families = {
      {"txc_transactions_started_total", "counter"},
      {"txc_transactions_finished_total", "counter"},
      {"txc_transactions_in_flight", "gauge"},
      {"txc_transactions_stuck", "gauge"},
      {"txc_transaction_duration_seconds", "histogram"},
      {"txc_branch_calls_total", "counter"},
      {"txc_branch_call_duration_seconds", "histogram"},
      {"txc_retries_total", "counter"},
      {"txc_log_appends_total", "counter"},
      {"txc_log_fsync_duration_seconds", "histogram"},
      {"txc_log_group_commit_records", "histogram"},
      {"txc_recovered_transactions_total", "counter"},
      {"txc_indoubt_resolved_total", "counter"},
      {"txc_requests_rejected_total", "counter"},
      {"txc_build_info", "gauge"},
      {"txc_log_torn_tail_bytes_total", "counter"},
      {"txc_log_compaction_duration_seconds", "histogram"},
      {"txc_log_compaction_records_kept", "gauge"},
  };
  return families;
}

TEST(CoordinatorMetricsTest, DeclaresEveryMetricOfTheContract) {
  CoordinatorMetrics metrics({"orders", "payments"});
  const std::string text = metrics.Serialize();
  for (const auto& [name, type] : ExpectedFamilies()) {
    EXPECT_THAT(text, HasSubstr("# TYPE " + name + " " + type + "\n")) << name;
    EXPECT_THAT(text, HasSubstr("# HELP " + name + " ")) << name;
  }
}

TEST(CoordinatorMetricsTest, FollowsTheNamingConventions) {
  CoordinatorMetrics metrics({"orders"});
  std::istringstream lines(metrics.Serialize());
  std::string line;
  int families = 0;
  int process_families = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string hash, keyword, name, type;
    words >> hash >> keyword >> name >> type;
    if (hash != "#" || keyword != "TYPE") {
      // No series carries a transaction id.
      EXPECT_THAT(line, Not(HasSubstr("gid="))) << line;
      continue;
    }
    // The process metrics keep the names every Prometheus client library gives them.
    if (name.rfind("process_", 0) == 0) {
      ++process_families;
      continue;
    }
    ++families;
    EXPECT_EQ(name.rfind("txc_", 0), 0u) << name;
    const bool ends_total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", ends_total) << name << " (counters and only counters end _total)";
    EXPECT_THAT(name, Not(HasSubstr("millis"))) << "base units: seconds";
  }
  EXPECT_EQ(families, static_cast<int>(ExpectedFamilies().size()));
  EXPECT_GE(process_families, 4);  // cpu, start time, memory, open fds (Linux)
}

TEST(CoordinatorMetricsTest, EveryKnownSeriesExistsAtZero) {
  CoordinatorMetrics metrics({"orders"});
  const std::string text = metrics.Serialize();
  for (const std::string& protocol : MetricLabelValues::Protocols()) {
    EXPECT_THAT(text, HasSubstr("txc_transactions_started_total{protocol=\"" + protocol + "\"} 0"));
    for (const std::string& op : MetricLabelValues::Ops(protocol)) {
      EXPECT_THAT(text, HasSubstr("op=\"" + op + "\"")) << op;
    }
  }
  EXPECT_THAT(text,
              HasSubstr("txc_transactions_in_flight{protocol=\"3pc\",state=\"precommitting\"} 0"));
  EXPECT_THAT(text,
              HasSubstr("txc_indoubt_resolved_total{action=\"rollback\",resource=\"orders\"} 0"));
  EXPECT_THAT(text, HasSubstr("txc_requests_rejected_total{reason=\"queue_full\"} 0"));
}

TEST(CoordinatorMetricsTest, LogObserverFeedsTheLogMetrics) {
  CoordinatorMetrics metrics;
  log::LogObserver& observer = metrics;
  observer.OnAppend(log::Durability::kForced);
  observer.OnAppend(log::Durability::kForced);
  observer.OnAppend(log::Durability::kLazy);
  observer.OnSync(0.0003, 3);
  observer.OnSync(0.002, 40);
  observer.OnTornTail(17);
  observer.OnCompaction(0.02, 5);
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("txc_log_appends_total{durability=\"forced\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_appends_total{durability=\"lazy\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_fsync_duration_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_fsync_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_group_commit_records_sum 43\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_group_commit_records_bucket{le=\"4\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_torn_tail_bytes_total 17\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_compaction_duration_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("txc_log_compaction_records_kept 5\n"));
}

TEST(CoordinatorMetricsTest, RefusedConnectionsAreAddedOnceEach) {
  CoordinatorMetrics metrics;
  metrics.SyncRefusedConnections(3);
  metrics.SyncRefusedConnections(3);
  metrics.SyncRefusedConnections(5);
  metrics.SyncRefusedConnections(4);  // never goes back
  EXPECT_THAT(metrics.Serialize(),
              HasSubstr("txc_requests_rejected_total{reason=\"queue_full\"} 5\n"));
}

TEST(CoordinatorMetricsTest, BucketsIncreaseStrictly) {
  for (const auto* buckets : {&CoordinatorMetrics::TransactionDurationBuckets(),
                              &CoordinatorMetrics::BranchCallDurationBuckets(),
                              &CoordinatorMetrics::LogFsyncDurationBuckets(),
                              &CoordinatorMetrics::LogGroupCommitRecordsBuckets(),
                              &CoordinatorMetrics::LogCompactionDurationBuckets()}) {
    ASSERT_FALSE(buckets->empty());
    EXPECT_TRUE(std::adjacent_find(buckets->begin(), buckets->end(), std::greater_equal<>()) ==
                buckets->end());
  }
}

}  // namespace
}  // namespace txc::metrics
