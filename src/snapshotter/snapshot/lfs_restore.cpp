#include "snapshotter/snapshot/lfs_restore.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

std::filesystem::path lfs_object_path(const std::filesystem::path& repo, const std::string& oid) {
    return repo / "lfs" / "objects" / oid.substr(0, 2) / oid.substr(2, 2) / oid;
}

Result<LfsRestoreReport> restore_lfs_objects(storage::Storage& storage, const Manifest& manifest,
                                             const std::filesystem::path& repo) {
    LfsRestoreReport report;
    if (!manifest.lfs)
        return report;
    auto objects = lfs_objects_of(storage, manifest);
    if (!objects)
        return fail(objects.error().with_context(
            fmt::format("{}@{}: the LFS objects it needs", manifest.repository, manifest.snapshot_id)));
    // Objects the snapshot recorded as missing upstream are tried too: a later
    // snapshot of the repository may have stored them since.
    for (const auto& object : *objects) {
        // A bundle's check fits an object exactly: a key, a size and a SHA-256 (its oid).
        BundleInfo stored{.snapshot_id = manifest.snapshot_id,
                          .key = layout::lfs_object_key(manifest.repository, object.oid),
                          .size = object.size,
                          .sha256 = object.oid,
                          .prerequisites = {}};
        auto copied = download_bundle(storage, stored, lfs_object_path(repo, object.oid));
        if (copied) {
            ++report.objects;
            report.bytes += object.size;
            continue;
        }
        if (copied.error().kind != ErrorKind::Integrity)
            return fail(copied.error());
        // Absent or different: a HEAD tells which (only for the failed ones).
        auto info = storage.head(stored.key);
        if (!info)
            return fail(info.error());
        spdlog::error("{}@{}: LFS object {}", manifest.repository, manifest.snapshot_id,
                      copied.error().message);
        (info->has_value() ? report.corrupt : report.missing).push_back(object.oid);
    }
    return report;
}

Status write_lfs_objects(storage::Storage& storage, const Manifest& manifest,
                         const std::filesystem::path& repo, nlohmann::json& extra) {
    if (!manifest.lfs)
        return {};
    auto report = restore_lfs_objects(storage, manifest, repo);
    if (!report)
        return fail(report.error());
    spdlog::info("{}@{}: wrote {} LFS objects ({} bytes){}", manifest.repository, manifest.snapshot_id,
                 report->objects, report->bytes,
                 report->complete() ? ""
                                    : fmt::format("; {} missing, {} corrupt in storage",
                                                  report->missing.size(), report->corrupt.size()));
    extra["lfs"] = {{"objects", report->objects},
                    {"bytes", report->bytes},
                    {"missing", report->missing},
                    {"corrupt", report->corrupt}};
    return {};
}

} // namespace snapshotter::snapshot
