// Snapshot of one repository: list the remote, decide between unchanged,
// empty and full, publish bundle, manifest and latest pointer in that order.
#pragma once

#include "snapshotter/snapshot/actions.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace snapshotter::snapshot {

// What one repository's snapshot produced.
struct RepoOutcome {
    std::string status;      // ok | unchanged
    nlohmann::json detail;   // fields merged into the repository's result entry
    std::uint64_t bytes = 0; // bundle bytes written
    int refs_rewritten = 0;  // refs moved to a commit that does not contain the old tip
    int refs_deleted = 0;    // refs that disappeared since the previous snapshot
};

// Snapshot `repo` (with ctx.dry_run: only report the plan). Failures come
// back as values and never leave anything visible in storage.
Result<RepoOutcome> snapshot_repository(const Context& ctx, const job::Repository& repo);

} // namespace snapshotter::snapshot
