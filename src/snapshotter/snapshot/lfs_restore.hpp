// Restore's share of Git LFS (docs/lfs.md): the large files a snapshot's
// manifest needs, copied from storage into the restored bare repository
// where git-lfs looks for them (`lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`),
// so that `git clone` of it and `git lfs pull` check out real content; and,
// for restore.push_to, uploaded to the new remote's LFS server.
#pragma once

#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// What writing a snapshot's LFS objects did: the objects written and their
// bytes, and by oid those it could not write: `missing` (absent from storage;
// those the snapshot recorded missing upstream among them) and `corrupt`
// (stored with another size or SHA-256; never written).
struct LfsRestoreReport {
    std::size_t objects = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> missing;
    std::vector<std::string> corrupt;
    // Whether every object the snapshot needs is in the repository.
    [[nodiscard]] bool complete() const { return missing.empty() && corrupt.empty(); }
};

// The path git-lfs keeps object `oid` at in the bare repository `repo`.
std::filesystem::path lfs_object_path(const std::filesystem::path& repo, const std::string& oid);

// Copy every LFS object `manifest` needs from `storage` into the bare
// repository `repo`, each verified (size, SHA-256) while it streams and
// renamed into place only when it matches. Nothing when the manifest has no
// `lfs` field. Fails only when the set cannot be read or a file cannot be
// written; objects absent or corrupt in storage are reported, not fatal.
Result<LfsRestoreReport> restore_lfs_objects(storage::Storage& storage, const Manifest& manifest,
                                             const std::filesystem::path& repo);

// Restore's step for one repository: restore_lfs_objects() into `repo`, and
// its report as `extra["lfs"]` ({"objects", "bytes", "missing", "corrupt"}).
// Nothing (not even a storage call) when the manifest has no `lfs` field.
Status write_lfs_objects(storage::Storage& storage, const Manifest& manifest,
                         const std::filesystem::path& repo, nlohmann::json& extra);

// restore.push_to's step: upload every object of `manifest`'s set that
// storage holds to the LFS server of the push remote `remote` (its lfs_url,
// else derived from its url as git-lfs does; its credentials go there only
// as for a snapshot), through the batch API's upload operation; objects the
// server already has are skipped. Adds `extra["lfs_pushed"]`: {"objects",
// "bytes", "skipped", "server"}. Nothing without an `lfs` field. Each object
// is read whole into memory (at most `k_max_pushed_object_bytes`).
inline constexpr std::uint64_t k_max_pushed_object_bytes = std::uint64_t{1} << 30;
Status push_lfs_objects(storage::Storage& storage, const Manifest& manifest, const job::Repository& remote,
                        const std::string& username, const std::string& password, const job::Options& options,
                        nlohmann::json& extra);

} // namespace snapshotter::snapshot
