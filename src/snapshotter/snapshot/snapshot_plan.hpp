// What a snapshot of one repository does, as a pure function of the remote's
// listing, the previous snapshot and the options, so that every decision can
// be tested without git or storage and the dry run reports exactly what a
// real run would do.
//
// Kinds: `unchanged` when the selected refs, HEAD, object format and ref
// patterns equal the previous snapshot's; otherwise `empty` when no ref is
// selected; otherwise `incremental` when the previous chain may grow
// (options.full_every, options.full_size_ratio, same object format, a chain
// the engine can replay); otherwise `full`.
//
// The previous snapshot is the parent unless its chain lost a bundle in
// storage or it is shallow while options.allow_shallow is off; then the
// snapshot starts afresh, as if there were none.
//
// The ledger says how each ref moved since the parent. Whether a moved ref
// was a fast-forward needs both commits, known only after fetching: the plan
// asks that question (`SnapshotPlan::moved`) and ledger_of() takes the answers.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/manifest.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace snapshotter::snapshot {

// The remote's selected refs, HEAD and object format, as an engine listed them.
struct Listing {
    git::RefMap selected;                       // selected and storable: what the snapshot must record
    std::map<std::string, std::string> refused; // selected but not storable, with why (git/refname.hpp)
    git::HeadState head;
    std::string object_format; // "sha1" | "sha256"
};

// What is known of the previous snapshot's restore chain.
enum class ChainState {
    intact,       // every bundle is in storage at its recorded size
    broken,       // a bundle is missing or truncated: the chain cannot be restored
    unreplayable, // intact, but the engine could not rebuild its objects to verify on top of it
};

// What snapshot_plan() decides from.
struct PlanInput {
    const Listing& listing;
    const std::optional<Manifest>& previous;  // the latest snapshot; nullopt when none or unreadable
    ChainState chain = ChainState::intact;    // of `previous`
    const std::vector<std::string>& patterns; // the repository's ref patterns (job::Repository::refs)
    const job::Options& options;              // full_every, full_size_ratio, allow_shallow
    std::string snapshot_id;                  // the new snapshot's id, which keys preserved tips
};

// What became of the previous snapshot.
enum class PreviousRole {
    none,           // there is none
    chain_broken,   // set aside: its chain lost a bundle (ChainState::broken)
    shallow_denied, // set aside: it is shallow and options.allow_shallow is off
    parent,         // the parent: the ledger starts from its refs, its chain may grow
};

// What the engine fetches and bundles.
struct FetchPlan {
    // The patterns `git fetch` asks for: a pattern is kept when it has a '*'
    // or the remote listed it (an exact ref it lacks would fail the fetch);
    // when a listed name was refused, every selected name instead, so git never sees it.
    std::vector<std::string> patterns;
    // Incremental: the refs created or moved, by name, which its bundle lists.
    std::vector<std::string> changed;
    // Incremental: the parent's tips, peeled, by ref name: what its bundle may
    // assume, once the mirror shows them to be commits.
    std::vector<std::string> bases;
};

// How each ref moved since the parent, and the tips kept restorable.
struct Ledger {
    std::map<std::string, RefChange> changes; // ref name -> change
    // "<snapshot-id>/<refname>" -> oid: the parent's preserved tips plus, for
    // full and incremental snapshots, the old tips of refs rewritten, updated or deleted now.
    std::map<std::string, std::string> preserved;
    int rewritten = 0; // refs moved to a commit that does not contain the old tip
    int deleted = 0;   // refs gone since the parent
    int updated = 0;   // refs moved where whether the new tip contains the old one is not known
};

// The decision for one snapshot.
struct SnapshotPlan {
    SnapshotKind kind = SnapshotKind::full;
    PreviousRole previous = PreviousRole::none;
    std::optional<std::string> parent; // the parent's id (PreviousRole::parent)
    // The ledger before fetching: created and deleted refs are final; a moved
    // ref is `updated` until ledger_of() learns whether it moved forward.
    Ledger ledger;
    // The question for the engine: refs whose tip moved, by name; for each,
    // whether the old tip is an ancestor of the new one.
    std::vector<std::string> moved;
    FetchPlan fetch;
    std::string snapshot_id; // as in the input
};

// Whether an engine must fetch for `kind` (full and incremental) or the
// previous snapshot and the listing say everything (unchanged and empty).
bool needs_fetch(SnapshotKind kind);

// The plan for `input`.
SnapshotPlan snapshot_plan(const PlanInput& input);

// For each of a plan's moved refs: true when the old tip is an ancestor of
// the new one, false when not, nullopt (or no entry) when it cannot be told.
using AncestryAnswers = std::map<std::string, std::optional<bool>>;

// The commits a pack holds, each with its parents (git/pack_scan.hpp).
using PackCommits = std::unordered_map<std::string, std::vector<std::string>>;

// Answers for `plan.moved` from an incremental's pack alone, without a local
// repository. Walking parents from the new tip (peeled) through `commits`:
// reaching the old tip (peeled) is a fast-forward (true). A walk that never
// leaves the pack (every commit it meets is in it: the new tip's whole
// history came in this pack, as for an orphan rewrite) and never meets the
// old tip is certain not to be one (false). A walk that leaves the pack
// stops at commits the chain already holds, whose history the pack does not
// show: the old tip may be behind them, so the answer is unknown (no entry,
// `updated`), unless each of them is listed in `older[old tip]`, commits
// known to be proper ancestors of the old tip, which cannot reach it (false).
AncestryAnswers ancestry_from_pack(const SnapshotPlan& plan, const git::RefMap& previous,
                                   const git::RefMap& current, const PackCommits& commits,
                                   const std::map<std::string, std::set<std::string>>& older = {});

// The ledger of `plan` once `answers` are known: a moved ref is
// fast_forward, rewritten or updated; for full and incremental snapshots
// the old tips of rewritten, updated and deleted refs join the preserved ones.
Ledger ledger_of(const SnapshotPlan& plan, const AncestryAnswers& answers);

} // namespace snapshotter::snapshot
