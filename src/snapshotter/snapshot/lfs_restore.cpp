#include "snapshotter/snapshot/lfs_restore.hpp"

#include "snapshotter/lfs/batch.hpp"
#include "snapshotter/lfs/discovery.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
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

Status push_lfs_objects(storage::Storage& storage, const Manifest& manifest, const job::Repository& remote,
                        const std::string& username, const std::string& password, const job::Options& options,
                        nlohmann::json& extra) {
    if (!manifest.lfs)
        return {};
    auto objects = lfs_objects_of(storage, manifest);
    if (!objects)
        return fail(objects.error());
    auto server = lfs::choose_lfs_server(remote.url, remote.lfs_url, std::nullopt,
                                         {options.allow_http, options.allow_file});
    if (!server)
        return fail(server.error().with_context("push_to: the LFS server"));
    lfs::Endpoint endpoint{server->url, "", "", options.http.follow_redirects, options.allow_http};
    if (server->credentials) {
        endpoint.username = username;
        endpoint.password = password;
    }
    lfs::Client client(std::move(endpoint));
    std::uint64_t pushed = 0, bytes = 0, skipped = 0;
    for (std::size_t at = 0; at < objects->size(); at += lfs::k_batch_size) {
        std::vector<lfs::Pointer> batch;
        for (std::size_t i = at; i < std::min(objects->size(), at + lfs::k_batch_size); ++i)
            batch.push_back({(*objects)[i].oid, (*objects)[i].size});
        auto answers = client.batch(lfs::Operation::upload, batch);
        if (!answers)
            return fail(answers.error().with_context(fmt::format("push_to {}", client.describe())));
        for (const auto& answer : *answers) {
            if (answer.error_code != 0)
                return fail(
                    Error::git(fmt::format("push_to {}: LFS object {}: {} {}", client.describe(),
                                           answer.object.oid, answer.error_code, answer.error_message)));
            if (!answer.upload) {
                ++skipped; // the server has it
                continue;
            }
            if (answer.object.size > k_max_pushed_object_bytes)
                return fail(Error::storage(fmt::format("LFS object {} is larger than {} bytes",
                                                       answer.object.oid, k_max_pushed_object_bytes)));
            auto content = storage.get(layout::lfs_object_key(manifest.repository, answer.object.oid),
                                       static_cast<std::size_t>(answer.object.size));
            if (!content && content.error().kind == ErrorKind::NotFound) {
                ++skipped; // not stored (recorded missing): restore reports it
                continue;
            }
            if (!content)
                return fail(content.error());
            if (content->size() != answer.object.size || sha256_hex(*content) != answer.object.oid)
                return fail(Error::integrity(
                    fmt::format("LFS object {} in storage does not match its oid", answer.object.oid)));
            if (auto s =
                    client.upload(*answer.upload, answer.verify, answer.object,
                                  std::as_bytes(std::span<const char>(content->data(), content->size())));
                !s)
                return fail(s.error().with_context(fmt::format("push_to: LFS object {}", answer.object.oid)));
            ++pushed;
            bytes += answer.object.size;
        }
    }
    spdlog::info("{}@{}: pushed {} LFS objects ({} bytes) to {}, {} already there or not stored",
                 manifest.repository, manifest.snapshot_id, pushed, bytes, client.describe(), skipped);
    extra["lfs_pushed"] = {
        {"objects", pushed}, {"bytes", bytes}, {"skipped", skipped}, {"server", client.describe()}};
    return {};
}

} // namespace snapshotter::snapshot
