// CoordinatorMetrics: every Prometheus metric txcoord exports, declared in this one place with its
// name, help, unit and labels (API.md "Metrics"). Dashboards and alert rules are built from this
// file only.
//
// Conventions (https://prometheus.io/docs/practices/naming): base units (seconds, bytes), `_total`
// on counters, no per-transaction labels (no gid): label values come from small fixed sets
// (protocol, state, outcome, op, result, durability, reason, resource names from the config).
//
// Thread-safe: prometheus-cpp counters, gauges and histograms are atomic, and Family::Add locks.
// Families are exposed so the engine can add its label sets; the hot log-path children are
// resolved once here.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/log/decision_log.h"

namespace txc::metrics {

// The label values each labelled metric can take. Every combination is created at zero when the
// metrics are built, so dashboards and alert rules see every series from the first scrape (a
// series that appears only on its first event hides that event from rate()).
struct MetricLabelValues {
  static const std::vector<std::string>& Protocols();  // saga, tcc, 2pc, 3pc
  static const std::vector<std::string>& Outcomes();   // committed, aborted
  // The states a transaction of `protocol` passes through before it is final (API.md).
  static const std::vector<std::string>& InFlightStates(const std::string& protocol);
  // The branch operations of `protocol` (the Txc-Op header values).
  static const std::vector<std::string>& Ops(const std::string& protocol);
  static const std::vector<std::string>& BranchCallResults();  // ok, refused, transient, permanent
  static const std::vector<std::string>& InDoubtActions();     // commit, rollback
};

class CoordinatorMetrics final : public log::LogObserver {
 public:
  // `resource_names`: the configured database resources (txc_indoubt_resolved_total's label);
  // `node_id`: this coordinator's, for txc_build_info.
  explicit CoordinatorMetrics(const std::vector<std::string>& resource_names = {},
                              std::string node_id = "");
  ~CoordinatorMetrics() override;

  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // The whole registry, the process metrics and txc_build_info (process_metrics.h) in the
  // Prometheus text exposition format (version 0.0.4).
  std::string Serialize() const;

  prometheus::Registry& registry() { return *registry_; }

  // --- Transactions. Labels: protocol (saga|tcc|2pc|3pc), state, outcome (committed|aborted).
  prometheus::Family<prometheus::Counter>& transactions_started() { return transactions_started_; }
  prometheus::Family<prometheus::Counter>& transactions_finished() {
    return transactions_finished_;
  }
  prometheus::Family<prometheus::Gauge>& transactions_in_flight() {
    return transactions_in_flight_;
  }
  prometheus::Family<prometheus::Gauge>& transactions_stuck() { return transactions_stuck_; }
  prometheus::Family<prometheus::Histogram>& transaction_duration() {
    return transaction_duration_;
  }
  static const prometheus::Histogram::BucketBoundaries& TransactionDurationBuckets();

  // --- Branch calls. Labels: protocol, op (action|compensate|try|...), result
  // (ok|refused|transient|permanent).
  prometheus::Family<prometheus::Counter>& branch_calls() { return branch_calls_; }
  prometheus::Family<prometheus::Histogram>& branch_call_duration() {
    return branch_call_duration_;
  }
  static const prometheus::Histogram::BucketBoundaries& BranchCallDurationBuckets();
  prometheus::Family<prometheus::Counter>& retries() { return retries_; }

  // --- Recovery and in-doubt resolution. Labels: protocol; resource, action (commit|rollback).
  prometheus::Family<prometheus::Counter>& recovered_transactions() {
    return recovered_transactions_;
  }
  prometheus::Family<prometheus::Counter>& indoubt_resolved() { return indoubt_resolved_; }

  // --- Load shedding. Label: reason (queue_full, ...).
  prometheus::Family<prometheus::Counter>& requests_rejected() { return requests_rejected_; }
  // The HTTP server counts connections it refused because its queue was full as a running total;
  // this adds what is new since the last call to txc_requests_rejected_total{reason="queue_full"}.
  void SyncRefusedConnections(uint64_t refused_total);

  // --- Decision log (fed through LogObserver).
  void OnAppend(log::Durability durability) override;
  void OnSync(double seconds, size_t records) override;
  void OnTornTail(uint64_t bytes) override;
  void OnCompaction(double seconds, size_t records_kept) override;
  static const prometheus::Histogram::BucketBoundaries& LogFsyncDurationBuckets();
  static const prometheus::Histogram::BucketBoundaries& LogGroupCommitRecordsBuckets();
  static const prometheus::Histogram::BucketBoundaries& LogCompactionDurationBuckets();

 private:
  std::string node_id_;
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>& transactions_started_;
  prometheus::Family<prometheus::Counter>& transactions_finished_;
  prometheus::Family<prometheus::Gauge>& transactions_in_flight_;
  prometheus::Family<prometheus::Gauge>& transactions_stuck_;
  prometheus::Family<prometheus::Histogram>& transaction_duration_;
  prometheus::Family<prometheus::Counter>& branch_calls_;
  prometheus::Family<prometheus::Histogram>& branch_call_duration_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& log_appends_;
  prometheus::Family<prometheus::Histogram>& log_fsync_duration_;
  prometheus::Family<prometheus::Histogram>& log_group_commit_records_;
  prometheus::Family<prometheus::Counter>& log_torn_tail_bytes_;
  prometheus::Family<prometheus::Histogram>& log_compaction_duration_;
  prometheus::Family<prometheus::Gauge>& log_compaction_records_kept_;
  prometheus::Family<prometheus::Counter>& recovered_transactions_;
  prometheus::Family<prometheus::Counter>& indoubt_resolved_;
  prometheus::Family<prometheus::Counter>& requests_rejected_;

  // Children on the log's hot path, resolved once.
  prometheus::Counter& log_appends_forced_;
  prometheus::Counter& log_appends_lazy_;
  prometheus::Histogram& log_fsync_seconds_;
  prometheus::Histogram& log_group_commit_size_;
  prometheus::Counter& log_torn_tail_bytes_total_;
  prometheus::Histogram& log_compaction_seconds_;
  prometheus::Gauge& log_compaction_kept_;
  prometheus::Counter& requests_rejected_queue_full_;

  std::mutex refused_mutex_;
  uint64_t refused_seen_ = 0;  // guarded by refused_mutex_
};

}  // namespace txc::metrics
