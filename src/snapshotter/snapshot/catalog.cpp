#include "snapshotter/snapshot/catalog.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

Result<Manifest> read_manifest(storage::Storage& storage, const std::string& name, const std::string& id) {
    auto key = layout::manifest_key(name, id);
    auto text = storage.get(key);
    if (!text) {
        if (text.error().kind == ErrorKind::NotFound)
            return fail(Error::not_found(fmt::format("{}: snapshot {} does not exist", name, id)));
        return fail(text.error());
    }
    auto manifest = parse_manifest(*text);
    if (!manifest)
        return fail(manifest.error().with_context(fmt::format("{}@{}", name, id)));
    if (manifest->snapshot_id != id || manifest->repository != name)
        return fail(Error::integrity(fmt::format("{}@{}: manifest names {}@{}", name, id,
                                                 manifest->repository, manifest->snapshot_id)));
    // Version 2: the sets come from the table it names (verified, or a hostile
    // or missing table is an IntegrityError naming its key).
    if (auto s = load_table(storage, *manifest); !s)
        return fail(s.error().with_context(fmt::format("{}@{}", name, id)));
    // Every reader of the chain (restore, verify, prune, gc) gets only keys
    // inside this repository's bundles/: a planted key is refused here.
    for (const auto& bundle : manifest->bundles)
        if (auto s = layout::check_within(bundle.key, name, layout::Area::bundles,
                                          fmt::format("bundle list of manifest {}", key));
            !s)
            return fail(s.error());
    return manifest;
}

Result<std::vector<std::string>> list_snapshot_ids(storage::Storage& storage, const std::string& name) {
    auto objects = storage.list(layout::manifests_prefix(name));
    if (!objects)
        return fail(objects.error());
    std::vector<std::string> ids;
    for (const auto& o : *objects)
        if (auto id = layout::snapshot_id_of_manifest_key(o.key); id && is_snapshot_id(*id))
            ids.push_back(*id);
    std::sort(ids.rbegin(), ids.rend());
    return ids;
}

Result<std::optional<Manifest>> read_latest_manifest(storage::Storage& storage, const std::string& name) {
    auto pointer = storage.get(layout::latest_key(name));
    std::optional<std::string> id;
    if (pointer) {
        auto parsed = parse_latest(*pointer);
        if (parsed)
            id = *parsed;
        else
            spdlog::warn("{}: {}; falling back to the newest manifest", name, parsed.error().message);
    } else if (pointer.error().kind != ErrorKind::NotFound) {
        return fail(pointer.error());
    }
    // The pointer is written after the manifest, so a newer manifest may exist
    // without it (a crash between the two); the newest manifest wins.
    auto ids = list_snapshot_ids(storage, name);
    if (!ids)
        return fail(ids.error());
    if (!ids->empty() && (!id || ids->front() > *id))
        id = ids->front();
    if (!id)
        return std::optional<Manifest>{};
    auto manifest = read_manifest(storage, name, *id);
    if (!manifest)
        return fail(manifest.error());
    return std::optional<Manifest>(std::move(*manifest));
}

Result<Manifest> resolve_snapshot(storage::Storage& storage, const std::string& name,
                                  const std::string& selector) {
    if (selector != "latest")
        return read_manifest(storage, name, selector);
    auto latest = read_latest_manifest(storage, name);
    if (!latest)
        return fail(latest.error());
    if (!*latest)
        return fail(Error::not_found(fmt::format("{}: no snapshot exists", name)));
    return std::move(**latest);
}

Result<RepositoryScan> scan_repositories(storage::Storage& storage) {
    auto objects = storage.list(layout::repos_prefix());
    if (!objects)
        return fail(objects.error());
    std::set<std::string> names;
    std::set<std::string> refused;
    RepositoryScan scan;
    for (const auto& o : *objects) {
        std::string_view rest = std::string_view(o.key).substr(layout::repos_prefix().size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || !rest.substr(slash).starts_with("/manifests/"))
            continue;
        const std::string segment(rest.substr(0, slash));
        if (!layout::is_canonical_repo_key(segment)) {
            // Not a name this layout writes ("%2E%2E" would decode to ".."):
            // report it once, and never turn it into a prefix.
            if (refused.insert(segment).second)
                scan.refused.push_back(
                    {layout::repos_prefix() + segment + "/",
                     Error::integrity(fmt::format("{}{}/ is not a repository key snapshotter writes; skipped",
                                                  layout::repos_prefix(), segment))});
            continue;
        }
        names.insert(*layout::repo_name(segment));
    }
    scan.names.assign(names.begin(), names.end());
    return scan;
}

Result<std::vector<std::string>> list_repositories(storage::Storage& storage) {
    auto scan = scan_repositories(storage);
    if (!scan)
        return fail(scan.error());
    for (const auto& r : scan->refused)
        spdlog::warn("{}", r.error.message);
    return std::move(scan->names);
}

Result<std::vector<std::string>> repositories_or_all(storage::Storage& storage,
                                                     const std::vector<std::string>& names) {
    if (!names.empty())
        return names;
    return list_repositories(storage);
}

Status download_bundle(storage::Storage& storage, const BundleInfo& info, const std::filesystem::path& path) {
    auto file = AtomicFile::create(path);
    if (!file)
        return fail(file.error());
    Sha256 hash;
    std::uint64_t received = 0;
    auto read = storage.read(info.key, [&](std::span<const std::byte> chunk) -> Status {
        // Stop at the manifest's size plus one byte: a stored object larger
        // than the manifest says never reaches the disk beyond that (the
        // backend stops reading when the sink fails; S3 aborts the GET).
        received += chunk.size();
        if (received > info.size)
            return fail(Error::integrity(
                fmt::format("bundle {}: larger than the manifest's {} bytes; stopped reading at byte {}",
                            info.key, info.size, info.size + 1)));
        hash.update(chunk);
        return file->write(chunk);
    });
    if (!read) {
        if (read.error().kind == ErrorKind::NotFound)
            return fail(Error::integrity(fmt::format("bundle {} is missing", info.key)));
        return fail(read.error());
    }
    if (file->size() != info.size)
        return fail(Error::integrity(fmt::format("bundle {}: size {} differs from the manifest's {}",
                                                 info.key, file->size(), info.size)));
    auto digest = hash.hex_digest();
    if (digest != info.sha256)
        return fail(Error::integrity(fmt::format("bundle {}: SHA-256 mismatch (manifest {}, stored {})",
                                                 info.key, info.sha256, digest)));
    // A scratch copy for git to read: nothing to make durable.
    return file->commit(Overwrite::yes, Durability::atomic_only);
}

} // namespace snapshotter::snapshot
