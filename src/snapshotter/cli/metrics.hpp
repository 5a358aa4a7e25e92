// A job's metrics as CloudWatch Embedded Metric Format: one JSON line on
// stderr that a log collector turns into metrics (docs/AWS_RUNBOOK.md). Built
// here, in the CLI, from the job's end that the action reports.
#pragma once

#include "snapshotter/snapshot/events.hpp"

#include <nlohmann/json.hpp>
#include <span>
#include <string_view>

namespace snapshotter::cli {

// The CloudWatch namespace and dimension of the job metrics.
inline constexpr std::string_view k_metrics_namespace = "snapshotter";
inline constexpr std::string_view k_metrics_dimension = "Action";

// One job metric: its CloudWatch name and unit, and the field of the job
// summary it reports (empty for DurationSeconds, the job's wall time).
struct JobMetric {
    std::string_view name;
    std::string_view unit;
    std::string_view summary_field;
};

// Every metric of the job's EMF line.
std::span<const JobMetric> job_metrics();

// The EMF document of the job that ended as `end`: every job metric, stamped
// now, and also a well-formed log line of ours (ts, level, msg).
nlohmann::json emf_document(const snapshot::JobEnd& end);

} // namespace snapshotter::cli
