// Chain safety of the prune plan: nothing a kept manifest lists is deleted,
// bundles of dropped snapshots that kept ones replay are "kept for chain",
// and rebases replace exactly the prefix of the oldest kept point.
#include "snapshotter/snapshot/prune_plan.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <random>
#include <set>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

BundleInfo bundle(const std::string& owner, std::uint64_t size = 100) {
    return {owner, "bundles/" + owner + ".bundle", size, std::string(64, 'a'), {}};
}

std::vector<std::string> keys(const std::vector<BundleInfo>& bundles) {
    std::vector<std::string> out;
    for (const auto& b : bundles)
        out.push_back(b.key);
    return out;
}

KeptSet keep(std::initializer_list<const char*> ids) {
    KeptSet k;
    for (const auto* id : ids)
        k[id] = {"test"};
    return k;
}

// s0 full, s1 unchanged, s2 incremental, s3 unchanged, s4 full, s5 incremental.
std::vector<StoredSnapshot> two_chains() {
    auto b0 = bundle("s0", 1000), b2 = bundle("s2", 50), b4 = bundle("s4", 2000), b5 = bundle("s5", 70);
    return {{"s0", {b0}, 10},     {"s1", {b0}, 10}, {"s2", {b0, b2}, 10},
            {"s3", {b0, b2}, 10}, {"s4", {b4}, 10}, {"s5", {b4, b5}, 10}};
}

// A generated history: a full bundle every `full_every` bundles, a new bundle
// on about a third of the snapshots, the rest unchanged.
std::vector<StoredSnapshot> generated(int count, int full_every, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<StoredSnapshot> out;
    std::vector<BundleInfo> chain;
    for (int i = 0; i < count; ++i) {
        auto id = fmt::format("s{:04}", i);
        bool writes = chain.empty() || rng() % 3 == 0;
        if (writes) {
            if (static_cast<int>(chain.size()) >= full_every)
                chain.clear();
            chain.push_back(bundle(id, 100 + rng() % 1000));
        }
        out.push_back({id, chain, 10});
    }
    return out;
}

} // namespace

TEST(PrunePlan, KeepsBundlesOfDroppedSnapshotsThatKeptOnesReplay) {
    auto plan = plan_prune(two_chains(), keep({"s3", "s5"}), Rebase::no);
    EXPECT_EQ(plan.drop, (std::vector<std::string>{"s0", "s1", "s2", "s4"}));
    EXPECT_EQ(keys(plan.kept_for_chain),
              (std::vector<std::string>{"bundles/s0.bundle", "bundles/s2.bundle", "bundles/s4.bundle"}));
    EXPECT_TRUE(plan.delete_bundles.empty());
    EXPECT_EQ(plan.bytes_freed, 40u); // four manifests, no bundle
}

TEST(PrunePlan, DeletesChainsNoKeptSnapshotReplays) {
    auto plan = plan_prune(two_chains(), keep({"s5"}), Rebase::no);
    EXPECT_EQ(keys(plan.delete_bundles),
              (std::vector<std::string>{"bundles/s0.bundle", "bundles/s2.bundle"}));
    EXPECT_EQ(keys(plan.kept_for_chain), (std::vector<std::string>{"bundles/s4.bundle"}));
    EXPECT_EQ(plan.bytes_freed, 5u * 10u + 1000u + 50u);
}

TEST(PrunePlan, RebaseReplacesThePrefixOfTheOldestKeptPoint) {
    auto plan = plan_prune(two_chains(), keep({"s3", "s5"}), Rebase::yes);
    ASSERT_EQ(plan.rebases.size(), 2u);
    EXPECT_EQ(plan.rebases[0].at, "s3");
    EXPECT_EQ(keys(plan.rebases[0].prefix),
              (std::vector<std::string>{"bundles/s0.bundle", "bundles/s2.bundle"}));
    EXPECT_EQ(plan.rebases[1].at, "s5");
    EXPECT_EQ(plan.rebases[1].manifests, std::vector<std::string>{"s5"});
    // Once rebased, no kept manifest lists an old bundle.
    EXPECT_EQ(keys(plan.delete_bundles),
              (std::vector<std::string>{"bundles/s0.bundle", "bundles/s2.bundle", "bundles/s4.bundle",
                                        "bundles/s5.bundle"}));
    EXPECT_TRUE(plan.kept_for_chain.empty());
}

