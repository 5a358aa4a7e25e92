// verify's share of Git LFS in-process (snapshot/lfs_verify.cpp): every object
// of a snapshot's set must be stored with its size; with a drill, with its
// SHA-256 too. Objects the snapshot recorded as missing upstream are counted,
// not failed; absent or corrupt ones fail the snapshots that need them.
#include "fault_storage.hpp"
#include "lfs_world.hpp"
#include "snapshotter/snapshot/lfs_verify.hpp"

#include <fmt/ranges.h>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// Replace the stored bytes of `object` by others of the same size.
void corrupt(storage::Storage& storage, const LfsObject& object) {
    std::string other(object.size, 'x');
    ASSERT_TRUE(storage.put(layout::lfs_object_key(k_repo, object.oid), other, Overwrite::yes));
}

} // namespace

TEST(LfsVerify, SizesWithoutADrillAndHashesWithOne) {
    World world;
    auto chain = world.publish_chain(2);
    auto objects = store_lfs_objects(world.storage(), "obj", 3);
    give_lfs(world.storage(), chain[0], {objects[0], objects[1]});
    give_lfs(world.storage(), chain[1], objects);
    corrupt(world.storage(), objects[1]);

    FaultStorage counting(world.storage());
    LfsVerifier sizes(counting, LfsHash::no);
    auto first = sizes.check(chain[0]);
    auto second = sizes.check(chain[1]);
    EXPECT_TRUE(first.problems.empty() && second.problems.empty()) << fmt::format("{}", first.problems);
    EXPECT_EQ(second.objects, 3U);
    EXPECT_EQ(second.bytes, objects[0].size + objects[1].size + objects[2].size);
    EXPECT_EQ(counting.count(Op::list), 1U) << "one listing per repository";
    EXPECT_EQ(counting.count(Op::read), 0U);

    counting.reset();
    LfsVerifier hashes(counting, LfsHash::yes);
    first = hashes.check(chain[0]);
    second = hashes.check(chain[1]);
    EXPECT_EQ(first.corrupt, std::vector<std::string>{objects[1].oid});
    EXPECT_EQ(second.corrupt, std::vector<std::string>{objects[1].oid});
    EXPECT_EQ(counting.count(Op::read), 3U) << "each object read once per run";
    ASSERT_EQ(second.problems.size(), 1U);
    EXPECT_NE(second.problems[0].find(objects[1].oid), std::string::npos);
}

TEST(LfsVerify, AMissingObjectFailsAndARecordedOneDoesNot) {
    World world;
    auto chain = world.publish_chain(1);
    auto objects = store_lfs_objects(world.storage(), "obj", 2);
    const auto purged = LfsObject{sha256_hex("purged upstream"), 15};
    objects.push_back(purged);
    give_lfs(world.storage(), chain[0], objects, {{purged.oid, purged.size, "not_found"}});
    LfsVerifier verifier(world.storage(), LfsHash::yes);
    auto ok = verifier.check(chain[0]);
    EXPECT_TRUE(ok.problems.empty()) << fmt::format("{}", ok.problems);
    EXPECT_EQ(ok.missing_upstream, 1U);

    std::vector<std::string> gone{layout::lfs_object_key(k_repo, objects[0].oid)};
    ASSERT_TRUE(world.storage().remove(gone));
    LfsVerifier again(world.storage(), LfsHash::no);
    auto bad = again.check(chain[0]);
    EXPECT_EQ(bad.missing, std::vector<std::string>{objects[0].oid});
    ASSERT_EQ(bad.problems.size(), 1U);
}

TEST(LfsVerify, TheVerifyActionCountsAndNamesThem) {
    World world;
    auto chain = world.publish_chain(1);
    auto objects = store_lfs_objects(world.storage(), "obj", 2);
    give_lfs(world.storage(), chain[0], objects);
    world.job().verify.snapshot = "latest";
    world.job().verify.drill = true;
    auto out = run_verify(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["snapshots"][0]["lfs"]["objects"], 2) << out.result.dump();
    EXPECT_EQ(out.result["snapshots"][0]["lfs"]["hashed"], true);
    EXPECT_EQ(out.result["summary"]["lfs"]["objects"], 2);

    corrupt(world.storage(), objects[0]);
    auto failed = run_verify(world.context(world.storage(), world.git()));
    ASSERT_TRUE(failed.error);
    EXPECT_EQ(failed.error->kind, ErrorKind::Integrity);
    EXPECT_EQ(failed.result["snapshots"][0]["lfs"]["corrupt"], nlohmann::json::array({objects[0].oid}));

    world.job().verify.drill = false;
    auto sizes_only = run_verify(world.context(world.storage(), world.git()));
    EXPECT_FALSE(sizes_only.error) << "the same size passes without a drill";
}

TEST(LfsVerify, WithoutLfsTheResultHasNoLfsFields) {
    World world;
    world.publish_chain(1);
    world.job().verify.snapshot = "latest";
    auto out = run_verify(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_FALSE(out.result["snapshots"][0].contains("lfs"));
    EXPECT_FALSE(out.result["summary"].contains("lfs"));
}
