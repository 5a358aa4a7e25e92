// What a prune of one repository deletes, as a pure function of the stored
// snapshots and the kept set (retention.hpp), so chain safety can be tested
// without storage.
//
// Chain rule: a kept manifest needs every bundle it lists. A bundle is
// deleted only when no kept manifest lists it; a bundle a kept manifest needs
// whose own snapshot is dropped stays and is reported "kept for chain".
//
// Rebase: for each chain (kept manifests sharing their first bundle) whose
// oldest kept snapshot P replays bundles written by dropped snapshots, one
// new full bundle holding P's whole chain replaces that prefix in every kept
// manifest that starts with it; the replaced bundles can then go.
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/snapshot/retention.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// One stored snapshot as prune sees it.
struct StoredSnapshot {
    std::string id;
    std::vector<BundleInfo> bundles; // its restore chain, oldest first
    std::uint64_t manifest_bytes = 0;
};

// A new full bundle to write at `at`, replacing the first `prefix.size()`
// bundles of each manifest in `manifests` (kept ids, `at` first).
struct RebaseStep {
    std::string at;
    std::vector<BundleInfo> prefix;
    std::vector<std::string> manifests;
};

struct PrunePlan {
    KeptSet kept;
    std::vector<std::string> drop;          // manifests to delete, oldest first
    std::vector<BundleInfo> kept_for_chain; // needed by a kept manifest, written by a dropped snapshot
    std::vector<BundleInfo> delete_bundles; // listed by no kept manifest (after the rebases), by key
    std::vector<RebaseStep> rebases;        // empty unless asked for
    std::uint64_t bytes_freed = 0;          // dropped manifests plus deleted bundles
};

// Whether plan_prune() plans rebases.
enum class Rebase { no, yes };

// The plan for `snapshots` of one repository when `kept` survive.
PrunePlan plan_prune(const std::vector<StoredSnapshot>& snapshots, KeptSet kept, Rebase rebase);

// `bundles` with `step`'s prefix replaced by `replacement`, or unchanged when
// they do not start with that prefix.
std::vector<BundleInfo> rebased_chain(const std::vector<BundleInfo>& bundles, const RebaseStep& step,
                                      const BundleInfo& replacement);

} // namespace snapshotter::snapshot
