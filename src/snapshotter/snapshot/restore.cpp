// The restore action: rebuild one snapshot as a new bare repository whose
// refs equal the manifest exactly. The repository is built beside the target
// and renamed into place, so a failed restore leaves no half-made target.
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/selection.hpp"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

Outcome run_restore(const Context& ctx) {
    const auto& spec = ctx.job.restore;
    const auto timeout = std::chrono::milliseconds{std::chrono::seconds{ctx.job.options.timeout_s}};

    // 1. The target must be new or an empty directory.
    auto empty = is_absent_or_empty_dir(spec.target);
    if (!empty)
        return {nullptr, empty.error(), false};
    if (!*empty)
        return {nullptr,
                Error::conflict(fmt::format("restore.target {} exists and is not an empty directory",
                                            spec.target.string())),
                false};

    // 2. Find the manifest: the repository must exist (a typo gets a
    //    suggestion), and an id may be given by its unique beginning.
    auto known = list_repositories(ctx.storage);
    if (!known)
        return {nullptr, known.error(), false};
    if (std::find(known->begin(), known->end(), spec.repository) == known->end())
        return {nullptr, unknown_repository(spec.repository, *known), false};
    std::string selector = spec.snapshot;
    if (selector != "latest" && !is_snapshot_id(selector)) {
        auto ids = list_snapshot_ids(ctx.storage, spec.repository);
        if (!ids)
            return {nullptr, ids.error(), false};
        auto id = resolve_prefix(*ids, selector, spec.repository);
        if (!id)
            return {nullptr, id.error(), false};
        selector = *id;
    }
    auto manifest = resolve_snapshot(ctx.storage, spec.repository, selector);
    if (!manifest)
        return {nullptr, manifest.error(), false};
    if (ctx.dry_run)
        return {{{"action", "restore"},
                 {"dry_run", true},
                 {"repository", spec.repository},
                 {"snapshot_id", manifest->snapshot_id},
                 {"target", spec.target.string()},
                 {"refs", manifest->refs.size()}},
                std::nullopt,
                false};

    // 3. Build it in a scratch directory beside the target, then move it in.
    std::error_code ec;
    std::filesystem::create_directories(spec.target.parent_path(), ec);
    // A killed restore's half-built repository goes first.
    sweep_abandoned_temp_dirs(spec.target.parent_path());
    auto scratch = TempDir::create("restore", spec.target.parent_path());
    if (!scratch)
        return {nullptr, scratch.error(), false};
    auto building = scratch->path() / "repo.git";
    ProgressScope shown(ctx.events, "restore", "repositories", 1);
    ctx.events.progress({.done = 0, .total = 1, .in_flight = 1, .bytes = 0, .current = spec.repository});
    auto refs = materialize(ctx.storage, ctx.git, *manifest, building, scratch->path(), timeout,
                            spec.preserved ? Preserved::yes : Preserved::no);
    if (!refs)
        return {
            nullptr,
            refs.error().with_context(fmt::format("restore {}@{}", spec.repository, manifest->snapshot_id)),
            false};
    // rename() replaces an empty directory atomically.
    if (std::rename(building.c_str(), spec.target.c_str()) != 0)
        return {nullptr,
                Error::storage(fmt::format("move the restored repository to {}: {}", spec.target.string(),
                                           errno_text(errno))),
                false};
    spdlog::info("restored {}@{} into {}", spec.repository, manifest->snapshot_id, spec.target.string());
    return {{{"action", "restore"},
             {"repository", spec.repository},
             {"snapshot_id", manifest->snapshot_id},
             {"target", spec.target.string()},
             {"refs", manifest->refs.size()},
             {"preserved", refs->size() - manifest->refs.size()},
             {"head", manifest->head ? nlohmann::json(*manifest->head) : nlohmann::json(nullptr)}},
            std::nullopt,
            false};
}

} // namespace snapshotter::snapshot
