// Deleting Git LFS objects (docs/lfs.md): an object, or a snapshot's set
// file, is shared by every snapshot of its repository that needs it, so it
// goes only when no manifest present in storage needs it any more.
//
// prune deletes the objects and sets that the snapshots it dropped needed
// and that no manifest present after their deletion needs (one pass over
// them, referenced.hpp, read right before deleting, as for bundles). gc
// deletes the orphans: objects and sets under the repository's lfs/ area
// that no manifest needs, idle for gc.min_age_s (leftovers.hpp finds them
// with the repository's bundles and tables on the same pass, and gc
// re-checks them all on one more pass right before deleting). The age is
// what keeps a running snapshot's fresh uploads, whose manifest is still to
// come, exactly as for its bundle. A prune killed between deleting manifests
// and deleting their objects leaves orphans that the next gc removes.
//
// Limit (as for prune's rebase): a snapshot that reuses an object already
// stored uploads nothing, so an object that only dropped snapshots needed,
// deleted while such a snapshot runs, is missing from its manifest's set;
// verify reports it and the next snapshot uploads it again.
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/snapshot/referenced.hpp"
#include "snapshotter/storage/storage.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

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
// of `name` (already deleted) needed and that `present`, a pass with
// LfsSets::read over the manifests present after their deletion, does not
// keep alive. A dropped manifest's set that cannot be read leaves its
// objects for gc (reported in `failed`). nullopt (and no storage call) when
// none of them has an `lfs` field.
std::optional<LfsDeletion> prune_lfs(storage::Storage& storage, const std::string& name,
                                     const std::vector<const Manifest*>& dropped, const Referenced& present);

} // namespace snapshotter::snapshot
