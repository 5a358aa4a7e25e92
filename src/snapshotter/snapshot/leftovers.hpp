// What a killed run leaves in storage, found per backend, so that verify can
// report it and gc can remove it. Exactly four kinds exist:
//
//  - pending uploads: a writer's uncommitted state, AtomicFile temporary
//    files on file:// and incomplete multipart uploads on s3:// (Storage::
//    list_pending). A running job has them too, which is why only old ones
//    may go.
//  - orphan bundles: objects under repos/<repo-key>/bundles/ that no manifest
//    of that repository lists: the run died (or failed) between committing
//    its bundle and committing its manifest.
//  - orphan tables: objects under repos/<repo-key>/tables/ (tables.hpp) that
//    no manifest of that repository names: the run died between writing the
//    table and committing its manifest, or prune deleted the last manifest
//    naming it and was interrupted before deleting the table.
//  - orphan LFS objects and sets: objects under repos/<repo-key>/lfs/
//    (lfs_gc.hpp) that no manifest of that repository needs: the run died
//    between uploading them and committing its manifest, or a prune was
//    interrupted between deleting manifests and deleting their objects.
//
// Orphans are judged on one pass over the repository's manifests
// (referenced.hpp) made after the listing, so a manifest committed in
// between counts; a repository whose pass fails (a manifest, table or LFS
// set that cannot be read) has no orphans, only a problem.
//
// Nothing else can be half-done: a manifest and `latest.json` are each
// published in one atomic step (rename or link on file://, one PUT on S3),
// so they exist whole or not at all; a manifest is never written before its
// bundles, and readers re-check `latest.json` against the manifests. Job
// reports are written whole, and a killed job simply has none.
#pragma once

#include "snapshotter/storage/storage.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

struct Leftover {
    enum class Kind { pending_upload, orphan_bundle, orphan_table, orphan_lfs };
    Kind kind = Kind::orphan_bundle;
    std::string key;        // the object (or, for an upload, the key it would publish)
    std::string repository; // the repository it belongs to, empty outside repos/
    std::uint64_t size = 0; // bytes it occupies
    // Its age is measured from here: the last write of a temporary file, the
    // initiation of a multipart upload, the commit of a bundle. Unknown
    // times (memory://) make a leftover count as new.
    std::optional<Clock::time_point> since;
    storage::PendingUpload upload; // set for pending uploads
};

// The result of a scan: the leftovers found, and the repositories that could
// not be checked (a manifest that cannot be read), which have no orphans,
// and keys in a repository's areas that this layout never writes.
struct LeftoverScan {
    std::vector<Leftover> items;
    std::vector<Error> problems;
};

// Which orphans find_leftovers() looks for.
enum class Orphans {
    chains,         // bundles and tables (verify's report)
    chains_and_lfs, // and LFS objects and sets, reading every manifest's LFS set (gc)
};

// Scan the repositories `names`, or the whole storage when `names` is empty,
// for pending uploads and `orphans`. Fails only when storage cannot be listed.
Result<LeftoverScan> find_leftovers(storage::Storage& storage, const std::vector<std::string>& names,
                                    Orphans orphans = Orphans::chains);

// Seconds `leftover` has been idle at `now` (0 when its time is unknown).
long long age_seconds(const Leftover& leftover, Clock::time_point now);

// "pending_upload", "orphan_bundle", "orphan_table" or "orphan_lfs".
std::string_view kind_name(Leftover::Kind kind);

// {"kind", "key", "repository", "bytes", "age_s"} of one leftover.
nlohmann::json leftover_json(const Leftover& leftover, Clock::time_point now);

// {"count", "bytes", "stale", "stale_after_s", "items", "truncated"} of `items`:
// `stale` counts those idle for at least `stale_after`; at most
// `max_items` items are listed.
nlohmann::json leftovers_summary(const std::vector<Leftover>& items, Clock::time_point now,
                                 std::chrono::seconds stale_after, std::size_t max_items = 1000);

} // namespace snapshotter::snapshot
