#include "snapshotter/snapshot/lfs_gc.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

// Delete `keys` unless Object Lock still retains them: a delete on a locked
// object would only hide it behind a delete marker. The HEAD also gives the
// bytes freed.
LfsDeletion delete_unretained(storage::Storage& storage, const std::set<std::string>& keys) {
    LfsDeletion d;
    std::vector<std::string> doomed;
    std::uint64_t bytes = 0;
    for (const auto& key : keys) {
        auto info = storage.head(key);
        if (!info) {
            d.failed.push_back(info.error().with_context(key));
        } else if (*info && (*info)->retain_until && *(*info)->retain_until > Clock::now()) {
            d.retained.push_back(key);
        } else if (*info) {
            doomed.push_back(key);
            bytes += (*info)->size;
        }
    }
    if (auto s = storage.remove(doomed); !s) {
        d.failed.push_back(s.error());
        return d;
    }
    d.bytes = bytes;
    d.deleted = std::move(doomed);
    return d;
}

} // namespace

Result<std::set<std::string>> lfs_keys_of(storage::Storage& storage, const Manifest& manifest) {
    std::set<std::string> keys;
    if (!manifest.lfs)
        return keys;
    auto objects = lfs_objects_of(storage, manifest);
    if (!objects)
        return fail(objects.error());
    for (const auto& object : *objects)
        keys.insert(layout::lfs_object_key(manifest.repository, object.oid));
    if (manifest.lfs->set_key)
        keys.insert(*manifest.lfs->set_key);
    return keys;
}

Result<std::set<std::string>> referenced_lfs_keys(storage::Storage& storage, const std::string& name) {
    auto ids = list_snapshot_ids(storage, name);
    if (!ids)
        return fail(ids.error());
    std::set<std::string> keys;
    for (const auto& id : *ids) {
        auto manifest = read_manifest(storage, name, id);
        if (!manifest && manifest.error().kind == ErrorKind::NotFound)
            continue; // pruned meanwhile: it needs nothing any more
        if (!manifest)
            return fail(
                manifest.error().with_context("a manifest that cannot be read may need any LFS object"));
        auto needed = lfs_keys_of(storage, *manifest);
        if (!needed)
            return fail(needed.error().with_context(fmt::format("{}@{}", name, id)));
        keys.merge(*needed);
    }
    return keys;
}

nlohmann::json LfsDeletion::to_json() const {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& e : failed)
        errors.push_back(redact(e.message));
    return {
        {"objects", deleted.size()}, {"bytes", bytes}, {"retained", retained}, {"failed", std::move(errors)}};
}

std::optional<LfsDeletion> prune_lfs(storage::Storage& storage, const std::string& name,
                                     const std::vector<const Manifest*>& dropped) {
    if (std::none_of(dropped.begin(), dropped.end(), [](const Manifest* m) { return m->lfs.has_value(); }))
        return std::nullopt;
    LfsDeletion none;
    // 1. What the dropped snapshots needed.
    std::set<std::string> candidates;
    for (const auto* manifest : dropped) {
        auto keys = lfs_keys_of(storage, *manifest);
        if (!keys) {
            // Its set is gone or unreadable: its objects stay for gc to judge.
            none.failed.push_back(
                keys.error().with_context(fmt::format("{}@{}", name, manifest->snapshot_id)));
            continue;
        }
        candidates.merge(*keys);
    }
    if (candidates.empty())
        return none;
    // 2. Keep what a manifest present now needs (read afresh: one committed
    //    since the plan keeps its objects too).
    auto referenced = referenced_lfs_keys(storage, name);
    if (!referenced) {
        none.failed.push_back(referenced.error());
        return none;
    }
    std::erase_if(candidates, [&](const std::string& key) { return referenced->contains(key); });
    // 3. Delete the rest.
    auto deletion = delete_unretained(storage, candidates);
    deletion.failed.insert(deletion.failed.begin(), none.failed.begin(), none.failed.end());
    spdlog::info("{}: deleted {} LFS objects and sets ({} bytes) only dropped snapshots needed", name,
                 deletion.deleted.size(), deletion.bytes);
    return deletion;
}

void LfsOrphans::add_to(std::vector<const Leftover*>& all_removed, std::vector<Leftover>& all_young,
                        std::vector<Error>& all_problems) const {
    for (const auto& item : removed)
        all_removed.push_back(&item);
    all_young.insert(all_young.end(), young.begin(), young.end());
    all_problems.insert(all_problems.end(), problems.begin(), problems.end());
}

LfsOrphans gc_lfs(storage::Storage& storage, const std::vector<std::string>& names,
                  std::chrono::seconds min_age, Clock::time_point now, bool dry_run) {
    LfsOrphans out;
    std::vector<std::string> repositories = names;
    if (repositories.empty()) {
        auto all = list_repositories(storage);
        if (!all) {
            out.problems.push_back(all.error());
            return out;
        }
        repositories = std::move(*all);
    }
    for (const auto& name : repositories) {
        // 1. Everything stored in the repository's LFS area, then what is referenced:
        //    listed first, so a manifest committed in between counts.
        auto stored = storage.list(layout::lfs_prefix(name));
        if (!stored) {
            out.problems.push_back(stored.error().with_context(name));
            continue;
        }
        if (stored->empty())
            continue;
        auto referenced = referenced_lfs_keys(storage, name);
        if (!referenced) {
            out.problems.push_back(referenced.error().with_context(name));
            continue;
        }
        std::vector<Leftover> old_enough;
        for (const auto& object : *stored) {
            if (referenced->contains(object.key))
                continue;
            if (auto s = layout::check_within(object.key, name, layout::Area::lfs, "listing"); !s) {
                out.problems.push_back(s.error()); // not an object this layout writes: never deleted
                continue;
            }
            Leftover item{Leftover::Kind::orphan_lfs, object.key, name, object.size, object.modified, {}};
            if (item.since && age_seconds(item, now) >= min_age.count())
                old_enough.push_back(std::move(item));
            else
                out.young.push_back(std::move(item));
        }
        if (old_enough.empty() || dry_run) {
            out.removed.insert(out.removed.end(), old_enough.begin(), old_enough.end());
            continue;
        }
        // 2. Re-read the manifests present now, then delete what none of them needs.
        auto again = referenced_lfs_keys(storage, name);
        if (!again) {
            out.problems.push_back(again.error().with_context(name));
            continue;
        }
        std::vector<std::string> keys;
        std::vector<Leftover> doomed;
        for (auto& item : old_enough) {
            if (again->contains(item.key)) {
                spdlog::info("{}: {} gained a manifest since the scan; keeping it", name, item.key);
                continue;
            }
            keys.push_back(item.key);
            doomed.push_back(std::move(item));
        }
        if (auto s = storage.remove(keys); !s) {
            out.problems.push_back(s.error().with_context(name));
            continue;
        }
        out.removed.insert(out.removed.end(), doomed.begin(), doomed.end());
    }
    return out;
}

} // namespace snapshotter::snapshot
