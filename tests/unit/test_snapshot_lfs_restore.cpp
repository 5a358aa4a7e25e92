// restore's share of Git LFS in-process (snapshot/lfs_restore.cpp): every
// object of a snapshot's set lands where git-lfs looks for it in the restored
// bare repository, checked while it is copied; objects storage lacks or holds
// corrupted are reported in the result, never written.
#include "fault_storage.hpp"
#include "lfs_world.hpp"
#include "snapshotter/snapshot/lfs_restore.hpp"
#include "snapshotter/util/fs.hpp"

#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

std::string file_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST(LfsRestore, ObjectPathIsGitLfsLayout) {
    const std::string oid(64, 'a');
    EXPECT_EQ(lfs_object_path("/r.git", "ab" + oid.substr(2)),
              fs::path("/r.git/lfs/objects/ab/aa/ab" + oid.substr(2)));
}

TEST(LfsRestore, WritesEveryObjectOfAnInlineAndOfALargeSet) {
    World world;
    auto chain = world.publish_chain(2);
    // An inline set, and one large enough for a set file.
    auto small = store_lfs_objects(world.storage(), "small", 3);
    auto large = store_lfs_objects(world.storage(), "large", k_lfs_inline_max + 6);
    give_lfs(world.storage(), chain[0], small);
    give_lfs(world.storage(), chain[1], large);
    ASSERT_TRUE(chain[1].lfs->set_key);
    for (const auto& [manifest, objects] : {std::pair{&chain[0], &small}, std::pair{&chain[1], &large}}) {
        auto dir = TempDir::create("lfs-restore");
        ASSERT_TRUE(dir);
        auto report = restore_lfs_objects(world.storage(), *manifest, dir->path());
        ASSERT_TRUE(report) << report.error().message;
        EXPECT_TRUE(report->complete());
        EXPECT_EQ(report->objects, objects->size());
        for (const auto& object : *objects) {
            auto path = lfs_object_path(dir->path(), object.oid);
            ASSERT_TRUE(fs::exists(path)) << path;
            EXPECT_EQ(sha256_hex(file_text(path)), object.oid);
        }
    }
}

TEST(LfsRestore, MissingAndCorruptObjectsAreReportedAndNotWritten) {
    World world;
    auto chain = world.publish_chain(1);
    auto objects = store_lfs_objects(world.storage(), "obj", 4);
    const auto purged = LfsObject{sha256_hex("never stored"), 12};
    objects.push_back(purged);
    give_lfs(world.storage(), chain[0], objects, {{purged.oid, purged.size, "not_found"}});
    // One object deleted from storage, one changed in place (same size).
    std::vector<std::string> gone{layout::lfs_object_key(k_repo, objects[0].oid)};
    ASSERT_TRUE(world.storage().remove(gone));
    auto changed = fmt::format("obj object {}\n", 9);
    ASSERT_EQ(changed.size(), objects[1].size);
    ASSERT_TRUE(world.storage().put(layout::lfs_object_key(k_repo, objects[1].oid), changed, Overwrite::yes));

    auto dir = TempDir::create("lfs-restore");
    ASSERT_TRUE(dir);
    auto report = restore_lfs_objects(world.storage(), chain[0], dir->path());
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_FALSE(report->complete());
    EXPECT_EQ(report->objects, 2U);
    std::vector<std::string> missing{objects[0].oid, purged.oid};
    std::sort(missing.begin(), missing.end());
    auto reported = report->missing;
    std::sort(reported.begin(), reported.end());
    EXPECT_EQ(reported, missing);
    EXPECT_EQ(report->corrupt, std::vector<std::string>{objects[1].oid});
    EXPECT_FALSE(fs::exists(lfs_object_path(dir->path(), objects[1].oid)));
    EXPECT_FALSE(fs::exists(lfs_object_path(dir->path(), objects[0].oid)));
    EXPECT_TRUE(fs::exists(lfs_object_path(dir->path(), objects[2].oid)));
}

TEST(LfsRestore, TheRestoreActionReportsItsObjectsAndTheOnesItCouldNotWrite) {
    World world;
    auto chain = world.publish_chain(1);
    auto objects = store_lfs_objects(world.storage(), "obj", 2);
    give_lfs(world.storage(), chain[0], objects);
    world.job().restore.repository = k_repo;
    world.job().restore.snapshot = "latest";
    world.job().restore.target = world.dir() / "restored.git";
    auto out = run_restore(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["lfs"]["objects"], 2) << out.result.dump();
    EXPECT_EQ(file_text(lfs_object_path(world.dir() / "restored.git", objects[0].oid)), "obj object 0\n");

    std::vector<std::string> gone{layout::lfs_object_key(k_repo, objects[1].oid)};
    ASSERT_TRUE(world.storage().remove(gone));
    world.job().restore.target = world.dir() / "again.git";
    auto partial = run_restore(world.context(world.storage(), world.git()));
    ASSERT_FALSE(partial.error) << partial.error->message;
    EXPECT_EQ(partial.result["lfs"]["missing"], nlohmann::json::array({objects[1].oid}));
}

TEST(LfsRestore, WithoutAnLfsFieldNothingIsReadAndTheResultIsUnchanged) {
    World world;
    auto chain = world.publish_chain(1);
    FaultStorage counting(world.storage());
    auto dir = TempDir::create("lfs-restore");
    ASSERT_TRUE(dir);
    nlohmann::json extra;
    ASSERT_TRUE(write_lfs_objects(counting, chain[0], dir->path(), extra));
    EXPECT_TRUE(extra.is_null());
    EXPECT_EQ(counting.count(Op::list) + counting.count(Op::get) + counting.count(Op::read), 0U);
    EXPECT_FALSE(fs::exists(dir->path() / "lfs"));
}
