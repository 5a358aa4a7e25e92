#include "snapshotter/snapshot/leftovers.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"

#include <fmt/format.h>
#include <map>
#include <set>

namespace snapshotter::snapshot {
namespace {

// The bundles of each repository under `prefix`, keyed by repository name.
Result<std::map<std::string, std::vector<storage::ObjectInfo>>>
bundles_by_repository(storage::Storage& storage, const std::string& prefix) {
    auto objects = storage.list(prefix);
    if (!objects)
        return fail(objects.error());
    std::map<std::string, std::vector<storage::ObjectInfo>> out;
    for (auto& object : *objects) {
        auto name = layout::repository_of_key(object.key);
        if (name && (object.key.starts_with(layout::bundles_prefix(*name)) ||
                     object.key.starts_with(layout::tables_prefix(*name))))
            out[*name].push_back(std::move(object));
    }
    return out;
}

} // namespace

Result<LeftoverScan> find_leftovers(storage::Storage& storage, const std::vector<std::string>& names) {
    std::vector<std::string> prefixes;
    prefixes.reserve(names.size() + 1);
    for (const auto& name : names)
        prefixes.push_back(layout::repo_prefix(name));
    if (prefixes.empty())
        prefixes.emplace_back();
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
        // 2. Bundles and tables no manifest lists. They are listed before
        //    manifests are read, so a manifest committed in between counts.
        auto bundles = bundles_by_repository(storage, prefix.empty() ? layout::repos_prefix() : prefix);
        if (!bundles)
            return fail(bundles.error());
        for (auto& [name, objects] : *bundles) {
            auto referenced = referenced_bundles(storage, name);
            if (!referenced) {
                scan.problems.push_back(referenced.error().with_context(name));
                continue;
            }
            for (auto& object : objects) {
                const bool table = object.key.starts_with(layout::tables_prefix(name));
                const auto area = table ? layout::Area::tables : layout::Area::bundles;
                if (auto s = layout::check_within(object.key, name, area, "listing"); !s)
                    // Not an object this layout writes: reported, never deleted.
                    scan.problems.push_back(s.error());
                else if (!referenced->contains(object.key))
                    scan.items.push_back(
                        {table ? Leftover::Kind::orphan_table : Leftover::Kind::orphan_bundle,
                         object.key,
                         name,
                         object.size,
                         object.modified,
                         {}});
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
