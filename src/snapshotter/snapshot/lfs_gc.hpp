// Deleting Git LFS objects (docs/lfs.md): an object, or a snapshot's set
// file, is shared by every snapshot of its repository that needs it, so it
// goes only when no manifest present in storage needs it any more.
//
// prune deletes the objects and sets that the snapshots it dropped needed
// and no manifest present after their deletion needs (read afresh right
// before deleting, as for bundles). gc deletes the orphans: objects and sets
// under the repository's lfs/ area that no manifest needs, idle for
// gc.min_age_s, re-checked against the manifests present right before
// deleting. The age is what keeps a running snapshot's fresh uploads, whose
// manifest is still to come, exactly as for its bundle. A prune killed
// between deleting manifests and deleting their objects leaves orphans that
// the next gc removes.
//
// Limit (as for prune's rebase): a snapshot that reuses an object already
// stored uploads nothing, so an object that only dropped snapshots needed,
// deleted while such a snapshot runs, is missing from its manifest's set;
// verify reports it and the next snapshot uploads it again.
#pragma once

#include "snapshotter/snapshot/leftovers.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// Storage keys of what `manifest` needs in the LFS area: every object of its
// set, and its set file when it has one. Empty without an `lfs` field.
Result<std::set<std::string>> lfs_keys_of(storage::Storage& storage, const Manifest& manifest);

// Keys of every LFS object and set file that some manifest of `name` present
// now needs. A manifest or set that cannot be read fails the call: nothing
// may be deleted on a partial view.
Result<std::set<std::string>> referenced_lfs_keys(storage::Storage& storage, const std::string& name);

// What deleting LFS objects did.
struct LfsDeletion {
    std::vector<std::string> deleted;  // keys
    std::uint64_t bytes = 0;           // of the deleted keys
    std::vector<std::string> retained; // Object Lock forbids deleting them yet
    std::vector<Error> failed;
    // {"objects", "bytes", "retained", "failed"} for a result.
    [[nodiscard]] nlohmann::json to_json() const;
};

// Prune's step: delete the LFS objects and sets that the `dropped` manifests
// of `name` (already deleted) needed and no manifest present now needs.
// nullopt (and no storage call) when none of them has an `lfs` field.
std::optional<LfsDeletion> prune_lfs(storage::Storage& storage, const std::string& name,
                                     const std::vector<const Manifest*>& dropped);

// gc's step: the orphan LFS objects and sets of the repositories `names`
// (every repository when empty) idle for `min_age`, removed unless
// `dry_run`. Young orphans are returned in `young`; problems in `problems`.
struct LfsOrphans {
    std::vector<Leftover> removed; // kind orphan_lfs (on a dry run: those that would go)
    std::vector<Leftover> young;
    std::vector<Error> problems;
    // Add these to gc's own lists (`removed` points into this object).
    void add_to(std::vector<const Leftover*>& removed, std::vector<Leftover>& young,
                std::vector<Error>& problems) const;
};
LfsOrphans gc_lfs(storage::Storage& storage, const std::vector<std::string>& names,
                  std::chrono::seconds min_age, Clock::time_point now, bool dry_run);

} // namespace snapshotter::snapshot
