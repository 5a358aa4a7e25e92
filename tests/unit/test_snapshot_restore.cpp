// run_restore in-process (snapshot/restore.cpp): a snapshot chosen by
// latest or by id prefix is rebuilt exactly, and a restore that fails on the
// way (storage or git) leaves no target behind.
#include "action_world.hpp"
#include "fault_git.hpp"
#include "fault_storage.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

void aim(World& world, const std::string& snapshot, const fs::path& target) {
    world.job().restore.repository = k_repo;
    world.job().restore.snapshot = snapshot;
    world.job().restore.target = target;
}

} // namespace

TEST(Restore, LatestAndAnIdPrefixRebuildExactlyTheirRefs) {
    World world;
    auto chain = world.publish_chain(3);
    ASSERT_EQ(chain.size(), 3U);
    for (const auto& [selector, wanted] : {std::pair{std::string("latest"), chain[2]},
                                           std::pair{chain[0].snapshot_id.substr(0, 11), chain[0]}}) {
        auto target = world.dir() / ("restored-" + wanted.snapshot_id);
        aim(world, selector, target);
        auto out = run_restore(world.context(world.storage(), world.git()));
        ASSERT_FALSE(out.error) << selector << ": " << out.error->message;
        EXPECT_EQ(out.result["snapshot_id"], wanted.snapshot_id);
        auto refs = world.git().local_refs(target);
        ASSERT_TRUE(refs);
        EXPECT_EQ(*refs, wanted.refs) << selector;
    }
}

TEST(Restore, AFailureOnTheWayLeavesNoTarget) {
    World world;
    auto chain = world.publish_chain(2);
    const auto target = world.dir() / "out" / "repo.git";
    aim(world, "latest", target);

    FaultStorage storage(world.storage());
    storage.fail_nth(Op::read, 2); // the second bundle of the chain
    auto cut = run_restore(world.context(storage, world.git()));
    ASSERT_TRUE(cut.error);
    EXPECT_FALSE(fs::exists(target));

    FaultGit git(world.git());
    git.fail_nth("fetch_bundle", 1);
    auto refused = run_restore(world.context(world.storage(), git));
    ASSERT_TRUE(refused.error);
    EXPECT_EQ(refused.error->kind, ErrorKind::Integrity);
    EXPECT_FALSE(fs::exists(target));
    // Nothing half-built is left beside the target either.
    EXPECT_TRUE(fs::is_empty(target.parent_path()));

    auto fine = run_restore(world.context(world.storage(), world.git()));
    ASSERT_FALSE(fine.error) << fine.error->message;
    EXPECT_EQ(*world.git().local_refs(target), chain[1].refs);
}
