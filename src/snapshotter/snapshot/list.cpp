// The list action: snapshots of one repository or of all, newest first, read
// from manifests (never inferred from bundle files).
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

using nlohmann::json;

namespace {

// How many refs moved each way since the parent, from the ref-change ledger;
// every ledger kind is present, zeros included.
json change_counts(const Manifest& manifest) {
    json counts = {{"created", 0}, {"fast_forward", 0}, {"updated", 0}, {"rewritten", 0}, {"deleted", 0}};
    for (const auto& [name, change] : manifest.changes) {
        const std::string key{to_string(change.change)};
        counts[key] = counts.value(key, 0) + 1;
    }
    return counts;
}

} // namespace

Outcome run_list(const Context& ctx) {
    std::vector<std::string> names;
    // Prefixes under repos/ that are no repository key snapshotter writes:
    // reported one by one, never read, never a failure of the whole list.
    json skipped = json::array();
    if (ctx.job.list.repository) {
        names.push_back(*ctx.job.list.repository);
    } else {
        auto all = scan_repositories(ctx.storage);
        if (!all)
            return {nullptr, all.error(), false};
        names = std::move(all->names);
        for (const auto& r : all->refused) {
            spdlog::warn("{}", r.error.message);
            skipped.push_back({{"prefix", r.prefix},
                               {"error", error_kind_name(r.error.kind)},
                               {"message", r.error.message}});
        }
    }
    json repos = json::array();
    for (const auto& name : names) {
        auto ids = list_snapshot_ids(ctx.storage, name);
        if (!ids)
            return {nullptr, ids.error(), false};
        if (ids->empty() && ctx.job.list.repository)
            return {nullptr, Error::not_found(fmt::format("{}: no snapshot exists", name)), false};
        json snaps = json::array();
        for (const auto& id : *ids) {
            auto m = read_manifest(ctx.storage, name, id);
            if (!m) {
                snaps.push_back({{"snapshot_id", id}, {"error", m.error().message}});
                continue;
            }
            std::uint64_t bytes = 0;
            for (const auto& b : m->bundles)
                if (b.snapshot_id == m->snapshot_id)
                    bytes += b.size;
            snaps.push_back({{"snapshot_id", m->snapshot_id},
                             {"created_at", m->created_at},
                             {"kind", m->kind},
                             {"refs", m->refs.size()},
                             {"changes", change_counts(*m)},
                             {"bytes", bytes},
                             {"chain", m->bundles.size()},
                             {"parent", m->parent ? json(*m->parent) : json(nullptr)}});
            // Git LFS content it needs (cumulative over its chain), only when it has some.
            if (m->lfs)
                snaps.back()["lfs"] = {{"objects", m->lfs->count},
                                       {"bytes", m->lfs->bytes},
                                       {"missing", m->lfs->missing.size()}};
        }
        repos.push_back({{"name", name}, {"snapshots", std::move(snaps)}});
    }
    json result = {{"action", "list"}, {"repositories", std::move(repos)}};
    if (!skipped.empty())
        result["skipped"] = std::move(skipped);
    return {std::move(result), std::nullopt, false};
}

} // namespace snapshotter::snapshot
