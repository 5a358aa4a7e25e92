// run_list in-process (snapshot/list.cpp): snapshots newest first with what
// each manifest says, a prefix that is no repository key reported instead of
// read, an unreadable manifest listed with its error, a named repository
// without snapshots NotFound, and a storage failure a clean error.
#include "action_world.hpp"
#include "fault_storage.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// A snapshot id newer than any World publishes.
std::string newest_id() {
    return new_snapshot_id(Clock::time_point{std::chrono::seconds{1'900'000'000}});
}

} // namespace

TEST(List, OneRepositoryNewestFirstWithWhatEachManifestSays) {
    World world;
    auto chain = world.publish_chain(2);
    ASSERT_EQ(chain.size(), 2U);
    world.job().list.repository = k_repo;
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_FALSE(out.partial);
    EXPECT_EQ(out.result["action"], "list");
    EXPECT_FALSE(out.result.contains("skipped"));
    ASSERT_EQ(out.result["repositories"].size(), 1U);
    const auto& repo = out.result["repositories"][0];
    EXPECT_EQ(repo["name"], k_repo);
    const auto& snaps = repo["snapshots"];
    ASSERT_EQ(snaps.size(), 2U) << out.result.dump();
    EXPECT_EQ(snaps[0]["snapshot_id"], chain[1].snapshot_id);
    EXPECT_EQ(snaps[0]["kind"], "incremental");
    EXPECT_EQ(snaps[0]["parent"], chain[0].snapshot_id);
    EXPECT_EQ(snaps[0]["chain"], 2);
    // Only the bundle the snapshot wrote itself counts in its bytes.
    EXPECT_EQ(snaps[0]["bytes"], chain[1].bundles.back().size);
    EXPECT_EQ(snaps[1]["snapshot_id"], chain[0].snapshot_id);
    EXPECT_EQ(snaps[1]["kind"], "full");
    EXPECT_TRUE(snaps[1]["parent"].is_null());
    EXPECT_EQ(snaps[1]["chain"], 1);
    EXPECT_EQ(snaps[1]["refs"], chain[0].refs.size());
    // Every ledger kind is present, zeros included.
    for (const char* kind : {"created", "fast_forward", "updated", "rewritten", "deleted"})
        EXPECT_EQ(snaps[1]["changes"][kind], 0) << kind;
}

TEST(List, AllRepositoriesReportsAPrefixThatIsNoRepositoryKey) {
    World world;
    world.publish_chain(1);
    ASSERT_TRUE(world.storage().put("repos/%2E%2E/manifests/x.json", "{}", Overwrite::no));
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    ASSERT_EQ(out.result["repositories"].size(), 1U) << out.result.dump();
    EXPECT_EQ(out.result["repositories"][0]["name"], k_repo);
    ASSERT_EQ(out.result["skipped"].size(), 1U) << out.result.dump();
    EXPECT_EQ(out.result["skipped"][0]["prefix"], "repos/%2E%2E/");
    EXPECT_EQ(out.result["skipped"][0]["error"], error_kind_name(ErrorKind::Integrity));
}

TEST(List, AnUnreadableManifestIsListedWithItsErrorBesideTheOthers) {
    World world;
    auto chain = world.publish_chain(1);
    const auto bad = newest_id();
    ASSERT_TRUE(world.storage().put(layout::manifest_key(k_repo, bad), "not a manifest", Overwrite::no));
    world.job().list.repository = k_repo;
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    const auto& snaps = out.result["repositories"][0]["snapshots"];
    ASSERT_EQ(snaps.size(), 2U) << out.result.dump();
    EXPECT_EQ(snaps[0]["snapshot_id"], bad);
    ASSERT_TRUE(snaps[0].contains("error")) << out.result.dump();
    EXPECT_FALSE(snaps[0].contains("kind"));
    EXPECT_EQ(snaps[1]["snapshot_id"], chain[0].snapshot_id);
}

TEST(List, AManifestNamingAnotherSnapshotIsAnError) {
    World world;
    auto chain = world.publish_chain(1);
    auto text = world.storage().get(layout::manifest_key(k_repo, chain[0].snapshot_id));
    ASSERT_TRUE(text);
    const auto other = newest_id();
    ASSERT_TRUE(world.storage().put(layout::manifest_key(k_repo, other), *text, Overwrite::no));
    world.job().list.repository = k_repo;
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    const auto& snaps = out.result["repositories"][0]["snapshots"];
    ASSERT_EQ(snaps.size(), 2U);
    EXPECT_EQ(snaps[0]["snapshot_id"], other);
    EXPECT_NE(snaps[0]["error"].get<std::string>().find("manifest names"), std::string::npos)
        << out.result.dump();
}

TEST(List, ANamedRepositoryWithoutSnapshotsIsNotFound) {
    World world;
    world.job().list.repository = "acme/none";
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_TRUE(out.error);
    EXPECT_EQ(out.error->kind, ErrorKind::NotFound);
    EXPECT_NE(out.error->message.find("acme/none: no snapshot exists"), std::string::npos);
    EXPECT_TRUE(out.result.is_null());
}

TEST(List, AnEmptyStorageListsNoRepository) {
    World world;
    auto out = run_list(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_TRUE(out.result["repositories"].empty());
}

TEST(List, AStorageFailureIsACleanError) {
    World world;
    world.publish_chain(1);
    for (bool named : {false, true}) {
        world.job().list.repository = named ? std::optional<std::string>{k_repo} : std::nullopt;
        FaultStorage storage(world.storage());
        storage.fail_nth(Op::list, 1);
        auto out = run_list(world.context(storage, world.git()));
        ASSERT_TRUE(out.error) << named;
        EXPECT_EQ(out.error->kind, ErrorKind::Storage);
        EXPECT_NE(out.error->message.find("injected fault"), std::string::npos) << out.error->message;
        EXPECT_TRUE(out.result.is_null());
    }
    // A manifest that cannot be read is that snapshot's error, not the list's.
    world.job().list.repository = k_repo;
    FaultStorage storage(world.storage());
    storage.fail_nth(Op::get, 1);
    auto out = run_list(world.context(storage, world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_NE(
        out.result["repositories"][0]["snapshots"][0]["error"].get<std::string>().find("injected fault"),
        std::string::npos);
}
