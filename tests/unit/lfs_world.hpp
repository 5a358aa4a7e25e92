// Git LFS content for the snapshots of a World (action_world.hpp), as a
// snapshot run with LFS leaves it: each object stored once at its layout key,
// and the manifest carrying the set of objects it needs (inline, or a set
// file for large sets), so that restore, verify, prune and gc can be tested
// in-process on what they read.
#pragma once

#include "action_world.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace snapshotter::test {

// Store `data` as an LFS object of `k_repo` in `storage`; the object.
inline snapshot::LfsObject store_lfs_object(storage::Storage& storage, const std::string& data) {
    snapshot::LfsObject object{sha256_hex(data), data.size()};
    auto put = storage.put(snapshot::layout::lfs_object_key(k_repo, object.oid), data, Overwrite::yes);
    EXPECT_TRUE(put) << put.error().message;
    return object;
}

// Give the published `manifest` the LFS set `objects` (with `missing` among
// them) and rewrite it in `storage`, as the snapshot that needs them would
// have written it.
inline void give_lfs(storage::Storage& storage, snapshot::Manifest& manifest,
                     std::vector<snapshot::LfsObject> objects,
                     std::vector<snapshot::LfsMissing> missing = {}) {
    std::sort(objects.begin(), objects.end(), [](const auto& a, const auto& b) { return a.oid < b.oid; });
    auto set = snapshot::make_lfs_set(storage, k_repo, std::move(objects), std::move(missing));
    ASSERT_TRUE(set) << set.error().message;
    manifest.lfs = std::move(*set);
    auto text = snapshot::serialize_manifest(manifest);
    ASSERT_TRUE(text) << text.error().message;
    auto put =
        storage.put(snapshot::layout::manifest_key(k_repo, manifest.snapshot_id), *text, Overwrite::yes);
    ASSERT_TRUE(put) << put.error().message;
}

// `count` distinct small objects stored in `storage`, named by `tag`.
inline std::vector<snapshot::LfsObject> store_lfs_objects(storage::Storage& storage, const std::string& tag,
                                                          std::size_t count) {
    std::vector<snapshot::LfsObject> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(store_lfs_object(storage, fmt::format("{} object {}\n", tag, i)));
    return out;
}

// Whether the LFS object `object` of `k_repo` is in `storage`.
inline bool has_lfs_object(storage::Storage& storage, const snapshot::LfsObject& object) {
    auto info = storage.head(snapshot::layout::lfs_object_key(k_repo, object.oid));
    EXPECT_TRUE(info) << info.error().message;
    return info && info->has_value();
}

} // namespace snapshotter::test
