// Reading what is stored: manifests, the latest pointer, and bundles
// downloaded with their checksum verified. Shared by restore, verify, list
// and the unchanged check of snapshot.
#pragma once

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/git.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// The manifest of snapshot `id` of repository `name`.
Result<Manifest> read_manifest(storage::Storage& storage, const std::string& name, const std::string& id);

// The newest committed manifest of `name`, or nullopt when it has none.
Result<std::optional<Manifest>> read_latest_manifest(storage::Storage& storage, const std::string& name);

// The manifest `selector` ("latest" or an id) names; NotFound when absent.
Result<Manifest> resolve_snapshot(storage::Storage& storage, const std::string& name,
                                  const std::string& selector);

// Snapshot ids of `name`, newest first.
Result<std::vector<std::string>> list_snapshot_ids(storage::Storage& storage, const std::string& name);

// A prefix below repos/ that is not a repository key this layout writes.
struct RefusedPrefix {
    std::string prefix; // "repos/<segment>/"
    Error error;        // IntegrityError saying why
};

// What scan_repositories() found: the repositories, and the prefixes refused.
struct RepositoryScan {
    std::vector<std::string> names;
    std::vector<RefusedPrefix> refused;
};

// Every repository with at least one snapshot (sorted), and every prefix
// under repos/ whose key is not canonical (layout::is_canonical_repo_key),
// reported instead of being read.
Result<RepositoryScan> scan_repositories(storage::Storage& storage);

// Names of every repository with at least one snapshot, sorted; refused
// prefixes are logged as warnings and left out.
Result<std::vector<std::string>> list_repositories(storage::Storage& storage);

// `names` when not empty, else every repository with a snapshot (sorted).
Result<std::vector<std::string>> repositories_or_all(storage::Storage& storage,
                                                     const std::vector<std::string>& names);
// Keys of every bundle that some manifest of `name` lists, read afresh from
// the manifests present now. A manifest that cannot be read fails the call:
// nothing may be deleted on a partial view. Deleters (gc, prune) call it
// right before deleting and keep every key it returns.
Result<std::set<std::string>> referenced_bundles(storage::Storage& storage, const std::string& name);

// Point `latest` of `name` at snapshot `id` (manifest `manifest_key`) unless
// it already names `id` or a newer one: the pointer only moves forward, also
// when two jobs publish at once (a compare-and-swap, Storage::update).
// Returns whether it moved. The pointer is a hint (read_latest_manifest
// takes the newest manifest anyway), so file:// does not fsync it.
Result<bool> advance_latest(storage::Storage& storage, const std::string& name, const std::string& id,
                            const std::string& manifest_key);

// Copy bundle `info` to `path`, failing with IntegrityError when its size or
// SHA-256 differs from the manifest (the message names the key). `path` is
// a scratch file: it is renamed into place but not fsync'd.
Status download_bundle(storage::Storage& storage, const BundleInfo& info, const std::filesystem::path& path);

// Stream `git bundle create` of `revs` (ref names, "^<oid>" exclusions) from
// `repo` into storage under `key` (never overwritten), hashing on the way;
// the object is committed only when git succeeded. The result names
// `snapshot_id` as the bundle's writer. A bundle growing past `max_bytes`
// (0: no limit) is stopped with a GitError naming options.max_pack_bytes.
// When given, `check_header` sees the bundle's parsed header before the
// object is committed; its error aborts the write.
Result<BundleInfo> store_bundle(storage::Storage& storage, const git::GitApi& git,
                                const std::filesystem::path& repo, const std::vector<std::string>& revs,
                                const std::string& key, const std::string& snapshot_id,
                                std::chrono::milliseconds timeout, std::uint64_t max_bytes = 0,
                                const std::function<Status(const git::BundleHeader&)>& check_header = {});

// Whether replay_chain() also reads the refs each bundle lists.
enum class Tips { ignore, collect };

// Fetch `bundles` oldest first into the existing repository `path`, each
// checked against its size and SHA-256 first (downloaded into `scratch`).
// With Tips::collect, returns the object id of every ref any bundle lists.
Result<std::set<std::string>> replay_chain(storage::Storage& storage, const git::GitApi& git,
                                           const std::vector<BundleInfo>& bundles,
                                           const std::filesystem::path& path,
                                           const std::filesystem::path& scratch,
                                           std::chrono::milliseconds timeout, Tips tips);

// Whether restore also recreates the preserved tips of rewritten and deleted refs.
enum class Preserved { no, yes };

// Build the repository of `manifest` at `path` (absent or empty): init with
// its object format, replay its bundles, set refs exactly and HEAD; then
// check that the refs equal the manifest. `scratch` holds downloaded bundles.
// Returns the ref map the repository ended with.
Result<git::RefMap> materialize(storage::Storage& storage, const git::GitApi& git, const Manifest& manifest,
                                const std::filesystem::path& path, const std::filesystem::path& scratch,
                                std::chrono::milliseconds timeout, Preserved preserved = Preserved::no);

} // namespace snapshotter::snapshot
