// A snapshot's Git LFS step (docs/lfs.md): which pointers its new commits
// hold, which of those objects storage lacks, fetching them through the
// batch API into content-addressed keys, and the LfsSet its manifest records.
// The engines call add_lfs() once, at the end of produce().
#pragma once

#include "snapshotter/git/cat_file.hpp"
#include "snapshotter/git/git.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/job/enums.hpp"
#include "snapshotter/lfs/batch.hpp"
#include "snapshotter/lfs/discovery.hpp"
#include "snapshotter/snapshot/lfs_pack.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

struct EngineContext;
struct PlanInput;
struct Produced;
struct SnapshotPlan;

// What a snapshot's LFS step did, for its manifest (`set`) and its result.
struct LfsOutcome {
    std::optional<LfsSet> set;            // nullopt: LFS off, or nothing found and no parent set
    std::uint64_t found = 0;              // pointers in the new commits (unique objects)
    std::uint64_t downloaded_objects = 0; // fetched from the server and stored now
    std::uint64_t downloaded_bytes = 0;
    std::uint64_t already_stored = 0;  // needed and found in storage, not fetched again
    std::string server;                // the LFS server used, redacted; empty when none was asked
    std::string server_source;         // "payload" | "lfsconfig" | "derived"
    bool scanned = true;               // false: the engine could not look for pointers
    std::vector<std::string> warnings; // purged objects, a scan not done, a server not reached
};

// What a snapshot's LFS step counted, for the job's totals and metrics.
struct LfsTotals {
    std::uint64_t objects = 0;          // objects the snapshot needs
    std::uint64_t bytes = 0;            // their total size
    std::uint64_t objects_uploaded = 0; // stored by this run (zero on an unchanged night)
    std::uint64_t bytes_uploaded = 0;
    std::uint64_t missing = 0; // needed but not stored (purged upstream, not found, corrupt)
};

// The totals of `outcome`: objects and bytes needed, uploaded now, missing.
LfsTotals lfs_totals(const LfsOutcome& outcome);

// Add `more` to `total`.
void add_lfs_totals(LfsTotals& total, const LfsTotals& more);

// What the engine found in the new commits.
struct LfsScan {
    bool scanned = true;                      // false: pointers were not looked for (`not_scanned` says why)
    std::string not_scanned;                  // why not
    std::vector<LfsObject> pointers;          // sorted, unique
    bool gitattributes_lfs = false;           // HEAD's .gitattributes names filter=lfs
    std::optional<std::string> lfsconfig_url; // lfs.url of HEAD's .lfsconfig
    std::optional<LfsConfigRecord> lfsconfig; // HEAD's .lfsconfig as the pack showed it, to record
    std::vector<std::string> warnings;        // what could not be read
    // scan_mirror() found blobs of pointer size among the new objects: the
    // tips surely reach objects the excluded do not (false tells nothing).
    bool new_objects_seen = false;
};

// The LFS objects among `blobs` (blob contents): those that are exactly one
// pointer (lfs/pointer.hpp), sorted by oid and unique. Two pointers naming
// one oid with different sizes keep the first, sorted by size.
std::vector<LfsObject> pointers_in(const std::vector<std::string>& blobs);

// Whether scan_mirror() must check that the excluded tips exist.
enum class ExcludedTips {
    maybe_absent, // old tips, some perhaps not in the mirror (a cache made afresh): checked
    present,      // known to be in the mirror (commits the caller looked up)
};

// Scan `mirror` (a repository holding the new tips) for what the LFS step
// needs: the pointers among the blobs `tips` reach and `excluded` (old tips;
// with ExcludedTips::maybe_absent those the mirror lacks are left out) do
// not, and HEAD's (`head_commit`) .gitattributes and .lfsconfig.
// `head_commit` may be empty (no HEAD). One `git rev-list` walks; every
// object is read through `objects` (a session in `mirror`), or through a
// session of its own when that is null.
Result<LfsScan> scan_mirror(const git::GitApi& git, const std::filesystem::path& mirror,
                            const std::vector<std::string>& tips, const std::vector<std::string>& excluded,
                            const std::string& head_commit, std::chrono::milliseconds timeout,
                            ExcludedTips check = ExcludedTips::maybe_absent,
                            git::CatFileSession* objects = nullptr);

