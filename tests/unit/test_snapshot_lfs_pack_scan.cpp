// The stream engine's LFS scan (snapshot::LfsPackScan): pointers read from
// real `git pack-objects` packs as git::PackScanner streams them, for a full
// pack and for an incremental pack (thin and not) where a pointer changed.
#include "git_test_repo.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/snapshot/lfs_fetch.hpp"
#include "snapshotter/util/fs.hpp"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using snapshotter::testing::git_ok;

namespace {

std::string pointer_text(char digit, std::uint64_t size) {
    return "version https://git-lfs.github.com/spec/v1\noid sha256:" + std::string(64, digit) + "\nsize " +
           std::to_string(size) + "\n";
}

struct Repo {
    TempDir dir = std::move(*TempDir::create("lfs-pack-scan-test"));
    fs::path home = dir.path() / "home";
    fs::path path = dir.path() / "repo";

    Repo() {
        fs::create_directories(home);
        git_ok(home, dir.path(), {"init", "-q", path.string()});
    }
    void write(const std::string& name, const std::string& content) { std::ofstream(path / name) << content; }
    void commit(const std::string& message) {
        git_ok(home, path, {"add", "."});
        git_ok(home, path, {"commit", "-q", "-m", message});
    }
    // A pack of `revs` (rev-list arguments, one a line) as a fetch asking ofs-delta gets it.
    std::string pack(const std::string& revs, bool thin) {
        std::vector<std::string> args{"pack-objects", "--stdout",           "--revs", "-q", "--window=50",
                                      "--depth=50",   "--delta-base-offset"};
        if (thin)
            args.emplace_back("--thin");
        return git_ok(home, path, args, revs);
    }
};

// Scan `pack` in chunks of 61 bytes with the stream engine's hooks.
std::unique_ptr<LfsPackScan> scan(const std::string& pack) {
    auto owned = std::make_unique<LfsPackScan>();
    auto& lfs = *owned;
    auto hooks = lfs.hooks();
    git::PackScanner scanner(
        git::PackScanOptions{.report_commits = false, .max_blob_size = hooks.max_blob_size},
        git::PackScanCallbacks{.on_blob = hooks.on_blob, .on_unresolved = hooks.on_unresolved});
    for (std::size_t at = 0; at < pack.size(); at += 61)
        EXPECT_TRUE(scanner.feed(std::string_view(pack).substr(at, 61)));
    EXPECT_TRUE(scanner.finish());
    return owned;
}

// Scan `pack` as a bundle after `header`, through a BundleScanTap, following `head`.
std::unique_ptr<LfsPackScan> scan_following(const std::string& head, const std::string& pack) {
    auto lfs = std::make_unique<LfsPackScan>(head);
    BundleScanTap tap(nullptr, lfs->make_scanner("sha1"));
    const std::string bundle = "# v2 git bundle\n" + head + " refs/heads/main\n\n" + pack;
    for (std::size_t at = 0; at < bundle.size(); at += 61) {
        auto chunk = std::string_view(bundle).substr(at, 61);
        EXPECT_TRUE(tap.write({reinterpret_cast<const std::byte*>(chunk.data()), chunk.size()}));
    }
    EXPECT_TRUE(tap.finish_scan());
    return lfs;
}

std::vector<std::string> oids(const std::vector<LfsObject>& objects) {
    std::vector<std::string> out;
    for (const auto& o : objects)
        out.push_back(o.oid + ":" + std::to_string(o.size));
    return out;
}

} // namespace

