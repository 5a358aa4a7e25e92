#include "snapshotter/cli/metrics.hpp"

#include "snapshotter/util/time.hpp"

#include <string>

namespace snapshotter::cli {
namespace {

using nlohmann::json;

constexpr JobMetric k_job_metrics[] = {
    {"RepositoriesOk", "Count", "ok"},
    {"RepositoriesUnchanged", "Count", "unchanged"},
    {"RepositoriesFailed", "Count", "failed"},
    {"RepositoriesSkipped", "Count", "skipped"},
    {"RepositoriesGone", "Count", "gone"},
    {"SourcesFailed", "Count", "sources_failed"},
    {"RefsRewritten", "Count", "refs_rewritten"},
    {"RefsDeleted", "Count", "refs_deleted"},
    {"LatestNotAdvanced", "Count", "latest_not_advanced"},
    {"BytesWritten", "Bytes", "bytes"},
    {"DurationSeconds", "Seconds", ""},
    // Added later: a summary without them (an older report) counts zero.
    {"RefsUpdated", "Count", "refs_updated"},
    {"LfsObjects", "Count", "lfs_objects"},
    {"LfsBytes", "Bytes", "lfs_bytes"},
    {"LfsObjectsUploaded", "Count", "lfs_objects_uploaded"},
    {"LfsBytesUploaded", "Bytes", "lfs_bytes_uploaded"},
    {"LfsMissing", "Count", "lfs_missing"},
};

} // namespace

std::span<const JobMetric> job_metrics() {
    return k_job_metrics;
}

json emf_document(const snapshot::JobEnd& end) {
    json metrics = json::array();
    for (const auto& m : k_job_metrics)
        metrics.push_back({{"Name", m.name}, {"Unit", m.unit}});
    json emf = {
        {"_aws",
         {{"Timestamp",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count()},
          {"CloudWatchMetrics",
           {{{"Namespace", k_metrics_namespace},
             {"Dimensions", {json::array({k_metrics_dimension})}},
             {"Metrics", metrics}}}}}},
        // Also a well-formed log line of ours: ts, level, msg.
        {"ts", format_rfc3339(Clock::now())},
        {"level", "info"},
        {"msg", "job metrics (CloudWatch embedded metric format)"},
        {std::string(k_metrics_dimension), end.action},
        {"job_id", end.job_id}};
    for (const auto& m : k_job_metrics)
        emf[std::string(m.name)] = m.summary_field.empty()
                                       ? json(static_cast<double>(end.duration_ms) / 1000.0)
                                       : end.summary.value(std::string(m.summary_field), json(0));
    return emf;
}

} // namespace snapshotter::cli
