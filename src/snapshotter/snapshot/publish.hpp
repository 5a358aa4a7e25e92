// Publishing into storage: bundles streamed from git (hashed, committed
// only when git succeeded) and the forward-only latest pointer. Used by
// snapshot and prune; reading is in catalog.hpp.
#pragma once

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/git.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// Point `latest` of `name` at snapshot `id` (manifest `manifest_key`) unless
// it already names `id` or a newer one: the pointer only moves forward, also
// when two jobs publish at once (a compare-and-swap, Storage::update).
// Returns whether it moved. The pointer is a hint (read_latest_manifest
// takes the newest manifest anyway), so file:// does not fsync it.
Result<bool> advance_latest(storage::Storage& storage, const std::string& name, const std::string& id,
                            const std::string& manifest_key);

// Publish `manifest` as version 4: its table first (tables.hpp's
// publish_table(): none when the sets equal those of `base`, the parent's
// table, as on an unchanged night; else a delta against `base` or a full
// table), then the manifest object naming it, under manifest_key() with
// `overwrite`. Sets `manifest.schema_version`, `manifest.table` and
// `manifest.table_chain`; returns the manifest's key.
Result<std::string> publish_manifest(storage::Storage& storage, Manifest& manifest, Overwrite overwrite,
                                     const std::optional<TableRef>& base = std::nullopt);

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

} // namespace snapshotter::snapshot
