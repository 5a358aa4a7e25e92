#include "snapshotter/snapshot/catalog.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

// Keeps the header of a bundle as it streams by (up to its blank line).
class HeaderScanner {
  public:
    void feed(std::span<const std::byte> chunk) {
        if (m_done)
            return;
        m_header.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        auto end = m_header.find("\n\n");
        if (end == std::string::npos && m_header.size() < (std::size_t{64} << 20))
            return;
        m_done = true;
        m_header.resize(end == std::string::npos ? m_header.size() : end + 2);
    }
    // The parsed header; an IntegrityError when it is malformed or incomplete.
    [[nodiscard]] Result<git::BundleHeader> header() const {
        auto parsed = git::parse_bundle_header(m_header);
        if (!parsed)
            return fail(parsed.error());
        return parsed->header;
    }

  private:
    std::string m_header;
    bool m_done = false;
};

} // namespace

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

Result<std::set<std::string>> referenced_bundles(storage::Storage& storage, const std::string& name) {
    auto ids = list_snapshot_ids(storage, name);
    if (!ids)
        return fail(ids.error());
    std::set<std::string> keys;
    for (const auto& id : *ids) {
        auto manifest = read_manifest(storage, name, id);
        if (!manifest)
            return fail(manifest.error());
        for (const auto& bundle : manifest->bundles)
            keys.insert(bundle.key);
    }
    return keys;
}

Result<bool> advance_latest(storage::Storage& storage, const std::string& name, const std::string& id,
                            const std::string& manifest_key) {
    return storage.update(
        layout::latest_key(name),
        [&](const std::optional<std::string>& current) -> std::optional<std::string> {
            // An unreadable pointer is replaced; a newer one stays.
            if (current)
                if (auto named = parse_latest(*current); named && *named >= id)
                    return std::nullopt;
            return serialize_latest(id, manifest_key);
        },
        // A hint: readers take the newest manifest when it is lost or stale.
        Durability::atomic_only);
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

Result<BundleInfo> store_bundle(storage::Storage& storage, const git::GitApi& git,
                                const std::filesystem::path& repo, const std::vector<std::string>& revs,
                                const std::string& key, const std::string& snapshot_id,
                                std::chrono::milliseconds timeout, std::uint64_t max_bytes,
                                const std::function<Status(const git::BundleHeader&)>& check_header) {
    auto writer = storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    Sha256 hash;
    HeaderScanner header;
    std::uint64_t size = 0;
    auto streamed = git.bundle_create(
        repo, revs,
        [&](std::span<const std::byte> chunk) -> Status {
            hash.update(chunk);
            header.feed(chunk);
            size += chunk.size();
            if (max_bytes > 0 && size > max_bytes)
                return fail(Error::git(
                    fmt::format("the bundle is larger than {} bytes (options.max_pack_bytes)", max_bytes)));
            return (*writer)->write(chunk);
        },
        timeout);
    if (!streamed) {
        (*writer)->abort();
        return fail(streamed.error());
    }
    auto parsed = header.header();
    if (!parsed) {
        (*writer)->abort();
        return fail(parsed.error().with_context("bundle create"));
    }
    if (check_header)
        if (auto s = check_header(*parsed); !s) {
            (*writer)->abort();
            return fail(s.error());
        }
    if (auto s = (*writer)->commit(); !s)
        return fail(s.error());
    return BundleInfo{snapshot_id, key, size, hash.hex_digest(), parsed->prerequisites};
}

Result<std::set<std::string>> replay_chain(storage::Storage& storage, const git::GitApi& git,
                                           const std::vector<BundleInfo>& bundles,
                                           const std::filesystem::path& path,
                                           const std::filesystem::path& scratch,
                                           std::chrono::milliseconds timeout, Tips tips) {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < bundles.size(); ++i) {
        const auto& bundle = bundles[i];
        auto file = scratch / fmt::format("chain-{}.bundle", i);
        if (auto s = download_bundle(storage, bundle, file); !s)
            return fail(s.error());
        if (tips == Tips::collect) {
            auto heads = git.bundle_heads(file);
            if (!heads)
                return fail(
                    Error::integrity(fmt::format("bundle {}: {}", bundle.key, heads.error().message)));
            for (const auto& [name, target] : *heads)
                seen.insert(target.oid);
        }
        auto fetched = git.fetch_bundle(path, file, timeout);
        std::error_code ec;
        std::filesystem::remove(file, ec);
        if (!fetched)
            return fail(Error::integrity(fmt::format("bundle {}: {}", bundle.key, fetched.error().message)));
    }
    return seen;
}

Result<git::RefMap> materialize(storage::Storage& storage, const git::GitApi& git, const Manifest& manifest,
                                const std::filesystem::path& path, const std::filesystem::path& scratch,
                                std::chrono::milliseconds timeout, Preserved preserved) {
    if (auto s = git.init_bare(path, manifest.object_format); !s)
        return fail(s.error());
    // A shallow snapshot's bundles lack the parents of its boundary commits:
    // git accepts them only in a repository that knows it is shallow there.
    if (auto s = git::write_shallow(path, manifest.shallow); !s)
        return fail(s.error());
    // Replay the chain oldest first; each bundle is checked before git sees it.
    if (auto replayed = replay_chain(storage, git, manifest.bundles, path, scratch, timeout, Tips::ignore);
        !replayed)
        return fail(replayed.error());
    // Refs exactly as the manifest says: deleted refs go, HEAD is set.
    git::RefMap wanted = manifest.refs;
    if (preserved == Preserved::yes) {
        std::vector<std::string> oids;
        oids.reserve(manifest.preserved.size());
        for (const auto& [key, oid] : manifest.preserved)
            oids.push_back(oid);
        auto present = git.object_types(path, oids);
        if (!present)
            return fail(present.error());
        for (const auto& [key, oid] : manifest.preserved) {
            if (present->contains(oid))
                wanted[preserved_ref_name(key)] = {oid, ""};
            else
                spdlog::warn("preserved tip {} ({}) is not in this snapshot's chain", key, oid);
        }
    }
    if (auto s = git.set_refs(path, wanted, manifest.head); !s)
        return fail(s.error());
    if (manifest.head_kind == git::HeadKind::detached)
        if (auto s = git.detach_head(path, manifest.head_oid); !s)
            return fail(s.error());
    auto refs = git.local_refs(path);
    if (!refs)
        return fail(refs.error());
    if (refs->size() != wanted.size())
        return fail(
            Error::integrity(fmt::format("restored {} refs, expected {}", refs->size(), wanted.size())));
    for (const auto& [name, target] : wanted) {
        auto it = refs->find(name);
        if (it == refs->end() || it->second.oid != target.oid)
            return fail(Error::integrity(fmt::format("restored ref {} differs from the manifest", name)));
    }
    return std::move(*refs);
}

} // namespace snapshotter::snapshot