TEST(LfsPackScan, FindsPointersInFullAndIncrementalPacks) {
    Repo repo;
    std::string body;
    for (int i = 0; i < 60; ++i)
        body += "line " + std::to_string(i) + " of an ordinary file\n";
    repo.write("big.bin", pointer_text('a', 1000));
    repo.write("other.bin", pointer_text('b', 2000));
    // Near misses are ordinary blobs: a pointer with a trailing line, one without its newline.
    repo.write("near1.txt", pointer_text('e', 5) + "extra\n");
    repo.write("near2.txt", pointer_text('f', 6).substr(0, pointer_text('f', 6).size() - 1));
    repo.write("code.txt", body);
    repo.commit("one");
    // A full pack: both pointers, nothing unresolved.
    auto full = scan(repo.pack("HEAD\n", false));
    EXPECT_EQ(oids(full->pointers()),
              (std::vector<std::string>{std::string(64, 'a') + ":1000", std::string(64, 'b') + ":2000"}));
    EXPECT_EQ(full->unresolved(), 0U);

    // The pointer changes (a new oid and size); the ordinary file is edited a little.
    repo.write("big.bin", pointer_text('c', 1001));
    repo.write("code.txt", body + "one more line\n");
    repo.commit("two");
    // A non-thin incremental pack: the changed pointer is read, the old ones are not in it.
    auto incremental = scan(repo.pack("HEAD\n^HEAD~1\n", false));
    EXPECT_EQ(oids(incremental->pointers()), (std::vector<std::string>{std::string(64, 'c') + ":1001"}));
    EXPECT_EQ(incremental->unresolved(), 0U);
    // A thin pack may send the pointer as a delta on the old one (git does not
    // here: a new oid leaves too little alike): then it is counted, never lost.
    auto thin = scan(repo.pack("HEAD\n^HEAD~1\n", true));
    EXPECT_EQ(thin->pointers().size() + thin->unresolved(), 1U);
}

TEST(LfsPackScan, PointersDeltifiedOnOldPointersAreReadOnlyFromANonThinPack) {
    Repo repo;
    // Pointers with long extension lines alike: git deltifies one on the other.
    std::string tail;
    for (int i = 0; i < 10; ++i)
        tail +=
            "ext-" + std::to_string(i) + "-name sha256:" + std::string(64, static_cast<char>('0' + i)) + "\n";
    auto pointer = [&](char digit, int size) {
        return "version https://git-lfs.github.com/spec/v1\n" + tail +
               "oid sha256:" + std::string(64, digit) + "\nsize " + std::to_string(size) + "\n";
    };
    repo.write("a.bin", pointer('a', 10));
    repo.commit("one");
    repo.write("a.bin", pointer('b', 11));
    repo.commit("two");
    auto thin = scan(repo.pack("HEAD\n^HEAD~1\n", true));
    auto whole = scan(repo.pack("HEAD\n^HEAD~1\n", false));
    EXPECT_EQ(oids(whole->pointers()), (std::vector<std::string>{std::string(64, 'b') + ":11"}));
    EXPECT_EQ(whole->unresolved(), 0U);
    // The thin pack leaves the delta unresolved: counted, so the engine says "scanned": false.
    EXPECT_TRUE(thin->pointers().empty());
    EXPECT_EQ(thin->unresolved(), 1U);
}

TEST(LfsPackScan, OnlyDeltasOfPointerSizeCount) {
    LfsPackScan lfs;
    auto hooks = lfs.hooks();
    ASSERT_TRUE(
        hooks.on_unresolved(git::UnresolvedDelta{.base_oid = std::string(40, '1'), .result_size = 10}));
    ASSERT_TRUE(
        hooks.on_unresolved(git::UnresolvedDelta{.base_oid = std::string(40, '1'), .result_size = 5000}));
    EXPECT_EQ(lfs.unresolved(), 0U);
    ASSERT_TRUE(
        hooks.on_unresolved(git::UnresolvedDelta{.base_oid = std::string(40, '2'), .result_size = 140}));
    EXPECT_EQ(lfs.unresolved(), 1U);
}

