#include "snapshotter/snapshot/materialize.hpp"

#include "snapshotter/snapshot/catalog.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

namespace {

// replay_chain() from the bundle at `first` on.
Result<std::set<std::string>> replay_from(storage::Storage& storage, const git::GitApi& git,
                                          const std::vector<BundleInfo>& bundles, std::size_t first,
                                          const std::filesystem::path& path,
                                          const std::filesystem::path& scratch,
                                          std::chrono::milliseconds timeout, Tips tips) {
    std::set<std::string> seen;
    for (std::size_t i = first; i < bundles.size(); ++i) {
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

// Make `path` the repository of the chain's first bundle, when it can be
// cloned: a complete chain (not shallow) starting with a full bundle. A clone
// writes every ref into packed-refs at once, as `git clone --mirror` does; a
// fetch into an empty repository writes a loose file per ref, which made a
// restore of 100,000 refs several times slower. Returns how many bundles of
// the chain it used (0 or 1); with 0, `path` is untouched.
Result<std::size_t> clone_first(storage::Storage& storage, const git::GitApi& git, const Manifest& manifest,
                                const std::filesystem::path& path, const std::filesystem::path& scratch,
                                std::chrono::milliseconds timeout) {
    if (!manifest.shallow.empty() || manifest.bundles.empty() ||
        !manifest.bundles.front().prerequisites.empty())
        return 0;
    const auto& bundle = manifest.bundles.front();
    auto file = scratch / "chain-0.bundle";
    if (auto s = download_bundle(storage, bundle, file); !s)
        return fail(s.error());
    auto cloned = git.clone_bundle(path, file, timeout);
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (!cloned)
        return fail(Error::integrity(fmt::format("bundle {}: {}", bundle.key, cloned.error().message)));
    return 1;
}

} // namespace

Result<std::set<std::string>> replay_chain(storage::Storage& storage, const git::GitApi& git,
                                           const std::vector<BundleInfo>& bundles,
                                           const std::filesystem::path& path,
                                           const std::filesystem::path& scratch,
                                           std::chrono::milliseconds timeout, Tips tips) {
    return replay_from(storage, git, bundles, 0, path, scratch, timeout, tips);
}

Result<git::RefMap> materialize(storage::Storage& storage, const git::GitApi& git, const Manifest& manifest,
                                const std::filesystem::path& path, const std::filesystem::path& scratch,
                                std::chrono::milliseconds timeout, Preserved preserved) {
    // The first bundle cloned where it can be, else an empty repository.
    auto cloned = clone_first(storage, git, manifest, path, scratch, timeout);
    if (!cloned)
        return fail(cloned.error());
    if (*cloned == 0) {
        if (auto s = git.init_bare(path, manifest.object_format); !s)
            return fail(s.error());
        // A shallow snapshot's bundles lack the parents of its boundary commits:
        // git accepts them only in a repository that knows it is shallow there.
        if (auto s = git::write_shallow(path, manifest.shallow); !s)
            return fail(s.error());
    }
    // Replay the rest of the chain oldest first; each bundle is checked before git sees it.
    if (auto replayed =
            replay_from(storage, git, manifest.bundles, *cloned, path, scratch, timeout, Tips::ignore);
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
