// Rebuilding a repository from what is stored: a chain of bundles replayed
// into a repository, and a snapshot materialized with its refs and HEAD
// exactly as its manifest says. Shared by restore, verify, prune and
// snapshot (its chain check); bundles are read through catalog.hpp.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

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
