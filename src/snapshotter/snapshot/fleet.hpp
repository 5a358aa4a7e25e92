// Splitting a fleet across containers and naming its reports.
#pragma once

#include "snapshotter/job/job.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace snapshotter::snapshot {

// The CloudWatch namespace and dimension of the job metrics a snapshot job
// prints on stderr in Embedded Metric Format (docs/AWS_RUNBOOK.md).
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

// A hash of `name` that is the same on every machine and every run (FNV-1a).
std::uint64_t stable_hash(std::string_view name);

// The shard, in [0, count), that snapshots repository `name`; a repository
// keeps its shard when others are added, and few move when `count` changes.
int shard_of(std::string_view name, int count);

// Key of the job report: jobs/<job-id>.json, or one object per shard under
// jobs/<job-id>/ when the job is sharded (merged by the merge_reports action).
std::string report_key(const std::string& job_id, const std::optional<job::Shard>& shard);

} // namespace snapshotter::snapshot
