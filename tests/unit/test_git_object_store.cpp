// git::measure_object_store() and needs_repack() on a real bare repository:
// loose objects, packs and bytes as git leaves them, and
// GitApi::repack_geometric() packing every loose object, reachable or not.
#include "git_sandbox.hpp"
#include "snapshotter/git/object_store.hpp"

#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

namespace {

// Write `count` blobs into `repo` as loose objects; returns their ids.
std::vector<std::string> write_blobs(Sandbox& box, const fs::path& repo, int count, const std::string& tag) {
    std::vector<std::string> oids;
    for (int i = 0; i < count; ++i) {
        auto file = box.dir() / ("blob-" + tag + std::to_string(i));
        std::ofstream(file) << tag << i << "\n";
        oids.push_back(box.git(repo, {"hash-object", "-w", "--", file.string()}));
    }
    return oids;
}

TEST(GitObjectStore, AbsentRepositoryIsEmpty) {
    Sandbox box;
    auto store = measure_object_store(box.dir() / "absent");
    EXPECT_EQ(store.bytes, 0U);
    EXPECT_EQ(store.loose_objects, 0U);
    EXPECT_EQ(store.packs, 0U);
    EXPECT_FALSE(needs_repack(store));
}

TEST(GitObjectStore, CountsLooseObjectsAndPacksAndRepackPacksThemAll) {
    Sandbox box;
    auto repo = box.dir() / "repo.git";
    box.git(box.dir(), {"init", "--quiet", "--bare", repo.string()});
    auto empty = measure_object_store(repo);
    EXPECT_EQ(empty.loose_objects, 0U);
    EXPECT_EQ(empty.packs, 0U);

    auto first = write_blobs(box, repo, 3, "a");
    for (std::size_t i = 0; i < first.size(); ++i) // reachable, so that repack -a packs them
        box.git(repo, {"tag", "t" + std::to_string(i), first[i]});
    box.git(repo, {"repack", "-q", "-a", "-d"}); // one pack of three objects
    auto second = write_blobs(box, repo, 5, "b");
    auto store = measure_object_store(repo);
    EXPECT_EQ(store.loose_objects, 5U);
    EXPECT_EQ(store.packs, 1U);
    EXPECT_GT(store.bytes, empty.bytes);
    EXPECT_FALSE(needs_repack(store));

    auto git = make_git();
    ASSERT_TRUE(git.repack_geometric(repo, std::chrono::seconds{60}));
    auto packed = measure_object_store(repo);
    EXPECT_EQ(packed.loose_objects, 0U);
    EXPECT_GE(packed.packs, 1U);
    // Unreachable as they are, no object was dropped.
    for (const auto& oid : first)
        EXPECT_EQ(box.git(repo, {"cat-file", "-t", oid}), "blob");
    for (const auto& oid : second)
        EXPECT_EQ(box.git(repo, {"cat-file", "-t", oid}), "blob");
}

TEST(GitObjectStore, NeedsRepackPastEitherBound) {
    EXPECT_FALSE(
        needs_repack({.bytes = 1, .loose_objects = k_loose_objects_to_pack, .packs = k_packs_to_repack}));
    EXPECT_TRUE(needs_repack({.bytes = 1, .loose_objects = k_loose_objects_to_pack + 1, .packs = 1}));
    EXPECT_TRUE(needs_repack({.bytes = 1, .loose_objects = 0, .packs = k_packs_to_repack + 1}));
}

} // namespace
