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
LfsPackScan scan(const std::string& pack) {
    LfsPackScan lfs;
    auto hooks = lfs.hooks();
    git::PackScanner scanner(
        git::PackScanOptions{.report_commits = false, .max_blob_size = hooks.max_blob_size},
        git::PackScanCallbacks{.on_blob = hooks.on_blob, .on_unresolved = hooks.on_unresolved});
    for (std::size_t at = 0; at < pack.size(); at += 61)
        EXPECT_TRUE(scanner.feed(std::string_view(pack).substr(at, 61)));
    EXPECT_TRUE(scanner.finish());
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
    EXPECT_EQ(oids(full.pointers()),
              (std::vector<std::string>{std::string(64, 'a') + ":1000", std::string(64, 'b') + ":2000"}));
    EXPECT_EQ(full.unresolved(), 0U);

    // The pointer changes (a new oid and size); the ordinary file is edited a little.
    repo.write("big.bin", pointer_text('c', 1001));
    repo.write("code.txt", body + "one more line\n");
    repo.commit("two");
    // A non-thin incremental pack: the changed pointer is read, the old ones are not in it.
    auto incremental = scan(repo.pack("HEAD\n^HEAD~1\n", false));
    EXPECT_EQ(oids(incremental.pointers()), (std::vector<std::string>{std::string(64, 'c') + ":1001"}));
    EXPECT_EQ(incremental.unresolved(), 0U);
    // A thin pack may send the pointer as a delta on the old one (git does not
    // here: a new oid leaves too little alike): then it is counted, never lost.
    auto thin = scan(repo.pack("HEAD\n^HEAD~1\n", true));
    EXPECT_EQ(thin.pointers().size() + thin.unresolved(), 1U);
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
    EXPECT_EQ(oids(whole.pointers()), (std::vector<std::string>{std::string(64, 'b') + ":11"}));
    EXPECT_EQ(whole.unresolved(), 0U);
    // The thin pack leaves the delta unresolved: counted, so the engine says "scanned": false.
    EXPECT_TRUE(thin.pointers().empty());
    EXPECT_EQ(thin.unresolved(), 1U);
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
