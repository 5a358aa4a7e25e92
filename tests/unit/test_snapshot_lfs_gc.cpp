// Deleting Git LFS objects in-process (snapshot/lfs_gc.cpp, through run_prune
// and run_gc): an object or set goes only when no manifest present needs it;
// shared objects stay; a prune killed at any write loses nothing a kept
// snapshot needs, and the orphans it leaves are gc's; gc takes only orphans
// idle for min_age_s.
#include "fault_storage.hpp"
#include "lfs_world.hpp"
#include "snapshotter/snapshot/referenced.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// Every key stored in `k_repo`'s LFS area.
std::set<std::string> lfs_keys(storage::Storage& storage) {
    std::set<std::string> out;
    auto listed = storage.list(layout::lfs_prefix(k_repo));
    EXPECT_TRUE(listed);
    if (listed)
        for (const auto& o : *listed)
            out.insert(o.key);
    return out;
}

// Every LFS key the manifests present in `storage` need.
std::set<std::string> needed_keys(storage::Storage& storage) {
    auto referenced = read_referenced(storage, k_repo, LfsSets::read);
    EXPECT_TRUE(referenced) << referenced.error().message;
    return referenced ? referenced->lfs : std::set<std::string>{};
}

// Three snapshots sharing objects: s0 {a, b, c...(a large set: a set file)},
// s1 {a, d}, s2 {a, d, e}. Returns the chain; `only_s0` gets the objects
// that only s0 needs.
std::vector<Manifest> shared_world(World& world, std::vector<LfsObject>& only_s0) {
    auto chain = world.publish_chain(3);
    auto a = store_lfs_object(world.storage(), "a shared by all");
    auto d = store_lfs_object(world.storage(), "d from s1 on");
    auto e = store_lfs_object(world.storage(), "e only in s2");
    only_s0 = store_lfs_objects(world.storage(), "s0", k_lfs_inline_max + 2);
    auto s0 = only_s0;
    s0.push_back(a);
    give_lfs(world.storage(), chain[0], s0);
    give_lfs(world.storage(), chain[1], {a, d});
    give_lfs(world.storage(), chain[2], {a, d, e});
    EXPECT_TRUE(chain[0].lfs->set_key);
    return chain;
}

} // namespace

TEST(LfsGc, PruneDeletesWhatOnlyDroppedSnapshotsNeededAndKeepsSharedObjects) {
    World world;
    std::vector<LfsObject> only_s0;
    auto chain = shared_world(world, only_s0);
    world.job().prune.policy.keep_last = 2;
    world.job().prune.rebase = false;
    auto out = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    const auto& entry = out.result["repositories"][0];
    // s0's own objects and its set file went; a, d and e stay.
    EXPECT_EQ(entry["lfs"]["objects"], only_s0.size() + 1) << entry.dump();
    EXPECT_EQ(lfs_keys(world.storage()), needed_keys(world.storage()));
    EXPECT_EQ(lfs_keys(world.storage()).size(), 3U);
    for (const auto& object : only_s0)
        EXPECT_FALSE(has_lfs_object(world.storage(), object));
    std::uint64_t freed = 0;
    for (const auto& object : only_s0)
        freed += object.size;
    EXPECT_GE(entry["deleted"]["bytes"].get<std::uint64_t>(), freed);
}

