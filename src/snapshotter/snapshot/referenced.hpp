// What the manifests of a repository keep alive in storage, read in one pass:
// the view every deleter decides on (gc's scan and its re-check right before
// deleting, prune's deletion step, the leftover report of verify).
//
// One pass over repository `name`:
//  - lists its manifests once, then reads each one listed once (one GET),
//    with the tables of its chain (tables.hpp; a table is read from storage
//    once per process) and, with LfsSets::read, its Git LFS set file (each
//    distinct set once per pass: sets are content-addressed);
//  - skips a manifest that is gone when it is read (NotFound): it was deleted
//    (a prune) and keeps nothing alive any more. The same holds for a
//    manifest whose table or set cannot be read and that is gone when checked
//    again (HEAD) right after: a prune deleted it, then what only it needed;
//  - fails as a whole on anything else, with an error naming the key: a
//    manifest that cannot be parsed or names a key outside the repository, a
//    table or LFS set of a present manifest that is missing, hostile or does
//    not match its digest, any storage error. A deleter then deletes nothing
//    of that repository: a manifest it cannot read may need any object.
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <functional>
#include <set>
#include <string>

namespace snapshotter::snapshot {

// Whether a pass reads each manifest's LFS set file (and so knows the LFS
// objects it keeps alive).
enum class LfsSets { skip, read };

// The keys the manifests of one repository present in storage keep alive.
struct Referenced {
    std::set<std::string> bundles; // every bundle a chain lists
    std::set<std::string> tables;  // every table of a chain: named, and the bases of a delta
    std::set<std::string> lfs;     // LFS objects and set files (empty with LfsSets::skip)
    std::size_t manifests = 0;     // manifests read
    // Whether `key` is in one of the three.
    [[nodiscard]] bool contains(const std::string& key) const;
};

// Called with each manifest a pass reads (it may move it away) and its
// listing entry; a failure is judged by the rule above like a failure to
// read the manifest.
using ManifestVisitor = std::function<Status(Manifest& manifest, const storage::ObjectInfo& listed)>;

// Read every manifest of `name` present now once, oldest first, and call
// `visit` on each, by the rule above.
Status for_each_manifest(storage::Storage& storage, const std::string& name, const ManifestVisitor& visit);

// What the manifests of `name` present now keep alive: one pass by the rule above.
Result<Referenced> read_referenced(storage::Storage& storage, const std::string& name, LfsSets lfs);

// Storage keys of what `manifest` needs in the LFS area: every object of its
// set, and its set file when it has one (read from storage: lfs_objects_of()).
// Empty without an `lfs` field.
Result<std::set<std::string>> lfs_keys_of(storage::Storage& storage, const Manifest& manifest);

} // namespace snapshotter::snapshot