TEST(LfsPackScan, FollowsHeadToItsLfsconfigAndGitattributes) {
    Repo repo;
    repo.write(".lfsconfig", "[lfs]\n\turl = https://lfs.example/app\n");
    repo.write(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
    repo.write("big.bin", pointer_text('a', 1000));
    repo.write("code.txt", "code\n");
    repo.commit("one");
    const auto rev = [&](const std::string& what) {
        auto out = git_ok(repo.home, repo.path, {"rev-parse", what});
        return out.substr(0, out.find('\n'));
    };
    const std::string head1 = rev("HEAD"), tree1 = rev("HEAD^{tree}"), blob1 = rev("HEAD:.lfsconfig");

    // A full pack: HEAD's tree and both files are in it.
    auto full = scan_following(head1, repo.pack("HEAD\n", false));
    EXPECT_TRUE(full->head_commit_seen());
    EXPECT_TRUE(full->head_tree_seen());
    EXPECT_EQ(full->head_tree(), tree1);
    auto first = head_lfsconfig(*full, std::nullopt);
    ASSERT_TRUE(first.known) << first.unknown;
    EXPECT_EQ(first.url, "https://lfs.example/app");
    EXPECT_TRUE(first.gitattributes_lfs);
    EXPECT_EQ(first.record, (LfsConfigRecord{head1, tree1, blob1, "https://lfs.example/app"}));

    // An incremental where .lfsconfig did not change: its blob is not in the pack.
    repo.write("code.txt", "more code\n");
    repo.commit("two");
    const std::string head2 = rev("HEAD"), tree2 = rev("HEAD^{tree}");
    auto incremental = scan_following(head2, repo.pack("HEAD\n^HEAD~1\n", false));
    ASSERT_TRUE(incremental->head_tree_seen());
    // The previous snapshot recorded that blob: its URL is reused.
    auto reused = head_lfsconfig(*incremental, first.record);
    ASSERT_TRUE(reused.known) << reused.unknown;
    EXPECT_EQ(reused.url, "https://lfs.example/app");
    EXPECT_EQ(reused.record, (LfsConfigRecord{head2, tree2, blob1, "https://lfs.example/app"}));
    // It recorded nothing (an older manifest): the blob is to be fetched alone, then read.
    auto unknown = head_lfsconfig(*incremental, std::nullopt);
    EXPECT_FALSE(unknown.known);
    EXPECT_EQ(unknown.fetch_blob, blob1);
    auto fetched = head_lfsconfig(*incremental, std::nullopt, std::string("[lfs]\nurl = https://other/x\n"));
    ASSERT_TRUE(fetched.known);
    EXPECT_EQ(fetched.url, "https://other/x");

    // A pack without HEAD's commit (another branch moved): the record of that commit answers.
    git_ok(repo.home, repo.path, {"checkout", "-q", "-b", "side"});
    repo.write("side.txt", "side\n");
    repo.commit("side");
    auto other = scan_following(head2, repo.pack("side\n^main\n", false));
    EXPECT_FALSE(other->head_commit_seen());
    auto same_head = head_lfsconfig(*other, reused.record);
    ASSERT_TRUE(same_head.known);
    EXPECT_EQ(same_head.url, "https://lfs.example/app");
    EXPECT_FALSE(head_lfsconfig(*other, first.record).known); // a record of another commit does not
    git_ok(repo.home, repo.path, {"checkout", "-q", "main"});

    // .lfsconfig removed: known to have none.
    git_ok(repo.home, repo.path, {"rm", "-q", ".lfsconfig"});
    repo.commit("three");
    auto removed =
        head_lfsconfig(*scan_following(rev("HEAD"), repo.pack("HEAD\n^HEAD~1\n", false)), reused.record);
    ASSERT_TRUE(removed.known) << removed.unknown;
    EXPECT_EQ(removed.url, std::nullopt);
    ASSERT_TRUE(removed.record);
    EXPECT_EQ(removed.record->blob, "");

    // An unparsable .lfsconfig: known, no URL, a warning.
    repo.write(".lfsconfig", "[lfs\n");
    repo.commit("four");
    auto broken =
        head_lfsconfig(*scan_following(rev("HEAD"), repo.pack("HEAD\n^HEAD~1\n", false)), std::nullopt);
    EXPECT_TRUE(broken.known);
    EXPECT_EQ(broken.url, std::nullopt);
    EXPECT_NE(broken.warning.find(".lfsconfig"), std::string::npos);
}

TEST(LfsPackScan, RootFilesOfATree) {
    std::string raw(20, '\x11');
    std::string tree = std::string("100644 .gitattributes") + '\0' + raw + "120000 .lfsconfig" + '\0' + raw +
                       "40000 dir" + '\0' + raw;
    auto files = root_files_of(tree, "sha1");
    ASSERT_TRUE(files);
    EXPECT_EQ(files->gitattributes, std::string(40, '1'));
    EXPECT_EQ(files->lfsconfig, ""); // a symbolic link is not read
    EXPECT_FALSE(root_files_of(std::string("100644 x") + '\0' + "short", "sha1"));
    EXPECT_FALSE(root_files_of("100644 no-nul", "sha1"));
}
