// run_prune in-process (snapshot/prune.cpp): retention with and without a
// rebase, and a crash at every write: the kept snapshots stay restorable,
// latest never names a missing manifest, and a rerun finishes the work.
#include "action_world.hpp"
#include "fault_storage.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// Every bundle key stored for `k_repo`.
std::set<std::string> stored_bundles(storage::Storage& storage) {
    std::set<std::string> out;
    auto listed = storage.list(layout::bundles_prefix(k_repo));
    EXPECT_TRUE(listed);
    if (listed)
        for (const auto& o : *listed)
            out.insert(o.key);
    return out;
}

// Whether expect_pruned() also restores each kept snapshot (real git, slower).
enum class Restore { no, yes };

// The state a finished prune leaves: exactly `kept` manifests, each
// restorable to its refs, and no bundle that none of them lists.
void expect_pruned(World& world, storage::Storage& storage, const std::vector<Manifest>& kept,
                   const std::string& where, Restore restore = Restore::yes) {
    std::vector<std::string> ids;
    for (const auto& m : kept)
        ids.push_back(m.snapshot_id);
    EXPECT_EQ(stored_ids(storage), ids) << where;
    std::set<std::string> listed;
    for (const auto& id : ids) {
        auto m = read_manifest(storage, k_repo, id);
        ASSERT_TRUE(m) << where;
        for (const auto& b : m->bundles)
            listed.insert(b.key);
    }
    EXPECT_EQ(stored_bundles(storage), listed) << where;
    EXPECT_FALSE(storage.get(layout::prune_pending_key(k_repo))) << where;
    expect_consistent(storage, where);
    if (restore == Restore::no)
        return;
    for (const auto& m : kept) {
        auto refs = world.restore(storage, m);
        ASSERT_TRUE(refs) << where << ": " << refs.error().message;
        EXPECT_EQ(*refs, m.refs) << where;
    }
}

} // namespace

TEST(Prune, KeepsTheNewestAndTheirChain) {
    World world;
    auto chain = world.publish_chain(4);
    ASSERT_EQ(chain.size(), 4U);
    world.job().prune.policy.keep_last = 2;
    world.job().prune.rebase = false;
    auto out = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["summary"]["dropped"], 2);
    // Without a rebase the dropped snapshots' bundles stay for the kept chain.
    EXPECT_EQ(stored_bundles(world.storage()).size(), 4U);
    expect_pruned(world, world.storage(), {chain[2], chain[3]}, "keep_last 2");
}

TEST(Prune, DryRunChangesNothing) {
    World world;
    auto chain = world.publish_chain(3);
    world.job().prune.policy.keep_last = 1;
    auto before = world.storage().list("");
    auto out = run_prune(world.context(world.storage(), world.git(), true));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["dry_run"], true);
    EXPECT_EQ(out.result["repositories"][0]["drop"].size(), 2U);
    auto after = world.storage().list("");
    ASSERT_TRUE(before && after);
    EXPECT_EQ(before->size(), after->size());
}

// The rebase run, killed at each write in turn, then run again.
TEST(Prune, RebaseSurvivesACrashAtEveryWrite) {
    World world;
    auto chain = world.publish_chain(4);
    ASSERT_EQ(chain.size(), 4U);
    world.job().prune.policy.keep_last = 2;
    world.job().prune.rebase = true;
    const auto base = world.store_dir();

    // A clean run counts the writes and shows the state to reach.
    world.copy_store_to("clean");
    FaultStorage counting(world.storage());
    auto clean = run_prune(world.context(counting, world.git()));
    ASSERT_FALSE(clean.error) << clean.error->message;
    ASSERT_EQ(clean.result["repositories"][0]["rebased"].size(), 1U);
    const auto writes = counting.count(Op::mutation);
    EXPECT_GE(writes, 6U); // pending, bundle, 2 manifests, deletes, latest?, pending
    auto rebased = [&](storage::Storage& storage) {
        std::vector<Manifest> kept;
        for (const auto& id : stored_ids(storage))
            if (auto m = read_manifest(storage, k_repo, id))
                kept.push_back(*m);
        return kept;
    };
    auto kept = rebased(world.storage());
    ASSERT_EQ(kept.size(), 2U);
    EXPECT_EQ(kept[0].bundles.size(), 1U); // the new full bundle replaces three
    expect_pruned(world, world.storage(), kept, "clean run");

    for (std::size_t n = 1; n <= writes; ++n) {
        const auto where = fmt::format("crash at write {} of {}", n, writes);
        auto inner = world.copy_of(base, fmt::format("crash-{}", n));
        FaultStorage faulty(*inner);
        faulty.fail_nth(Op::mutation, n, Fault::crash);
        auto killed = run_prune(world.context(faulty, world.git()));
        EXPECT_TRUE(killed.error || killed.result["summary"]["failed"] != 0) << where;

        // What was safe is still safe: the two newest snapshots restore exactly.
        expect_consistent(*inner, where);
        for (const auto& m : {chain[2], chain[3]}) {
            auto now = read_manifest(*inner, k_repo, m.snapshot_id);
            ASSERT_TRUE(now) << where << ": " << now.error().message;
            auto refs = world.restore(*inner, *now);
            ASSERT_TRUE(refs) << where << ": " << refs.error().message;
            EXPECT_EQ(*refs, m.refs) << where;
        }

        // The rerun finishes: the same kept snapshots, nothing left over.
        auto rerun = run_prune(world.context(*inner, world.git()));
        ASSERT_FALSE(rerun.error) << where << ": " << rerun.error->message;
        EXPECT_EQ(rerun.result["summary"]["failed"], 0) << where;
        expect_pruned(world, *inner, rebased(*inner), where + ", after the rerun",
                      n == writes ? Restore::yes : Restore::no);
        EXPECT_EQ(stored_ids(*inner), stored_ids(world.storage())) << where;
    }
}

TEST(Prune, AFailedDeleteIsRetriedByTheNextRun) {
    World world;
    auto chain = world.publish_chain(3);
    world.job().prune.policy.keep_last = 1;
    world.job().prune.rebase = true;
    FaultStorage faulty(world.storage());
    faulty.fail_nth(Op::remove, 2); // the bundles, after the manifests
    auto first = run_prune(world.context(faulty, world.git()));
    EXPECT_EQ(first.result["repositories"][0]["status"], "failed");
    EXPECT_FALSE(first.result["repositories"][0]["failed"].empty());
    expect_consistent(world.storage(), "after the failed delete");
    auto pending = world.storage().get(layout::prune_pending_key(k_repo));
    ASSERT_TRUE(pending) << "the undeleted bundles stay recorded";

    auto second = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(second.error) << second.error->message;
    auto kept = read_manifest(world.storage(), k_repo, chain[2].snapshot_id);
    ASSERT_TRUE(kept);
    expect_pruned(world, world.storage(), {*kept}, "after the second run");
}
