// Manifest version 1 (docs/manifest.md): everything needed to restore one
// snapshot of one repository, including the chain of bundles to replay.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/util/error.hpp"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

inline constexpr int k_manifest_schema_version = 1;

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
    // The Git LFS objects the snapshot needs (lfs_set.hpp); absent when LFS
    // was off or found nothing, and then not written at all.
    std::optional<LfsSet> lfs;
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

// The manifest as JSON (UTF-8); fails when a ref name is not valid UTF-8.
Result<std::string> serialize_manifest(const Manifest& manifest);

// Parse and check a manifest; IntegrityError names what is wrong.
Result<Manifest> parse_manifest(std::string_view text);

// The `latest` pointer object.
std::string serialize_latest(const std::string& snapshot_id, const std::string& manifest_key);

// The snapshot id a `latest` pointer names.
Result<std::string> parse_latest(std::string_view text);

} // namespace snapshotter::snapshot
