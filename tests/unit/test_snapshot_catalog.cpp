// download_bundle(): a stored bundle larger than its manifest says is read
// only to the manifest's size plus one byte, and nothing is left at the path.
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/publish.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;

TEST(DownloadBundle, StopsAtTheManifestsSizePlusOne) {
    auto storage = storage::open_memory("download-bound");
    const std::string key = "repos/app/bundles/20260101T000000.000Z-ab12.bundle";
    ASSERT_TRUE(storage->put(key, std::string(4096, 'x'), Overwrite::no));
    auto dir = TempDir::create("test-catalog");
    ASSERT_TRUE(dir);
    BundleInfo info{"20260101T000000.000Z-ab12", key, 10, std::string(64, '0'), {}};
    auto path = dir->path() / "scratch.bundle";
    auto s = download_bundle(*storage, info, path);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Integrity);
    EXPECT_NE(s.error().message.find("larger than the manifest's 10 bytes; stopped reading at byte 11"),
              std::string::npos)
        << s.error().message;
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::is_empty(dir->path()));
}

// The publishing and reading functions on a real repository, through
// FaultStorage and FaultGit (action_world.hpp).
#include "action_world.hpp"
#include "fault_git.hpp"
#include "fault_storage.hpp"

using namespace snapshotter::test;

TEST(Catalog, StoredChainMaterializesToEachManifestsRefs) {
    World world;
    auto chain = world.publish_chain(3);
    ASSERT_EQ(chain.size(), 3U);
    EXPECT_EQ(chain[2].bundles.size(), 3U);
    EXPECT_FALSE(chain[2].bundles[2].prerequisites.empty());
    for (const auto& m : chain) {
        auto refs = world.restore(world.storage(), m);
        ASSERT_TRUE(refs) << refs.error().message;
        EXPECT_EQ(*refs, m.refs);
    }
    auto latest = read_latest_manifest(world.storage(), k_repo);
    ASSERT_TRUE(latest && *latest);
    EXPECT_EQ((*latest)->snapshot_id, chain.back().snapshot_id);
}

TEST(Catalog, ReplayChainCollectsEveryTipAndChecksEachBundle) {
    World world;
    auto chain = world.publish_chain(2);
    ASSERT_EQ(chain.size(), 2U);
    auto scratch = TempDir::create("test-replay");
    ASSERT_TRUE(scratch);
    auto repo = scratch->path() / "r.git";
    ASSERT_TRUE(world.git().init_bare(repo, "sha1"));
    auto tips = replay_chain(world.storage(), world.git(), chain[1].bundles, repo, scratch->path(),
                             std::chrono::seconds{60}, Tips::collect);
    ASSERT_TRUE(tips) << tips.error().message;
    for (const auto& [name, target] : chain[1].refs)
        EXPECT_TRUE(tips->contains(target.oid)) << name;

    // A bundle whose bytes changed is refused before git reads it.
    auto tampered = chain[1].bundles;
    tampered[0].sha256 = std::string(64, 'f');
    auto again = replay_chain(world.storage(), world.git(), tampered, scratch->path() / "other.git",
                              scratch->path(), std::chrono::seconds{60}, Tips::ignore);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().kind, ErrorKind::Integrity);
}

TEST(Catalog, AdvanceLatestOnlyMovesForward) {
    World world;
    auto chain = world.publish_chain(2);
    ASSERT_EQ(chain.size(), 2U);
    auto moved = advance_latest(world.storage(), k_repo, chain[0].snapshot_id,
                                layout::manifest_key(k_repo, chain[0].snapshot_id));
    ASSERT_TRUE(moved);
    EXPECT_FALSE(*moved);
    auto pointer = world.storage().get(layout::latest_key(k_repo));
    ASSERT_TRUE(pointer);
    EXPECT_EQ(*parse_latest(*pointer), chain[1].snapshot_id);
}

TEST(Catalog, StoreBundleCommitsNothingWhenGitFails) {
    World world;
    FaultGit git(world.git());
    git.fail_nth("bundle_create", 1);
    auto failed = world.publish(world.storage(), git, nullptr);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().kind, ErrorKind::Git);
    auto listed = world.storage().list("");
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->empty());
    auto pending = world.storage().list_pending("");
    ASSERT_TRUE(pending);
    EXPECT_TRUE(pending->empty());
}

// Crash points of a publish (bundle, table, manifest, latest): whichever write the
// process dies at, the snapshots published before stay restorable, latest
// names a manifest that exists, and the next publish completes.
TEST(Catalog, PublishSurvivesACrashAtEveryWrite) {
    World world;
    auto chain = world.publish_chain(2);
    ASSERT_EQ(chain.size(), 2U);
    world.commit("one more");

    // A clean publish, to count its writes.
    const auto base = world.store_dir();
    world.copy_store_to("count");
    FaultStorage counting(world.storage());
    ASSERT_TRUE(world.publish(counting, world.git(), &chain.back()));
    EXPECT_EQ(counting.count(Op::mutation), 4U); // bundle commit, table, manifest, latest

    for (std::size_t n = 1; n <= counting.count(Op::mutation); ++n) {
        for (auto fault : {Fault::crash, Fault::tear}) {
            const auto where = fmt::format("mutation {} fault {}", n, static_cast<int>(fault));
            auto inner = world.copy_of(base, fmt::format("m{}-{}", n, static_cast<int>(fault)));
            FaultStorage faulty(*inner);
            faulty.fail_nth(Op::mutation, n, fault);
            auto published = world.publish(faulty, world.git(), &chain.back());
            EXPECT_FALSE(published) << where;
            if (fault == Fault::tear && n == 3)
                continue; // a torn manifest is what file:// and S3 never leave (both publish whole objects)
            if (fault == Fault::tear && n == 4) {
                // A torn pointer is only a hint lost: readers take the newest manifest.
                auto newest = read_latest_manifest(*inner, k_repo);
                ASSERT_TRUE(newest && *newest) << where;
            } else {
                expect_consistent(*inner, where);
            }
            for (const auto& m : chain) {
                auto refs = world.restore(*inner, m);
                ASSERT_TRUE(refs) << where << ": " << refs.error().message;
                EXPECT_EQ(*refs, m.refs) << where;
            }
            // The rerun (a new snapshot id) completes and latest follows it.
            auto rerun = world.publish(*inner, world.git(), &chain.back());
            ASSERT_TRUE(rerun) << where << ": " << rerun.error().message;
            auto latest = read_latest_manifest(*inner, k_repo);
            ASSERT_TRUE(latest && *latest) << where;
            EXPECT_EQ((*latest)->snapshot_id, rerun->snapshot_id) << where;
            expect_consistent(*inner, where + " after the rerun");
        }
    }
}

TEST(Catalog, PublishLosesABundleCutMidStream) {
    World world;
    FaultStorage faulty(world.storage());
    faulty.fail_nth(Op::write, 1, Fault::crash);
    EXPECT_FALSE(world.publish(faulty, world.git(), nullptr));
    auto listed = world.storage().list("");
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->empty());
}
