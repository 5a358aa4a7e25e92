// A store as many nights of snapshots leave it, written directly (no git):
// version-3 manifests with delta tables, growing chains of stored bundles and
// LFS sets in set files, for the tests of what gc and prune read
// (snapshot/referenced.hpp) and delete.
#pragma once

#include "sample_manifest.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::test {

// Store `data` as an LFS object of `repo`; the object.
inline snapshot::LfsObject put_lfs_object(storage::Storage& storage, const std::string& repo,
                                          const std::string& data) {
    snapshot::LfsObject object{sha256_hex(data), data.size()};
    EXPECT_TRUE(storage.put(snapshot::layout::lfs_object_key(repo, object.oid), data, Overwrite::yes));
    return object;
}

// `nights` snapshots of `repo` in `storage` as nightly runs leave them: each
// a version-3 manifest whose table is a delta against its parent's (or full,
// as publish_manifest() chooses), whose chain gains one stored bundle a
// night, and whose LFS set, a set file (more than k_lfs_inline_max objects),
// gains an object every tenth night. Returns the manifest keys.
inline std::vector<std::string> publish_nights(storage::Storage& storage, const std::string& repo,
                                               std::size_t nights) {
    static const Clock::time_point epoch{std::chrono::seconds{1'790'000'000}};
    std::vector<std::string> keys;
    std::vector<std::string> chain;
    std::vector<snapshot::LfsObject> objects;
    for (std::size_t i = 0; i <= snapshot::k_lfs_inline_max; ++i)
        objects.push_back(put_lfs_object(storage, repo, fmt::format("{} object {}", repo, i)));
    std::optional<snapshot::TableRef> base;
    for (std::size_t night = 0; night < nights; ++night) {
        const auto id = new_snapshot_id(epoch + std::chrono::hours{24 * night});
        chain.push_back(id);
        EXPECT_TRUE(storage.put(snapshot::layout::bundle_key(repo, id), "bundle", Overwrite::no));
        snapshot::Manifest m = sample_manifest(repo, id, chain);
        for (std::size_t n = 0; n <= night; ++n)
            m.refs[fmt::format("refs/tags/night-{}", n)] = {sha256_hex(fmt::format("{}", n)).substr(0, 40),
                                                            ""};
        if (night > 0 && night % 10 == 0)
            objects.push_back(put_lfs_object(storage, repo, fmt::format("{} night {}", repo, night)));
        std::sort(objects.begin(), objects.end(), [](const auto& a, const auto& b) { return a.oid < b.oid; });
        auto set = snapshot::make_lfs_set(storage, repo, objects, {});
        EXPECT_TRUE(set) << set.error().message;
        if (!set)
            break;
        m.lfs = std::move(*set);
        auto key = snapshot::publish_manifest(storage, m, Overwrite::no, base);
        EXPECT_TRUE(key) << key.error().message;
        if (!key)
            break;
        keys.push_back(*key);
        base = m.table;
    }
    return keys;
}

// Every key stored under `prefix` in `storage`.
inline std::set<std::string> keys_under(storage::Storage& storage, const std::string& prefix) {
    std::set<std::string> out;
    auto listed = storage.list(prefix);
    EXPECT_TRUE(listed);
    if (listed)
        for (const auto& o : *listed)
            out.insert(o.key);
    return out;
}

// Orphans of `repo` as a killed run leaves them: a bundle, an LFS object.
inline void put_orphans(storage::Storage& storage, const std::string& repo) {
    EXPECT_TRUE(storage.put(snapshot::layout::bundle_key(repo, new_snapshot_id()), "orphan", Overwrite::no));
    put_lfs_object(storage, repo, "orphan of " + repo);
}

} // namespace snapshotter::test
