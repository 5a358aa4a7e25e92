#include "snapshotter/snapshot/materialize.hpp"

#include "snapshotter/snapshot/catalog.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

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
