// Process metrics in the names Prometheus client libraries use (process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds, process_open_fds, ...), read from
// /proc/self at each scrape, and txc_build_info{version, node_id} = 1, so a dashboard sees
// restarts, memory and file descriptors beside the transactions.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace txc::metrics {

// The families as of now. On a system without /proc (not Linux) only txc_build_info.
std::vector<prometheus::MetricFamily> CollectProcessMetrics(const std::string& version,
                                                            const std::string& node_id);

}  // namespace txc::metrics
