// Snapshot of one repository: list the remote, plan (snapshot_plan.hpp),
// produce with an engine (engine.hpp), publish bundle, manifest and latest
// pointer in that order.
#pragma once

#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/engine.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/snapshot/remote.hpp"
#include "snapshotter/snapshot/status.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace snapshotter::snapshot {

// What one repository's snapshot produced.
struct RepoOutcome {
    RepositoryStatus status = RepositoryStatus::ok; // ok | unchanged
    nlohmann::json detail;                          // fields merged into the repository's result entry
    std::uint64_t bytes = 0;                        // bundle bytes written
    int refs_rewritten = 0;    // refs moved to a commit that does not contain the old tip
    int refs_deleted = 0;      // refs that disappeared since the previous snapshot
    bool latest_stale = false; // committed, but latest.json could not be advanced
    int refs_updated = 0;      // refs moved where the engine could not tell fast_forward from rewritten
    LfsTotals lfs;             // the snapshot's LFS objects (zero when its LFS step did not run)
};

// A repository's latest snapshot as read_latest_manifest() returned it:
// a manifest, none yet, or why it could not be read.
using LatestRead = Result<std::optional<Manifest>>;

// Snapshot `repo` (with ctx.dry_run: only report the plan). Failures come
// back as values and never leave anything visible in storage. `latest` is
// the caller's own read of the latest snapshot, so that a repository costs
// one read of it (on S3, one GET and LIST fewer); without it, it is read here.
// `choose` picks the engine (a fake one in tests).
Result<RepoOutcome> snapshot_repository(const Context& ctx, const job::Repository& repo,
                                        std::optional<LatestRead> latest = std::nullopt,
                                        const EngineChooser& choose = choose_engine);

} // namespace snapshotter::snapshot
