// The Git LFS objects a snapshot needs (docs/lfs.md): the `lfs` field of a
// manifest, either inline (small sets) or as a content-addressed list in
// storage (large sets), and the objects a purged server could not give.
#pragma once

#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::snapshot {

struct Manifest;

// Sets with at most this many objects are written inline in the manifest;
// larger ones go to layout::lfs_set_key().
inline constexpr std::size_t k_lfs_inline_max = 64;
// The most objects one set may list (a set file of ~100 MB).
inline constexpr std::uint64_t k_max_lfs_objects = 1'000'000;
// The largest LFS object size accepted from a server or a manifest (16 TiB).
inline constexpr std::uint64_t k_max_lfs_object_size = std::uint64_t{1} << 44;
// The largest set file read back from storage.
inline constexpr std::size_t k_max_lfs_set_bytes = std::size_t{128} << 20;

// One LFS object: its SHA-256 (64 lowercase hex) and size in bytes.
struct LfsObject {
    std::string oid;
    std::uint64_t size = 0;
    bool operator==(const LfsObject&) const = default;
};

// An object a snapshot needs that could not be stored. `reason` is
// "not_found" (the server no longer has it: purged), "hash_mismatch" (the
// bytes served did not hash to the oid or had another size) or "error: ..."
// (any other failure, redacted).
struct LfsMissing {
    std::string oid;
    std::uint64_t size = 0;
    std::string reason;
    bool operator==(const LfsMissing&) const = default;
};

// What the stream engine read of HEAD's `.lfsconfig` from a pack (docs/lfs.md):
// HEAD's commit and root tree, the `.lfsconfig` blob there (empty: none) and
// its lfs.url (none: no .lfsconfig, or one without lfs.url). The next
// incremental reuses it when HEAD, its root tree or that blob did not change.
struct LfsConfigRecord {
    std::string head;               // HEAD's commit (hex)
    std::string tree;               // its root tree (hex)
    std::string blob;               // the .lfsconfig blob in that tree (hex), empty: none
    std::optional<std::string> url; // its lfs.url (at most 2048 bytes, without userinfo)
    bool operator==(const LfsConfigRecord&) const = default;
};

// The LFS objects a snapshot needs: cumulative over its chain (docs/lfs.md).
struct LfsSet {
    std::uint64_t count = 0; // objects needed, missing ones included
    std::uint64_t bytes = 0; // their total size
    // Sorted by oid, unique; present when count <= k_lfs_inline_max, else empty.
    std::vector<LfsObject> objects;
    // For larger sets: the key (layout::lfs_set_key) and SHA-256 of the list.
    std::optional<std::string> set_key;
    std::optional<std::string> set_sha256;
    // Needed objects storage does not hold, sorted by oid (a subset of the set).
    std::vector<LfsMissing> missing;
    // Added later (absent in older manifests): HEAD's .lfsconfig as a pack showed it.
    std::optional<LfsConfigRecord> lfsconfig;
    bool operator==(const LfsSet&) const = default;
};

// The manifest's "lfs" value: {"count","bytes","objects"|"set":{"key","sha256"},"missing"},
// and "lfsconfig":{"head","tree","blob","url"} when recorded.
nlohmann::json lfs_set_to_json(const LfsSet& set);

// Parse and check the manifest's "lfs" value of repository `repository`:
// oid shapes, sizes within bounds, counts consistent with the objects, the
// set key within layout::Area::lfs. IntegrityError says what is wrong.
Result<LfsSet> lfs_set_from_json(const nlohmann::json& j, std::string_view repository);

// The content of a set file: {"objects":[{"oid","size"},...]} for `objects`
// (sorted, unique), one object a line so that it diffs and streams well.
std::string serialize_lfs_objects(const std::vector<LfsObject>& objects);

// Parse a set file; checks oids, sizes, order and uniqueness.
Result<std::vector<LfsObject>> parse_lfs_objects(std::string_view text);

// Describe `objects` (sorted, unique; missing ones included) in a set: counts and
// bytes, inline when small, else written to storage under `repository`'s
// lfs_set_key (content-addressed, so an existing one is reused) and named.
Result<LfsSet> make_lfs_set(storage::Storage& storage, std::string_view repository,
                            std::vector<LfsObject> objects, std::vector<LfsMissing> missing);

// Every LFS object `manifest` needs (empty without an lfs field): inline, or
// read from its set file (size-bounded, SHA-256 checked, count and bytes
// matched against the manifest).
Result<std::vector<LfsObject>> lfs_objects_of(storage::Storage& storage, const Manifest& manifest);

} // namespace snapshotter::snapshot
