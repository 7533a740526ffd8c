#include "coordinator/metrics/coordinator_metrics.h"

#include <prometheus/text_serializer.h>

#include <set>
#include <sstream>

#include "coordinator/metrics/process_metrics.h"

namespace txc::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const std::vector<std::string> kNoStrings;

}  // namespace

const std::vector<std::string>& MetricLabelValues::Protocols() {
  static const std::vector<std::string> values = {"saga", "tcc", "2pc", "3pc"};
  return values;
}

const std::vector<std::string>& MetricLabelValues::Outcomes() {
  static const std::vector<std::string> values = {"committed", "aborted"};
  return values;
}

const std::vector<std::string>& MetricLabelValues::InFlightStates(const std::string& protocol) {
  static const std::vector<std::string> saga = {"running", "compensating"};
  static const std::vector<std::string> tcc = {"trying", "confirming", "cancelling"};
  static const std::vector<std::string> two_phase = {"preparing", "committing", "aborting"};
  static const std::vector<std::string> three_phase = {"querying", "precommitting", "committing",
                                                       "aborting"};
  if (protocol == "saga") return saga;
  if (protocol == "tcc") return tcc;
  if (protocol == "2pc") return two_phase;
  if (protocol == "3pc") return three_phase;
  return kNoStrings;
}

const std::vector<std::string>& MetricLabelValues::Ops(const std::string& protocol) {
  static const std::vector<std::string> saga = {"action", "compensate"};
  static const std::vector<std::string> tcc = {"try", "confirm", "cancel"};
  static const std::vector<std::string> two_phase = {"prepare", "commit", "abort"};
  static const std::vector<std::string> three_phase = {"can_commit", "pre_commit", "do_commit",
                                                       "abort"};
  if (protocol == "saga") return saga;
  if (protocol == "tcc") return tcc;
  if (protocol == "2pc") return two_phase;
  if (protocol == "3pc") return three_phase;
  return kNoStrings;
}

const std::vector<std::string>& MetricLabelValues::BranchCallResults() {
  static const std::vector<std::string> values = {"ok", "refused", "transient", "permanent"};
  return values;
}

const std::vector<std::string>& MetricLabelValues::InDoubtActions() {
  static const std::vector<std::string> values = {"commit", "rollback"};
  return values;
}

// Transactions converge in milliseconds when all goes well and in minutes to hours when a
// participant is down and phase 2 keeps retrying: the buckets span 5 ms to 2 h, so the
// "time to consistency" dashboard can show both.
const prometheus::Histogram::BucketBoundaries& CoordinatorMetrics::TransactionDurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200};
  return buckets;
}

// One HTTP or SQL call to a participant: 1 ms on loopback up to the default call timeout (5 s)
// and a little beyond for calls configured longer.
const prometheus::Histogram::BucketBoundaries& CoordinatorMetrics::BranchCallDurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return buckets;
}

// fdatasync of a small append takes about 75 us on a write-back virtual disk and milliseconds on
// real SSDs; anything near a second is a sick disk that alerts must see.
const prometheus::Histogram::BucketBoundaries& CoordinatorMetrics::LogFsyncDurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
  return buckets;
}

// Records made durable by one fdatasync: 1 when idle, hundreds under load (powers of two).
const prometheus::Histogram::BucketBoundaries& CoordinatorMetrics::LogGroupCommitRecordsBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384};
  return buckets;
}

// A compaction rewrites the live state: milliseconds for a small log, seconds for a large one.
const prometheus::Histogram::BucketBoundaries& CoordinatorMetrics::LogCompactionDurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};
  return buckets;
}