TEST(PrunePlan, NoRebaseWhenTheKeptPointAlreadyStartsAFullBundle) {
    // s1 is kept and replays only s0's full bundle: a new full one would be the same.
    auto plan = plan_prune(two_chains(), keep({"s1", "s4", "s5"}), Rebase::yes);
    EXPECT_TRUE(plan.rebases.empty());
    EXPECT_EQ(keys(plan.kept_for_chain), std::vector<std::string>{"bundles/s0.bundle"});
    EXPECT_EQ(keys(plan.delete_bundles), std::vector<std::string>{"bundles/s2.bundle"});
}

TEST(PrunePlan, RebasedChainSwapsOnlyAMatchingPrefix) {
    auto snaps = two_chains();
    RebaseStep step{"s3", snaps[3].bundles, {"s3"}};
    BundleInfo fresh{"s3", "bundles/s3.rebased-abc.bundle", 1020, std::string(64, 'b'), {}};
    auto longer = snaps[3].bundles;
    longer.push_back(bundle("s9"));
    EXPECT_EQ(keys(rebased_chain(longer, step, fresh)),
              (std::vector<std::string>{"bundles/s3.rebased-abc.bundle", "bundles/s9.bundle"}));
    EXPECT_EQ(rebased_chain(snaps[5].bundles, step, fresh), snaps[5].bundles);
    EXPECT_EQ(rebased_chain(snaps[1].bundles, step, fresh), snaps[1].bundles); // shorter: not a match
}

TEST(PrunePlan, GeneratedHistoriesNeverDeleteWhatAKeptManifestLists) {
    for (unsigned seed = 1; seed <= 40; ++seed) {
        auto snaps = generated(300, 1 + static_cast<int>(seed % 9), seed);
        std::mt19937 rng(seed * 7919);
        KeptSet kept;
        for (const auto& s : snaps)
            if (rng() % 10 == 0)
                kept[s.id] = {"test"};
        kept[snaps.back().id] = {"newest"};
        for (auto rebase : {Rebase::no, Rebase::yes}) {
            auto plan = plan_prune(snaps, kept, rebase);
            std::set<std::string> doomed;
            for (const auto& b : plan.delete_bundles)
                doomed.insert(b.key);
            std::size_t dropped = 0;
            for (const auto& s : snaps) {
                bool is_kept = kept.contains(s.id);
                bool is_dropped = std::find(plan.drop.begin(), plan.drop.end(), s.id) != plan.drop.end();
                EXPECT_NE(is_kept, is_dropped) << s.id;
                dropped += is_dropped ? 1 : 0;
                if (!is_kept)
                    continue;
                // The chain the kept manifest will list after the rebases.
                auto chain = s.bundles;
                for (const auto& step : plan.rebases)
                    if (std::find(step.manifests.begin(), step.manifests.end(), s.id) != step.manifests.end())
                        chain = rebased_chain(chain, step, BundleInfo{s.id, "new", 1, "", {}});
                for (const auto& b : chain)
                    EXPECT_FALSE(doomed.contains(b.key))
                        << "seed " << seed << ": " << s.id << " needs " << b.key;
            }
            EXPECT_EQ(dropped, snaps.size() - kept.size());
            // Every bundle is deleted, kept for chain, or written by a kept snapshot.
            std::set<std::string> all;
            for (const auto& s : snaps)
                for (const auto& b : s.bundles)
                    all.insert(b.key);
            for (const auto& key : all) {
                auto owner = key.substr(8, 5);
                bool for_chain = std::any_of(plan.kept_for_chain.begin(), plan.kept_for_chain.end(),
                                             [&](const BundleInfo& b) { return b.key == key; });
                EXPECT_EQ(doomed.contains(key) + for_chain + (kept.contains(owner) && !doomed.contains(key)),
                          1)
                    << key;
            }
            // The oldest kept point of a rebase is the oldest kept manifest of its chain.
            for (const auto& step : plan.rebases) {
                EXPECT_EQ(step.manifests.front(), step.at);
                EXPECT_GT(step.prefix.size(), 1u);
            }
        }
    }
}
