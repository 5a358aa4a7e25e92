// run_gc in-process (snapshot/gc.cpp): what an interrupted publish leaves
// (an orphan bundle, a pending upload) goes, what a manifest lists stays, and
// a gc killed at any write is finished by the next.
#include "action_world.hpp"
#include "fault_storage.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// Two snapshots, then a publish killed after its bundle: one orphan bundle.
std::vector<Manifest> with_orphan(World& world) {
    auto chain = world.publish_chain(2);
    world.commit("orphaned");
    FaultStorage killed(world.storage());
    killed.fail_nth(Op::mutation, 2, Fault::crash); // the manifest
    EXPECT_FALSE(world.publish(killed, world.git(), &chain.back()));
    world.job().gc.min_age_s = 0;
    return chain;
}

std::size_t bundle_count(storage::Storage& storage) {
    auto listed = storage.list(layout::bundles_prefix(k_repo));
    EXPECT_TRUE(listed);
    return listed ? listed->size() : 0;
}

} // namespace

TEST(Gc, RemovesTheOrphanAndAPendingUploadAndKeepsEveryListedBundle) {
    World world;
    auto chain = with_orphan(world);
    ASSERT_EQ(bundle_count(world.storage()), 3U);
    auto pending = world.storage().create(layout::bundle_key(k_repo, new_snapshot_id()), Overwrite::no);
    ASSERT_TRUE(pending);
    ASSERT_TRUE((*pending)->write(std::as_bytes(std::span<const char>("half", 4))));

    auto dry = run_gc(world.context(world.storage(), world.git(), true));
    ASSERT_FALSE(dry.error) << dry.error->message;
    EXPECT_EQ(dry.result["removed"]["count"], 2) << dry.result.dump();
    EXPECT_EQ(bundle_count(world.storage()), 3U);

    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["removed"]["count"], 2) << out.result.dump();
    EXPECT_EQ(bundle_count(world.storage()), 2U);
    auto left = world.storage().list_pending("");
    ASSERT_TRUE(left);
    EXPECT_TRUE(left->empty());
    expect_consistent(world.storage(), "after gc");
    for (const auto& m : chain) {
        auto refs = world.restore(world.storage(), m);
        ASSERT_TRUE(refs) << refs.error().message;
        EXPECT_EQ(*refs, m.refs);
    }
}

TEST(Gc, KilledAtEveryWriteThenRerunRemovesTheOrphan) {
    World world;
    auto chain = with_orphan(world);
    const auto base = world.store_dir();
    world.copy_store_to("clean");
    {
        FaultStorage clean(world.storage());
        ASSERT_FALSE(run_gc(world.context(clean, world.git())).error);
        ASSERT_GE(clean.count(Op::mutation), 1U);
        for (std::size_t n = 1; n <= clean.count(Op::mutation); ++n) {
            for (auto fault : {Fault::error, Fault::crash}) {
                const auto where = fmt::format("write {} fault {}", n, static_cast<int>(fault));
                auto inner = world.copy_of(base, fmt::format("gc-{}-{}", n, static_cast<int>(fault)));
                FaultStorage faulty(*inner);
                faulty.fail_nth(Op::mutation, n, fault);
                auto killed = run_gc(world.context(faulty, world.git()));
                EXPECT_TRUE(killed.error) << where;
                expect_consistent(*inner, where);
                EXPECT_EQ(stored_ids(*inner).size(), chain.size()) << where;
                auto rerun = run_gc(world.context(*inner, world.git()));
                ASSERT_FALSE(rerun.error) << where << ": " << rerun.error->message;
                EXPECT_EQ(bundle_count(*inner), 2U) << where;
            }
        }
    }
    auto refs = world.restore(world.storage(), chain.back());
    ASSERT_TRUE(refs) << refs.error().message;
}