CoordinatorMetrics::CoordinatorMetrics(const std::vector<std::string>& resource_names,
                                       std::string node_id)
    : node_id_(std::move(node_id)),
      registry_(std::make_shared<prometheus::Registry>()),
      transactions_started_(BuildCounter()
                                .Name("txc_transactions_started_total")
                                .Help("Transactions whose BEGIN was made durable, by protocol.")
                                .Register(*registry_)),
      transactions_finished_(
          BuildCounter()
              .Name("txc_transactions_finished_total")
              .Help("Transactions that reached a final state, by protocol and outcome "
                    "(committed|aborted).")
              .Register(*registry_)),
      transactions_in_flight_(
          BuildGauge()
              .Name("txc_transactions_in_flight")
              .Help("Transactions not yet final, by protocol and state: the soft state, how much "
                    "is not yet consistent.")
              .Register(*registry_)),
      transactions_stuck_(BuildGauge()
                              .Name("txc_transactions_stuck")
                              .Help("Transactions not final after stuck_after_ms, or with a "
                                    "branch waiting for an operator, by protocol.")
                              .Register(*registry_)),
      transaction_duration_(
          BuildHistogram()
              .Name("txc_transaction_duration_seconds")
              .Help("Seconds from BEGIN to a final state (time to converge), by protocol and "
                    "outcome.")
              .Register(*registry_)),
      branch_calls_(BuildCounter()
                        .Name("txc_branch_calls_total")
                        .Help("Calls to participants, by protocol, op and result "
                              "(ok|refused|transient|permanent).")
                        .Register(*registry_)),
      branch_call_duration_(BuildHistogram()
                                .Name("txc_branch_call_duration_seconds")
                                .Help("Seconds one participant call took, by op.")
                                .Register(*registry_)),
      retries_(BuildCounter()
                   .Name("txc_retries_total")
                   .Help("Participant calls repeated after a transient failure, by protocol and "
                         "op.")
                   .Register(*registry_)),
      log_appends_(BuildCounter()
                       .Name("txc_log_appends_total")
                       .Help("Records appended to the decision log, by durability (forced|lazy).")
                       .Register(*registry_)),
      log_fsync_duration_(BuildHistogram()
                              .Name("txc_log_fsync_duration_seconds")
                              .Help("Seconds one decision-log sync (fdatasync) took.")
                              .Register(*registry_)),
      log_group_commit_records_(BuildHistogram()
                                    .Name("txc_log_group_commit_records")
                                    .Help("Records made durable by one decision-log sync.")
                                    .Register(*registry_)),
      log_torn_tail_bytes_(BuildCounter()
                               .Name("txc_log_torn_tail_bytes_total")
                               .Help("Bytes of a torn (partly written) tail cut off the "
                                     "decision log at open.")
                               .Register(*registry_)),
      log_compaction_duration_(BuildHistogram()
                                   .Name("txc_log_compaction_duration_seconds")
                                   .Help("Seconds one decision-log compaction took; its _count "
                                         "is the number of compactions.")
                                   .Register(*registry_)),
      log_compaction_records_kept_(BuildGauge()
                                       .Name("txc_log_compaction_records_kept")
                                       .Help("Records the last decision-log compaction kept "
                                             "(live transactions and retained summaries).")
                                       .Register(*registry_)),
      recovered_transactions_(BuildCounter()
                                  .Name("txc_recovered_transactions_total")
                                  .Help("Unfinished transactions taken over from the log at "
                                        "start-up, by protocol.")
                                  .Register(*registry_)),
      indoubt_resolved_(BuildCounter()
                            .Name("txc_indoubt_resolved_total")
                            .Help("Prepared database branches resolved by the in-doubt scan, by "
                                  "resource and action (commit|rollback).")
                            .Register(*registry_)),
      requests_rejected_(BuildCounter()
                             .Name("txc_requests_rejected_total")
                             .Help("Requests or connections shed under load instead of served, by "
                                   "reason.")
                             .Register(*registry_)),
      log_appends_forced_(log_appends_.Add({{"durability", "forced"}})),
      log_appends_lazy_(log_appends_.Add({{"durability", "lazy"}})),
      log_fsync_seconds_(log_fsync_duration_.Add({}, LogFsyncDurationBuckets())),
      log_group_commit_size_(log_group_commit_records_.Add({}, LogGroupCommitRecordsBuckets())),
      log_torn_tail_bytes_total_(log_torn_tail_bytes_.Add({})),
      log_compaction_seconds_(log_compaction_duration_.Add({}, LogCompactionDurationBuckets())),
      log_compaction_kept_(log_compaction_records_kept_.Add({})),
      requests_rejected_queue_full_(requests_rejected_.Add({{"reason", "queue_full"}})) {
  using Values = MetricLabelValues;
  std::set<std::string> ops_seen;
  for (const std::string& protocol : Values::Protocols()) {
    transactions_started_.Add({{"protocol", protocol}});
    transactions_stuck_.Add({{"protocol", protocol}});
    recovered_transactions_.Add({{"protocol", protocol}});
    for (const std::string& outcome : Values::Outcomes()) {
      transactions_finished_.Add({{"protocol", protocol}, {"outcome", outcome}});
      transaction_duration_.Add({{"protocol", protocol}, {"outcome", outcome}},
                                TransactionDurationBuckets());
    }
    for (const std::string& state : Values::InFlightStates(protocol)) {
      transactions_in_flight_.Add({{"protocol", protocol}, {"state", state}});
    }
    for (const std::string& op : Values::Ops(protocol)) {
      retries_.Add({{"protocol", protocol}, {"op", op}});
      for (const std::string& result : Values::BranchCallResults()) {
        branch_calls_.Add({{"protocol", protocol}, {"op", op}, {"result", result}});
      }
      if (ops_seen.insert(op).second) {
        branch_call_duration_.Add({{"op", op}}, BranchCallDurationBuckets());
      }
    }
  }
  for (const std::string& resource : resource_names) {
    for (const std::string& action : Values::InDoubtActions()) {
      indoubt_resolved_.Add({{"resource", resource}, {"action", action}});
    }
  }
}

CoordinatorMetrics::~CoordinatorMetrics() = default;

std::string CoordinatorMetrics::Serialize() const {
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  auto families = registry_->Collect();
  for (auto& family : CollectProcessMetrics(TXC_VERSION, node_id_)) {
    families.push_back(std::move(family));
  }
  serializer.Serialize(out, families);
  return out.str();
}

void CoordinatorMetrics::SyncRefusedConnections(uint64_t refused_total) {
  std::lock_guard<std::mutex> lock(refused_mutex_);
  if (refused_total > refused_seen_) {
    requests_rejected_queue_full_.Increment(static_cast<double>(refused_total - refused_seen_));
    refused_seen_ = refused_total;
  }
}

void CoordinatorMetrics::OnAppend(log::Durability durability) {
  (durability == log::Durability::kForced ? log_appends_forced_ : log_appends_lazy_).Increment();
}

void CoordinatorMetrics::OnSync(double seconds, size_t records) {
  log_fsync_seconds_.Observe(seconds);
  log_group_commit_size_.Observe(static_cast<double>(records));
}

void CoordinatorMetrics::OnTornTail(uint64_t bytes) {
  log_torn_tail_bytes_total_.Increment(static_cast<double>(bytes));
}

void CoordinatorMetrics::OnCompaction(double seconds, size_t records_kept) {
  log_compaction_seconds_.Observe(seconds);
  log_compaction_kept_.Set(static_cast<double>(records_kept));
}

}  // namespace txc::metrics
