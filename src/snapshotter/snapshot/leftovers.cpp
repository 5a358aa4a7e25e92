#include "snapshotter/snapshot/leftovers.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/referenced.hpp"

#include <fmt/format.h>
#include <map>
#include <optional>

namespace snapshotter::snapshot {
namespace {

// The area of repository `name` holding `key` when orphans are looked for
// there with `orphans`; nullopt otherwise.
std::optional<layout::Area> orphan_area(const std::string& key, const std::string& name, Orphans orphans) {
    if (key.starts_with(layout::bundles_prefix(name)))
        return layout::Area::bundles;
    if (key.starts_with(layout::tables_prefix(name)))
        return layout::Area::tables;
    if (orphans == Orphans::chains_and_lfs && key.starts_with(layout::lfs_prefix(name)))
        return layout::Area::lfs;
    return std::nullopt;
}

Leftover::Kind orphan_kind(layout::Area area) {
    switch (area) {
    case layout::Area::tables:
        return Leftover::Kind::orphan_table;
    case layout::Area::lfs:
        return Leftover::Kind::orphan_lfs;
    case layout::Area::bundles:
    case layout::Area::manifests:
        break;
    }
    return Leftover::Kind::orphan_bundle;
}

// The objects under `prefix` that may be orphans (orphan_area()), by repository name.
Result<std::map<std::string, std::vector<storage::ObjectInfo>>>
candidates_by_repository(storage::Storage& storage, const std::string& prefix, Orphans orphans) {
    auto objects = storage.list(prefix);
    if (!objects)
        return fail(objects.error());
    std::map<std::string, std::vector<storage::ObjectInfo>> out;
    for (auto& object : *objects) {
        auto name = layout::repository_of_key(object.key);
        if (name && orphan_area(object.key, *name, orphans))
            out[*name].push_back(std::move(object));
    }
    return out;
}

} // namespace

Result<LeftoverScan> find_leftovers(storage::Storage& storage, const std::vector<std::string>& names,
                                    Orphans orphans) {
    std::vector<std::string> prefixes;
    prefixes.reserve(names.size() + 1);
    for (const auto& name : names)
        prefixes.push_back(layout::repo_prefix(name));
    if (prefixes.empty())
        prefixes.emplace_back();
    const auto lfs = orphans == Orphans::chains_and_lfs ? LfsSets::read : LfsSets::skip;
    LeftoverScan scan;
    for (const auto& prefix : prefixes) {
        // 1. Uploads begun and never finished.
        auto pending = storage.list_pending(prefix);
        if (!pending)
            return fail(pending.error());
        for (auto& upload : *pending) {
            Leftover item{Leftover::Kind::pending_upload,
                          upload.key,
                          layout::repository_of_key(upload.key).value_or(""),
                          upload.size,
                          upload.since,
                          {}};
            item.upload = std::move(upload);
            scan.items.push_back(std::move(item));
        }
        // 2. Objects no manifest needs. They are listed before the manifests
        //    are read, so a manifest committed in between counts.
        auto candidates =
            candidates_by_repository(storage, prefix.empty() ? layout::repos_prefix() : prefix, orphans);
        if (!candidates)
            return fail(candidates.error());
        for (auto& [name, objects] : *candidates) {
            auto referenced = read_referenced(storage, name, lfs);
            if (!referenced) {
                scan.problems.push_back(referenced.error());
                continue;
            }
            for (auto& object : objects) {
                const auto area = *orphan_area(object.key, name, orphans);
                if (auto s = layout::check_within(object.key, name, area, "listing"); !s)
                    // Not an object this layout writes: reported, never deleted.
                    scan.problems.push_back(s.error());
                else if (!referenced->contains(object.key))
                    scan.items.push_back(
                        {orphan_kind(area), object.key, name, object.size, object.modified, {}});
            }
        }
    }
    return scan;
}

long long age_seconds(const Leftover& leftover, Clock::time_point now) {
    if (!leftover.since)
        return 0;
    return std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::seconds>(now - *leftover.since).count());
}

std::string_view kind_name(Leftover::Kind kind) {
    switch (kind) {
    case Leftover::Kind::pending_upload:
        return "pending_upload";
    case Leftover::Kind::orphan_table:
        return "orphan_table";
    case Leftover::Kind::orphan_lfs:
        return "orphan_lfs";
    case Leftover::Kind::orphan_bundle:
        break;
    }
    return "orphan_bundle";
}

nlohmann::json leftover_json(const Leftover& leftover, Clock::time_point now) {
    return {{"kind", kind_name(leftover.kind)},
            {"key", leftover.key},
            {"repository",
             leftover.repository.empty() ? nlohmann::json(nullptr) : nlohmann::json(leftover.repository)},
            {"bytes", leftover.size},
            {"age_s", leftover.since ? nlohmann::json(age_seconds(leftover, now)) : nlohmann::json(nullptr)}};
}

nlohmann::json leftovers_summary(const std::vector<Leftover>& items, Clock::time_point now,
                                 std::chrono::seconds stale_after, std::size_t max_items) {
    std::uint64_t bytes = 0;
    std::size_t stale = 0;
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& item : items) {
        bytes += item.size;
        stale += item.since && age_seconds(item, now) >= stale_after.count() ? 1 : 0;
        if (listed.size() < max_items)
            listed.push_back(leftover_json(item, now));
    }
    return {{"count", items.size()},
            {"bytes", bytes},
            {"stale", stale},
            {"stale_after_s", stale_after.count()},
            {"items", std::move(listed)},
            {"truncated", items.size() > max_items}};
}

} // namespace snapshotter::snapshot
