#include "coordinator/metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

namespace txc::metrics {
namespace {

prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

struct ProcStat {
  double cpu_seconds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

// /proc/self/stat fields 14-15 (utime, stime, in clock ticks), 22 (starttime, ticks since boot),
// 23 (vsize, bytes) and 24 (rss, pages); the boot time comes from /proc/stat's btime.
std::optional<ProcStat> ReadProcStat() {
  std::ifstream stat_file("/proc/self/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: start after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> values;
  for (std::string value; fields >> value;) values.push_back(value);
  // values[0] is field 3 (state): field n is values[n - 3].
  if (values.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string entry; std::getline(proc_stat, entry);) {
    if (entry.rfind("btime ", 0) == 0) boot_time = std::stod(entry.substr(6));
  }
  ProcStat stat;
  try {
    stat.cpu_seconds = (std::stod(values[11]) + std::stod(values[12])) / ticks;
    stat.start_time_seconds = boot_time + std::stod(values[19]) / ticks;
    stat.virtual_bytes = std::stod(values[20]);
    stat.resident_bytes = std::stod(values[21]) * page;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return stat;
}

std::optional<double> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory stream's own descriptor
}

std::optional<double> MaxFds() {
  std::ifstream limits("/proc/self/limits");
  for (std::string line; std::getline(limits, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return std::nullopt;
    try {
      return std::stod(soft);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<prometheus::MetricFamily> CollectProcessMetrics(const std::string& version,
                                                            const std::string& node_id) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  prometheus::MetricFamily build =
      Family("txc_build_info", "txcoord's version and node_id (the value is always 1)",
             MetricType::Gauge, 1);
  build.metric[0].label = {{"node_id", node_id}, {"version", version}};
  families.push_back(std::move(build));
  if (auto stat = ReadProcStat()) {
    families.push_back(Family("process_cpu_seconds_total",
                              "User and system CPU time spent, in seconds", MetricType::Counter,
                              stat->cpu_seconds));
    families.push_back(Family("process_start_time_seconds",
                              "Start time of the process since the Unix epoch, in seconds",
                              MetricType::Gauge, stat->start_time_seconds));
    families.push_back(Family("process_virtual_memory_bytes", "Virtual memory size, in bytes",
                              MetricType::Gauge, stat->virtual_bytes));
    families.push_back(Family("process_resident_memory_bytes", "Resident memory size, in bytes",
                              MetricType::Gauge, stat->resident_bytes));
  }
  if (auto fds = CountOpenFds()) {
    families.push_back(
        Family("process_open_fds", "Open file descriptors", MetricType::Gauge, *fds));
  }
  if (auto max = MaxFds()) {
    families.push_back(
        Family("process_max_fds", "The limit on open file descriptors", MetricType::Gauge, *max));
  }
  return families;
}

}  // namespace txc::metrics