TEST(LfsGc, PruneReadsEachKeptManifestOnceToPlanAndOnceBeforeDeleting) {
    World world;
    std::vector<LfsObject> only_s0;
    auto chain = shared_world(world, only_s0);
    world.job().prune.policy.keep_last = 2;
    world.job().prune.rebase = false;
    FaultStorage counting(world.storage());
    auto out = run_prune(world.context(counting, world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    for (std::size_t i = 1; i < chain.size(); ++i) {
        const auto key = layout::manifest_key(k_repo, chain[i].snapshot_id);
        EXPECT_EQ(counting.count(Op::get, key), 2U) << key;
    }
    EXPECT_EQ(counting.count(Op::get, *chain[0].lfs->set_key), 1U) << "the dropped snapshot's set";
}

TEST(LfsGc, PruneWithoutLfsReportsNoLfsField) {
    World world;
    world.publish_chain(3);
    world.job().prune.policy.keep_last = 1;
    auto out = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_FALSE(out.result["repositories"][0].contains("lfs")) << out.result.dump();
}

TEST(LfsGc, PruneKilledAtEveryWriteKeepsWhatKeptSnapshotsNeedAndGcFinishes) {
    World world;
    std::vector<LfsObject> only_s0;
    auto chain = shared_world(world, only_s0);
    world.job().prune.policy.keep_last = 2;
    world.job().prune.rebase = false;
    world.job().gc.min_age_s = 0;
    const auto base = world.store_dir();
    std::size_t writes = 0;
    {
        auto copy = world.copy_of(base, "counting");
        FaultStorage counting(*copy);
        ASSERT_FALSE(run_prune(world.context(counting, world.git())).error);
        writes = counting.count(Op::mutation);
    }
    ASSERT_GE(writes, 3U);
    for (std::size_t n = 1; n <= writes; ++n) {
        const auto where = fmt::format("crash at write {}", n);
        auto inner = world.copy_of(base, fmt::format("crash-{}", n));
        FaultStorage faulty(*inner);
        faulty.fail_nth(Op::mutation, n, Fault::crash);
        EXPECT_TRUE(run_prune(world.context(faulty, world.git())).error) << where;
        // Nothing a manifest present needs is gone.
        for (const auto& key : needed_keys(*inner)) {
            auto info = inner->head(key);
            ASSERT_TRUE(info) << where;
            EXPECT_TRUE(info->has_value()) << where << ": " << key << " is needed and gone";
        }
        expect_consistent(*inner, where);
        // A rerun, then gc: only what the kept snapshots need is left.
        auto rerun = run_prune(world.context(*inner, world.git()));
        ASSERT_FALSE(rerun.error) << where << ": " << rerun.error->message;
        auto gc = run_gc(world.context(*inner, world.git()));
        ASSERT_FALSE(gc.error) << where << ": " << gc.error->message;
        EXPECT_EQ(lfs_keys(*inner), needed_keys(*inner)) << where;
        EXPECT_EQ(lfs_keys(*inner).size(), 3U) << where;
    }
}

TEST(LfsGc, GcTakesOldOrphansOnlyAndNeverWhatAManifestNeeds) {
    World world;
    auto chain = world.publish_chain(1);
    auto kept = store_lfs_objects(world.storage(), "kept", 2);
    give_lfs(world.storage(), chain[0], kept);
    auto orphan = store_lfs_object(world.storage(), "uploaded by a run that died before its manifest");
    const auto orphan_key = layout::lfs_object_key(k_repo, orphan.oid);

    // Young: a running snapshot's upload whose manifest is still to come stays.
    world.job().gc.min_age_s = 3600;
    auto young = run_gc(world.context(world.storage(), world.git()));
    ASSERT_FALSE(young.error) << young.error->message;
    EXPECT_EQ(young.result["removed"]["count"], 0) << young.result.dump();
    EXPECT_EQ(young.result["kept_young"]["items"][0]["kind"], "orphan_lfs");
    EXPECT_TRUE(has_lfs_object(world.storage(), orphan));

    world.job().gc.min_age_s = 0;
    auto dry = run_gc(world.context(world.storage(), world.git(), true));
    ASSERT_FALSE(dry.error);
    EXPECT_EQ(dry.result["removed"]["items"][0]["key"], orphan_key) << dry.result.dump();
    EXPECT_TRUE(has_lfs_object(world.storage(), orphan));

    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["removed"]["count"], 1) << out.result.dump();
    EXPECT_EQ(out.result["removed"]["items"][0]["kind"], "orphan_lfs");
    EXPECT_FALSE(has_lfs_object(world.storage(), orphan));
    for (const auto& object : kept)
        EXPECT_TRUE(has_lfs_object(world.storage(), object));
}

TEST(LfsGc, AnUnreadableSetStopsGcFromDeletingThatRepositorysObjects) {
    World world;
    auto chain = world.publish_chain(1);
    auto objects = store_lfs_objects(world.storage(), "many", k_lfs_inline_max + 1);
    give_lfs(world.storage(), chain[0], objects);
    auto orphan = store_lfs_object(world.storage(), "orphan");
    ASSERT_TRUE(world.storage().put(*chain[0].lfs->set_key, "{\"objects\":[]}\n", Overwrite::yes));
    world.job().gc.min_age_s = 0;
    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_TRUE(out.error);
    EXPECT_TRUE(has_lfs_object(world.storage(), orphan)) << "nothing is deleted on a partial view";
    for (const auto& object : objects)
        EXPECT_TRUE(has_lfs_object(world.storage(), object));
}
