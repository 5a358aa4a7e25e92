// run_gc in-process (snapshot/gc.cpp): what an interrupted publish leaves
// (an orphan bundle, a pending upload) goes, what a manifest lists stays, and
// a gc killed at any write is finished by the next.
#include "action_world.hpp"
#include "fault_storage.hpp"
#include "nightly_store.hpp"

#include <gtest/gtest.h>
#include <iostream>

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

// Every bundle and LFS key of `repo`.
std::set<std::string> deletable(storage::Storage& storage, const std::string& repo) {
    auto keys = keys_under(storage, layout::bundles_prefix(repo));
    keys.merge(keys_under(storage, layout::lfs_prefix(repo)));
    return keys;
}

// Whether one of `problems` (gc's result) names `key`.
bool names(const nlohmann::json& problems, const std::string& key) {
    for (const auto& p : problems)
        if (p.get<std::string>().find(key) != std::string::npos)
            return true;
    return false;
}

// GETs (get and read) `counting` saw.
std::size_t gets(const FaultStorage& counting) {
    return counting.count(Op::get) + counting.count(Op::read);
}

} // namespace

TEST(GcReads, EachManifestOnceAndOnceMoreBeforeDeleting) {
    World world;
    const std::vector<std::string> repos{"reads/app-0", "reads/app-1", "reads/app-2"};
    std::vector<std::string> manifests;
    for (const auto& repo : repos)
        for (auto& key : publish_nights(world.storage(), repo, 50))
            manifests.push_back(std::move(key));
    world.job().gc.min_age_s = 0;

    // Nothing to delete: one pass, each manifest read once.
    FaultStorage counting(world.storage());
    auto clean = run_gc(world.context(counting, world.git()));
    ASSERT_FALSE(clean.error) << clean.error->message;
    EXPECT_EQ(clean.result["removed"]["count"], 0) << clean.result.dump();
    const auto clean_gets = gets(counting);
    for (const auto& key : manifests)
        EXPECT_EQ(counting.count(Op::get, key), 1U) << key;

    // An orphan in each repository: the scan, then the re-check right before deleting.
    for (const auto& repo : repos)
        put_orphans(world.storage(), repo);
    counting.reset();
    auto collected = run_gc(world.context(counting, world.git()));
    ASSERT_FALSE(collected.error) << collected.error->message;
    EXPECT_EQ(collected.result["removed"]["count"], 2 * repos.size()) << collected.result.dump();
    const auto collected_gets = gets(counting);
    for (const auto& key : manifests)
        EXPECT_EQ(counting.count(Op::get, key), 2U) << key;
    std::cout << fmt::format("gc of {} snapshots of {} repositories: {} GETs with nothing to delete, {} "
                             "with an orphan bundle and LFS object in each\n",
                             manifests.size(), repos.size(), clean_gets, collected_gets);
}

TEST(GcRule, ACorruptManifestKeepsItsRepositoryWholeAndOthersAreCollected) {
    World world;
    auto broken = publish_nights(world.storage(), "rule/broken", 3);
    publish_nights(world.storage(), "rule/fine", 3);
    const auto fine_before = deletable(world.storage(), "rule/fine");
    put_orphans(world.storage(), "rule/broken");
    put_orphans(world.storage(), "rule/fine");
    ASSERT_TRUE(world.storage().put(broken[1], "{\"schema_version\": 3,", Overwrite::yes));
    const auto broken_before = deletable(world.storage(), "rule/broken");
    world.job().gc.min_age_s = 0;
    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_TRUE(out.error) << out.result.dump();
    EXPECT_TRUE(names(out.result["problems"], broken[1])) << out.result.dump();
    EXPECT_EQ(deletable(world.storage(), "rule/broken"), broken_before)
        << "nothing deleted on a partial view";
    EXPECT_EQ(deletable(world.storage(), "rule/fine"), fine_before) << "the other repository's orphans went";
    EXPECT_EQ(out.result["removed"]["count"], 2) << out.result.dump();
}

TEST(GcRule, AManifestDeletedWhileGcReadsItIsSkipped) {
    World world;
    auto keys = publish_nights(world.storage(), "rule/race", 3);
    put_orphans(world.storage(), "rule/race");
    world.job().gc.min_age_s = 0;
    FaultStorage racing(world.storage());
    racing.before(Op::get, keys[2], [&](storage::Storage& inner) {
        std::vector<std::string> one{keys[2]};
        ASSERT_TRUE(inner.remove(one)); // a prune deletes it after gc listed it
    });
    auto out = run_gc(world.context(racing, world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    // The orphans, and the bundle and table only the deleted manifest named.
    EXPECT_EQ(out.result["removed"]["count"], 4) << out.result.dump();
    for (std::size_t i = 0; i < 2; ++i) {
        auto m = read_manifest(world.storage(), "rule/race", *layout::snapshot_id_of_manifest_key(keys[i]));
        ASSERT_TRUE(m) << m.error().message;
        for (const auto& bundle : m->bundles)
            EXPECT_TRUE(world.storage().head(bundle.key).value()) << bundle.key;
        EXPECT_TRUE(lfs_objects_of(world.storage(), *m)) << "its set is whole";
    }
}

TEST(GcRule, AMissingLfsSetKeepsEveryOrphanOfItsRepository) {
    World world;
    auto keys = publish_nights(world.storage(), "rule/set", 12);
    put_orphans(world.storage(), "rule/set");
    auto newest =
        read_manifest(world.storage(), "rule/set", *layout::snapshot_id_of_manifest_key(keys.back()));
    ASSERT_TRUE(newest && newest->lfs && newest->lfs->set_key);
    const auto set = *newest->lfs->set_key;
    std::vector<std::string> one{set};
    ASSERT_TRUE(world.storage().remove(one));
    const auto before = deletable(world.storage(), "rule/set");
    world.job().gc.min_age_s = 0;
    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_TRUE(out.error) << out.result.dump();
    EXPECT_TRUE(names(out.result["problems"], set)) << out.result.dump();
    EXPECT_EQ(out.result["removed"]["count"], 0) << out.result.dump();
    EXPECT_EQ(deletable(world.storage(), "rule/set"), before) << "the orphan bundle stays too";
}

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
