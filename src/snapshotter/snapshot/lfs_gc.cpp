#include "snapshotter/snapshot/lfs_gc.hpp"

#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
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

nlohmann::json LfsDeletion::to_json() const {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& e : failed)
        errors.push_back(redact(e.message));
    return {
        {"objects", deleted.size()}, {"bytes", bytes}, {"retained", retained}, {"failed", std::move(errors)}};
}

std::optional<LfsDeletion> prune_lfs(storage::Storage& storage, const std::string& name,
                                     const std::vector<const Manifest*>& dropped, const Referenced& present) {
    if (std::none_of(dropped.begin(), dropped.end(), [](const Manifest* m) { return m->lfs.has_value(); }))
        return std::nullopt;
    LfsDeletion none;
    // 1. What the dropped snapshots needed. A set file a present manifest
    //    still names (content-addressed: the same list) needs no reading: all
    //    it lists is kept alive.
    std::set<std::string> candidates;
    for (const auto* manifest : dropped) {
        if (manifest->lfs && manifest->lfs->set_key && present.lfs.contains(*manifest->lfs->set_key))
            continue;
        auto keys = lfs_keys_of(storage, *manifest);
        if (!keys) {
            // Its set is gone or unreadable: its objects stay for gc to judge.
            none.failed.push_back(
                keys.error().with_context(fmt::format("{}@{}", name, manifest->snapshot_id)));
            continue;
        }
        candidates.merge(*keys);
    }
    // 2. Keep what a manifest present now needs.
    std::erase_if(candidates, [&](const std::string& key) { return present.lfs.contains(key); });
    if (candidates.empty())
        return none;
    // 3. Delete the rest.
    auto deletion = delete_unretained(storage, candidates);
    deletion.failed.insert(deletion.failed.begin(), none.failed.begin(), none.failed.end());
    spdlog::info("{}: deleted {} LFS objects and sets ({} bytes) only dropped snapshots needed", name,
                 deletion.deleted.size(), deletion.bytes);
    return deletion;
}

} // namespace snapshotter::snapshot
