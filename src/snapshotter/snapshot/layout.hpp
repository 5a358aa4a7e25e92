// Where things live in storage: one function per kind of key (LevelDB's
// filename.h style), so the layout is defined in exactly one place.
//
//   repos/<repo-key>/manifests/<snapshot-id>.json   one manifest per snapshot
//   repos/<repo-key>/bundles/<snapshot-id>.bundle   the bundle a snapshot added
//   repos/<repo-key>/latest.json                    pointer to the newest manifest
//   repos/<repo-key>/tables/<sha256>.json.gz        a manifest's sets (refs, bundles,
//                                                   preserved), gzip; shared by every manifest
//                                                   with the same content
//   repos/<repo-key>/bundles/<snapshot-id>.rebased-<hex>.bundle
//                                                   a full bundle prune's rebase wrote at that snapshot
//   repos/<repo-key>/prune-pending.json             bundles an interrupted prune still has to delete
//   repos/<repo-key>/lfs/<oid[0:2]>/<oid[2:4]>/<oid> one Git LFS object, content-addressed (docs/lfs.md)
//   repos/<repo-key>/lfs/sets/<sha256>.json         a large snapshot's list of LFS objects
//
//   sources/<source-key>.json                       names a source listed at its last run (gone detection)
//
// <repo-key> is the repository name with every byte outside [A-Za-z0-9._-]
// percent-encoded, so distinct names never share a key prefix.
#pragma once

#include "snapshotter/util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::snapshot::layout {

// The single path segment that stands for repository `name`.
std::string repo_key(std::string_view name);
// The repository name encoded in `key` by repo_key(), or nullopt if malformed.
std::optional<std::string> repo_name(std::string_view key);

// Prefix under which every repository lives.
std::string repos_prefix();
// Prefix of every key of `name`.
std::string repo_prefix(std::string_view name);
// Prefix of the bundles of `name`.
std::string bundles_prefix(std::string_view name);
// Prefix of the manifests of `name`.
std::string manifests_prefix(std::string_view name);
// Key of the manifest of snapshot `id` of `name`.
std::string manifest_key(std::string_view name, std::string_view id);
// Key of the bundle written by snapshot `id` of `name`.
std::string bundle_key(std::string_view name, std::string_view id);
// Key of a full bundle that prune's rebase writes at snapshot `id` of `name`;
// `tag` (random hex) keeps two rebases of the same snapshot apart.
std::string rebased_bundle_key(std::string_view name, std::string_view id, std::string_view tag);
// Prefix of the tables of `name`.
std::string tables_prefix(std::string_view name);
// Key of the table of `name` whose uncompressed JSON has SHA-256 `sha256` (hex).
std::string table_key(std::string_view name, std::string_view sha256);
// Key of the list of bundles a prune of `name` has yet to delete.
std::string prune_pending_key(std::string_view name);
// Key of the pointer to the newest snapshot of `name`.
std::string latest_key(std::string_view name);

// Key of the names source `source_key` (a hex digest of the source) listed at its last run.
std::string source_listing_key(std::string_view source_key);

// Whether `oid` is a Git LFS object id as this layout stores it: 64 lowercase hex digits (SHA-256).
bool is_lfs_oid(std::string_view oid);
// Prefix of every LFS key of `name` (objects and sets).
std::string lfs_prefix(std::string_view name);
// Key of LFS object `oid` (is_lfs_oid) of `name`, shared by all its snapshots.
std::string lfs_object_key(std::string_view name, std::string_view oid);
// Key of the list of LFS objects whose SHA-256 is `sha256` (64 lowercase hex) of `name`.
std::string lfs_set_key(std::string_view name, std::string_view sha256);
// The oid of an LFS object key of `name` (exactly the shape lfs_object_key()
// makes), or nullopt for any other key (sets included).
std::optional<std::string> lfs_oid_of_key(std::string_view key, std::string_view name);

// The repository whose prefix holds `key` ("repos/<repo-key>/..."), or nullopt.
std::optional<std::string> repository_of_key(std::string_view key);

// The snapshot id in a manifest key, or nullopt when `key` is not one.
std::optional<std::string> snapshot_id_of_manifest_key(std::string_view key);

// The part of a repository's tree that a key read from storage must lie in.
enum class Area { bundles, manifests, tables, lfs };

// Whether `key` is one this layout could have made in `area` of repository
// `name`: exactly repos/<repo_key(name)>/<area>/<object>, where <object> is
// one segment of [A-Za-z0-9._-] not starting with '.'. Anything else (`..`,
// empty segments, a leading '/', backslashes, percent escapes, another
// repository's or jobs/ keys) is outside. Area::lfs is stricter: exactly
// lfs_object_key() of a valid oid or lfs_set_key() of a valid digest. The single containment rule for
// every key read from a manifest, prune-pending.json or a listing.
bool is_within(std::string_view key, std::string_view name, Area area);

// is_within() as a Status: IntegrityError naming `key` and `source` (the
// object it was read from) when it is outside.
Status check_within(std::string_view key, std::string_view name, Area area, std::string_view source);

// Whether `segment` (one path segment below repos/) is exactly what
// repo_key() makes of the name it decodes to, so that it names a repository
// whose keys stay inside it ("%2E%2E" and "%41" are not).
bool is_canonical_repo_key(std::string_view segment);

} // namespace snapshotter::snapshot::layout
