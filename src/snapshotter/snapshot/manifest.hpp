// Manifests (docs/manifest.md): everything needed to restore one snapshot of
// one repository, including the chain of bundles to replay. Version 4
// (written) is version 3 stored gzip-compressed. Version 3 (still read)
// keeps the large sets that usually equal the parent's (refs, bundles,
// preserved, shallow) in a content-addressed table (tables.hpp) that it names
// by digest; the table is full or a delta against its parent's. Version 2
// (still read) names a full table by key and digest; version 1 (still read)
// holds the sets inline. Versions 1 to 3 are stored as plain JSON.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/util/error.hpp"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// The version writers write: version 3's members, the whole stored as one
// gzip stream (an ordinary night's manifest: about 1,070 bytes of JSON, 640
// stored), its table chain up to 32 deltas deep (tables.hpp). Readers read it
// and versions 3, 2 and 1 (written as plain JSON), either way stored.
inline constexpr int k_manifest_schema_version = 4;
// The version naming its table (full or delta) by digest, plain JSON.
inline constexpr int k_manifest_schema_version_v3 = 3;
// The version naming a full table by key and digest (written before deltas).
inline constexpr int k_manifest_schema_version_v2 = 2;
// The version with every set inline (written before tables existed).
inline constexpr int k_manifest_schema_version_v1 = 1;

// One bundle of a restore chain.
struct BundleInfo {
    std::string snapshot_id;                // the snapshot that wrote it
    std::string key;                        // storage key
    std::uint64_t size = 0;                 // bytes
    std::string sha256;                     // hex SHA-256 of the stored bytes
    std::vector<std::string> prerequisites; // oids the bundle needs (none for a full one)
    bool operator==(const BundleInfo&) const = default;
};

// What a snapshot is (docs/manifest.md); JSON and logs spell it as to_string() does.
enum class SnapshotKind {
    full,        // a new chain: one bundle of every ref
    incremental, // the previous chain plus a bundle of what is new (none for a refs-only change)
    empty,       // no refs, so no bundle (a bundle cannot be empty)
    unchanged,   // nothing moved since the previous snapshot: its chain
};

// "full" | "incremental" | "empty" | "unchanged".
std::string_view to_string(SnapshotKind kind);

// The kind `text` names; nullopt for any other text.
std::optional<SnapshotKind> parse_snapshot_kind(std::string_view text);

// `kind` as its JSON string.
void to_json(nlohmann::json& j, SnapshotKind kind);

// How a ref moved since the previous snapshot; JSON spells it as to_string() does.
enum class RefChangeKind {
    created,      // a new ref
    fast_forward, // moved to a commit that contains the old tip
    rewritten,    // moved to a commit that does not contain the old tip
    updated,      // moved, and whether it was a fast-forward is not known
    deleted,      // gone
};

// "created" | "fast_forward" | "rewritten" | "updated" | "deleted".
std::string_view to_string(RefChangeKind change);

// The change `text` names; nullopt for any other text.
std::optional<RefChangeKind> parse_ref_change(std::string_view text);

// `change` as its JSON string.
void to_json(nlohmann::json& j, RefChangeKind change);

// How a ref moved since the previous snapshot (the ref-change ledger).
struct RefChange {
    RefChangeKind change = RefChangeKind::created;
    std::string old_oid; // empty when created
    std::string new_oid; // empty when deleted
    bool operator==(const RefChange&) const = default;
};

// A manifest's (or a delta table's) reference to a table: the stored object
// and what its uncompressed canonical JSON must be. Version 3 and delta
// tables write no key: layout::table_key() makes it from the digest.
struct TableRef {
    std::string key;            // repos/<repo-key>/tables/<sha256>.json.gz
    std::string sha256;         // hex SHA-256 of the uncompressed canonical JSON
    std::uint64_t size = 0;     // bytes stored (gzip)
    std::uint64_t raw_size = 0; // bytes of the uncompressed JSON
    std::uint64_t count = 0;    // refs in the table
    bool operator==(const TableRef&) const = default;
};

