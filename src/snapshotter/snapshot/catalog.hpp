// Reading what is stored: manifests, the latest pointer, and bundles
// downloaded with their checksum verified. Shared by restore, verify, list
// and the unchanged check of snapshot. Writing is in publish.hpp, rebuilding
// a repository from a chain in materialize.hpp, what the manifests keep alive
// (the view deleters decide on) in referenced.hpp.
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// The manifest of snapshot `id` of repository `name`, version 1 or 2 (with
// the sets of its table loaded: tables.hpp).
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

// Copy bundle `info` to `path`, failing with IntegrityError when its size or
// SHA-256 differs from the manifest (the message names the key). `path` is
// a scratch file: it is renamed into place but not fsync'd.
Status download_bundle(storage::Storage& storage, const BundleInfo& info, const std::filesystem::path& path);

} // namespace snapshotter::snapshot