// Whether the LFS step runs for `mode` given `scan` and `parent`: on, off, or
// auto (pointers found, .gitattributes names filter=lfs, or the parent has a set).
bool lfs_wanted(job::LfsMode mode, const LfsScan& scan, const std::optional<LfsSet>& parent);

// Store what `needed` lists that storage lacks, through `client`, into
// `repository`'s LFS keys: storage is asked once per object (a HEAD), or
// listed once under lfs_prefix() when more than k_lfs_inline_max are new;
// the rest goes in batches of lfs::k_batch_size, each object streamed and
// checked (size and SHA-256) before it is committed. Objects the server has
// lost (404, 410), that arrive corrupt, or that fail otherwise are recorded
// as missing, never fatal: the snapshot still commits its bundle. `client`
// null means no server is reachable (every unstored object is missing with
// `no_server`'s reason). `known_stored` are objects the parent's set holds
// (and does not list missing): they are not asked about again.
Result<LfsOutcome> store_lfs_objects(storage::Storage& storage, std::string_view repository,
                                     lfs::Client* client, const std::string& no_server,
                                     std::vector<LfsObject> needed,
                                     const std::vector<LfsObject>& known_stored);

// The LFS step of a snapshot, run by an engine at the end of produce() with
// its `scan`: decides whether LFS is on (lfs_wanted), finds the server
// (payload lfs_url, HEAD's .lfsconfig, or derived from the clone URL), builds
// the needed set (cumulative: the parent's set plus the new pointers; a full
// snapshot's scan covers every commit), stores what is missing, and sets
// `produced.lfs`. Fails only when storage fails.
Status add_lfs(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input, const LfsScan& scan,
               Produced& produced);

// The cli engine's call: scan `mirror` for the snapshot `produced` records
// (new tips: its refs; excluded: the parent's refs unless it is a full
// snapshot; objects read through `objects` when given), or take `scanned`
// (the engine's own scan_mirror() of the same new objects) when given, and
// add_lfs(). Nothing at all when the repository's lfs is false.
Status add_lfs_from_mirror(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input,
                           const std::filesystem::path& mirror, Produced& produced,
                           const LfsScan* scanned = nullptr, git::CatFileSession* objects = nullptr);

// Whether the stream engine should ask for a pack without thin deltas, so
// that a changed pointer (usually a delta on the old pointer) can be read:
// lfs true, or auto when the parent has an LFS set.
bool lfs_wants_full_pack(job::LfsMode mode, const PlanInput& input);

// The commit HEAD names in `refs` (`head` detached, or the ref it points at,
// peeled); empty when HEAD names none.
std::string lfs_head_commit(const git::HeadState& head, const git::RefMap& refs);

// The stream engine's call. With a repository holding the snapshot's objects
// (`index_repo`: options.verify "index") it scans it as the cli engine scans
// its mirror; otherwise it uses what `pack_scan` found in the pack (null: no
// pack was scanned, the new commits brought no objects; `thin`: the pack was
// thin). HEAD's .lfsconfig comes from the pack, the previous snapshot's
// record, or a fetch of its one blob (head_lfsconfig()); what none of them
// shows is a warning, and the server is then the previous record's or the
// derived one. "auto" on a thin pack that shows LFS (pointers, or a small blob
// naming filter=lfs) fetches the new commits again without thin deltas, scan
// only, when a pointer may hide in an unresolved delta or HEAD's .lfsconfig
// is needed. Deltas of pointer size still unresolved give "scanned": false
// with a warning naming their count, and the parent's set is carried on; when
// the step does not run ("auto", nothing found, no LFS known) a warning in
// the log says so (docs/lfs.md).
Status add_lfs_streamed(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input,
                        const std::filesystem::path* index_repo, const LfsPackScan* pack_scan, bool thin,
                        Produced& produced);

// The result's "lfs" object: objects, bytes, downloaded, missing, server.
nlohmann::json lfs_outcome_json(const LfsOutcome& outcome);

} // namespace snapshotter::snapshot
