// run_verify in-process (snapshot/verify.cpp): a sound chain passes with a
// drill; a changed byte, an unreadable object and a failing fsck are each
// reported against the snapshots they break.
#include "action_world.hpp"
#include "fault_git.hpp"
#include "fault_storage.hpp"

#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// The file of `key` in the file:// storage at `root`.
fs::path object_file(const fs::path& root, const std::string& key) {
    return root / key;
}

} // namespace

TEST(Verify, EverySnapshotOfASoundChainPassesItsDrill) {
    World world;
    auto chain = world.publish_chain(2);
    world.job().verify.snapshot = "all";
    world.job().verify.drill = true;
    FaultGit git(world.git());
    auto out = run_verify(world.context(world.storage(), git));
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["summary"]["ok"], 2);
    EXPECT_EQ(git.count("fsck"), 2U);
    // A bundle shared by both chains is read once.
    EXPECT_EQ(git.count("bundle_heads"), 2U);
}

TEST(Verify, AChangedByteFailsEverySnapshotThatNeedsIt) {
    World world;
    auto chain = world.publish_chain(2);
    world.job().verify.snapshot = "all";
    auto file = object_file(world.store_dir(), chain[0].bundles[0].key);
    ASSERT_TRUE(fs::exists(file)) << file;
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(-1, std::ios::end);
        f.put('\x01');
    }
    auto out = run_verify(world.context(world.storage(), world.git()));
    ASSERT_TRUE(out.error);
    EXPECT_EQ(out.error->kind, ErrorKind::Integrity);
    EXPECT_EQ(out.result["summary"]["failed"], 2);
    EXPECT_NE(out.result["snapshots"][0]["problems"][0].get<std::string>().find("SHA-256 mismatch"),
              std::string::npos)
        << out.result.dump();
}

TEST(Verify, AStorageOrGitFailureIsAProblemNotACrash) {
    World world;
    world.publish_chain(1);
    world.job().verify.snapshot = "latest";
    world.job().verify.drill = true;

    FaultStorage storage(world.storage());
    storage.fail_nth(Op::read, 1);
    auto unreadable = run_verify(world.context(storage, world.git()));
    ASSERT_TRUE(unreadable.error);
    EXPECT_EQ(unreadable.result["summary"]["failed"], 1);

    FaultGit git(world.git());
    git.fail_nth("fsck", 1);
    auto drill = run_verify(world.context(world.storage(), git));
    ASSERT_TRUE(drill.error);
    EXPECT_NE(drill.result["snapshots"][0]["problems"][0].get<std::string>().find(
                  "restore drill: injected fault in fsck"),
              std::string::npos)
        << drill.result.dump();
}
