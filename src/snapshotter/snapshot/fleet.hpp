// Splitting a fleet across containers and naming its reports.
#pragma once

#include "snapshotter/job/job.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::snapshot {

// A hash of `name` that is the same on every machine and every run (FNV-1a).
std::uint64_t stable_hash(std::string_view name);

// The shard, in [0, count), that snapshots repository `name`; a repository
// keeps its shard when others are added, and few move when `count` changes.
int shard_of(std::string_view name, int count);

// Key of the job report: jobs/<job-id>.json, or one object per shard under
// jobs/<job-id>/ when the job is sharded (merged by the merge_reports action).
std::string report_key(const std::string& job_id, const std::optional<job::Shard>& shard);

} // namespace snapshotter::snapshot