struct Manifest {
    int schema_version = k_manifest_schema_version;
    std::string snapshot_id;
    std::string repository;
    std::string source_url; // redacted
    std::string created_at; // RFC 3339 UTC
    std::string job_id;
    std::string engine; // "cli"
    // Why `auto` used the git-CLI engine: the stream engine's probe error; absent otherwise.
    std::optional<std::string> engine_fallback;
    std::string git_version;
    std::string object_format; // "sha1" | "sha256"
    SnapshotKind kind = SnapshotKind::full;
    std::optional<std::string> head;                 // HEAD's target when symbolic or unborn
    git::HeadKind head_kind = git::HeadKind::absent; // what HEAD is
    std::string head_oid;                            // HEAD's object id when detached
    // A shallow upstream's boundary (options.allow_shallow): the commits whose
    // parents the snapshot lacks, sorted; empty for a complete history.
    std::vector<std::string> shallow;
    git::RefMap refs;
    std::vector<std::string> ref_patterns;
    std::vector<BundleInfo> bundles; // oldest first; replaying all of them restores `refs`
    std::optional<std::string> parent;
    std::map<std::string, RefChange> changes; // ref name -> change since `parent`
    // Tips of rewritten and deleted refs kept restorable, keyed
    // "<snapshot-id>/<refname>" (the snapshot that saw them go) -> oid.
    std::map<std::string, std::string> preserved;
    std::map<std::string, long long> timings_ms;
    // Versions 2 to 4: the table holding refs, bundles, preserved and
    // shallow. Set by parse_manifest() (the sets stay empty until
    // load_table(), tables.hpp) and by publishing; nullopt for version 1.
    std::optional<TableRef> table;
    // Every table the sets were read from: `table` first, then the base of
    // each delta, the full table last (set by load_table() and publishing;
    // empty for version 1). gc and prune keep all of them.
    std::vector<TableRef> table_chain;
    // The Git LFS objects the snapshot needs (lfs_set.hpp); absent when LFS
    // was off or found nothing, and then not written at all.
    std::optional<LfsSet> lfs;
    // A commit the chain holds and its parents, which the stream engine's
    // next incremental may declare shallow to a git server (git::WalkAnchor,
    // docs/streaming-engine.md); absent when none is known, and then not written.
    std::optional<git::WalkAnchor> walk_anchor;
};

// The HEAD `manifest` records (head_state with head or head_oid).
git::HeadState head_state(const Manifest& manifest);

// Record `head` in `manifest`: its state, and the ref it names (symbolic,
// unborn) in `head` or the object it holds (detached) in `head_oid`.
void set_head(Manifest& manifest, const git::HeadState& head);

// What set_head() records as `head`: the ref `head` names when symbolic or unborn.
std::optional<std::string> named_head(const git::HeadState& head);

// The ref name under which restore recreates preserved tip `key`.
std::string preserved_ref_name(const std::string& key);

// Largest manifest read, as stored and (version 4) uncompressed: the bound
// of Storage::get(); a writer refuses to store a manifest a reader would refuse.
inline constexpr std::uint64_t k_max_manifest_bytes = std::uint64_t{64} << 20;

// The manifest as stored: JSON (UTF-8), gzip-compressed for version 4; fails
// when a ref name is not valid UTF-8 or it is larger than k_max_manifest_bytes.
// Version 1 holds every set inline; versions 2 to 4 need `table` (set by
// publish_manifest(), publish.hpp) and hold only the reference to it.
Result<std::string> serialize_manifest(const Manifest& manifest);

// Parse and check a manifest of version 1, 2, 3 or 4, stored as JSON or as
// one gzip stream of JSON (as version 4 is written; at most
// k_max_manifest_bytes uncompressed); IntegrityError names what is wrong. A
// version-2 to -4 manifest comes back with
// `table` set (its key made by layout from 3 on) and its sets empty:
// load_table() (catalog's read_manifest does it) fills them.
Result<Manifest> parse_manifest(std::string_view data);

// The canonical JSON (compact, keys sorted) of a full table: refs, bundles,
// preserved and shallow of `manifest`.
Result<std::string> table_json(const Manifest& manifest);

// The canonical JSON of a delta table of depth `depth` (>= 1): what turns the
// sets of `base`, read from table `base_ref` (of depth `depth` - 1), into
// those of `manifest`: refs set and removed, how many of the base's bundles
// stay (a prefix) and the bundles after them, preserved tips set and removed,
// and the shallow boundary when it differs.
Result<std::string> delta_table_json(const Manifest& base, const TableRef& base_ref, int depth,
                                     const Manifest& manifest);

// A table's content, parsed: a full table (depth 0, no base) or a delta
// (depth >= 1) with the reference to the table it changes.
struct ParsedTable {
    nlohmann::json content;
    int depth = 0;
    std::optional<TableRef> base; // its key made by layout from its digest, in `repository`
};

// Parse the uncompressed JSON `text` of a table of `repository`;
// IntegrityError when it is not an object, or a delta whose depth is not
// 1..`max_depth` or whose base is malformed.
Result<ParsedTable> parse_table(std::string_view text, const std::string& repository, int max_depth);

// Apply `table` to the sets of `manifest`: a full table replaces them
// (checked like a version-1 manifest's), a delta changes them (a removed ref
// or tip must exist, a set one must not also be removed, the bundles kept
// must exist); IntegrityError when it does not apply.
Status apply_table(Manifest& manifest, const ParsedTable& table);

// Fill the sets of `manifest` from `text`, a full table's uncompressed JSON,
// checked like a version-1 manifest's; IntegrityError when it is not valid
// or holds another number of refs than `manifest.table->count`.
Status apply_table(Manifest& manifest, std::string_view text);

// Whether `a` and `b` hold the same sets (refs, bundles, preserved, shallow).
bool same_sets(const Manifest& a, const Manifest& b);

// The `latest` pointer object.
std::string serialize_latest(const std::string& snapshot_id, const std::string& manifest_key);

// The snapshot id a `latest` pointer names.
Result<std::string> parse_latest(std::string_view text);

} // namespace snapshotter::snapshot
