#include "git_test_repo.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/util/fs.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace snapshotter;
using namespace snapshotter::git;
using snapshotter::testing::git_ok;

namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty())
            out.push_back(line);
    return out;
}

// A repository whose history makes a pack with blob deltas: a file edited a
// little in each of `commits` commits, a merge, and a large file.
struct Repo {
    TempDir dir = std::move(*TempDir::create("pack-scan-test"));
    fs::path home = dir.path() / "home";
    fs::path path = dir.path() / "repo";
    std::string format;

    explicit Repo(std::string object_format, int commits = 12) : format(std::move(object_format)) {
        fs::create_directories(home);
        git_ok(home, dir.path(), {"init", "-q", "--object-format=" + format, path.string()});
        std::string body;
        for (int i = 0; i < 40; ++i)
            body += "line " + std::to_string(i) + " of a file that is edited a little each time\n";
        for (int i = 0; i < commits; ++i) {
            body += "edit " + std::to_string(i) + "\n";
            std::ofstream(path / "file.txt") << body;
            std::ofstream(path / "pointer.txt")
                << "version https://git-lfs.github.com/spec/v1\noid sha256:"
                << std::string(64, static_cast<char>('a' + i % 6)) << "\nsize " << (1000 + i) << "\n";
            git_ok(home, path, {"add", "."});
            git_ok(home, path, {"commit", "-q", "-m", "commit " + std::to_string(i)});
            if (i == commits / 2)
                git_ok(home, path, {"branch", "side"});
        }
        git_ok(home, path, {"checkout", "-q", "side"});
        std::ofstream(path / "side.txt") << std::string(5000, 'y');
        git_ok(home, path, {"add", "side.txt"});
        git_ok(home, path, {"commit", "-q", "-m", "side"});
        git_ok(home, path, {"checkout", "-q", "main"});
        git_ok(home, path, {"merge", "-q", "--no-edit", "side"});
        git_ok(home, path, {"tag", "-a", "v1", "-m", "release"});
    }

    std::string git(std::vector<std::string> args, std::optional<std::string> in = std::nullopt) {
        return git_ok(home, path, std::move(args), std::move(in));
    }

    // A pack of `revs` (rev-list arguments, one a line), deltas searched hard; in-pack
    // bases as OFS_DELTA, as a fetch asking "ofs-delta" gets them.
    std::string pack(const std::string& revs, bool thin = false) {
        std::vector<std::string> args{"pack-objects", "--stdout",    "--revs",
                                      "-q",           "--window=50", "--depth=50"};
        if (thin)
            args.emplace_back("--thin");
        if (revs == "--all\n") {
            args.emplace_back("--all");
            return git(args, std::string{});
        }
        return git(args, revs);
    }

    // Every commit in `range` with its parents ("oid p1 p2").
    std::map<std::string, std::vector<std::string>> commits(const std::string& range) {
        std::map<std::string, std::vector<std::string>> out;
        for (const auto& line : lines(git({"rev-list", "--parents", range}))) {
            std::istringstream in(line);
            std::string oid, p;
            in >> oid;
            auto& parents = out[oid];
            while (in >> p)
                parents.push_back(p);
        }
        return out;
    }

    // Whether `oid` is a commit or a blob of at most `limit` bytes.
    bool reported_kind(const std::string& oid, std::uint64_t limit) {
        auto type = lines(git({"cat-file", "-t", oid})).front();
        return type == "commit" ||
               (type == "blob" && std::stoull(lines(git({"cat-file", "-s", oid})).front()) <= limit);
    }

    // Every blob of at most `limit` bytes reachable from `range`, with its content.
    std::map<std::string, std::string> small_blobs(const std::string& range, std::uint64_t limit) {
        std::map<std::string, std::string> out;
        for (const auto& line : lines(git({"rev-list", "--objects", range}))) {
            std::string oid = line.substr(0, line.find(' '));
            if (lines(git({"cat-file", "-t", oid})).front() != "blob")
                continue;
            std::string content = git({"cat-file", "blob", oid});
            if (content.size() <= limit)
                out[oid] = content;
        }
        return out;
    }
};

// What a scan reported.
struct Seen {
    std::map<std::string, std::vector<std::string>> commits;
    std::map<std::string, std::string> blobs;
    std::vector<UnresolvedDelta> unresolved;
    Result<PackScanSummary> summary = fail(Error::internal("not finished"));
};

// Scan `pack` fed in chunks of random sizes up to `max_chunk`.
Seen scan(std::string_view pack, PackScanOptions options, std::size_t max_chunk = 97, unsigned seed = 7) {
    Seen seen;
    PackScanner scanner(std::move(options), PackScanCallbacks{
                                                .on_commit = [&](const ScannedCommit& c) -> Status {
                                                    seen.commits[c.oid] = c.parents;
                                                    return {};
                                                },
                                                .on_blob = [&](const ScannedBlob& b) -> Status {
                                                    seen.blobs[b.oid] = b.content;
                                                    return {};
                                                },
                                                .on_unresolved = [&](const UnresolvedDelta& d) -> Status {
                                                    seen.unresolved.push_back(d);
                                                    return {};
                                                },
                                            });
    std::mt19937 rng(seed);
    for (std::size_t pos = 0; pos < pack.size();) {
        std::size_t n = std::min<std::size_t>(pack.size() - pos, 1 + rng() % max_chunk);
        if (auto s = scanner.feed(pack.substr(pos, n)); !s) {
            seen.summary = fail(s.error());
            return seen;
        }
        pos += n;
    }
    seen.summary = scanner.finish();
    return seen;
}

class PackScanFormats : public ::testing::TestWithParam<std::string> {};

TEST_P(PackScanFormats, FullPackReportsEveryCommitAndSmallBlob) {
    Repo repo(GetParam());
    std::string pack = repo.pack("--all\n");
    PackScanOptions options{.object_format = repo.format, .max_blob_size = 1024};
    Seen seen = scan(pack, options);
    ASSERT_TRUE(seen.summary) << seen.summary.error().message;
    EXPECT_EQ(seen.commits, repo.commits("--all"));
    EXPECT_EQ(seen.blobs, repo.small_blobs("--all", 1024));
    EXPECT_GT(seen.summary->deltas, 0u); // the edited file and pointers are deltified
    // git sends some in-pack bases as REF_DELTA: those on objects it does not
    // report (trees, large blobs) come back unresolved.
    for (const auto& d : seen.unresolved)
        EXPECT_FALSE(repo.reported_kind(d.base_oid, 1024)) << d.base_oid;
    EXPECT_EQ(seen.summary->pack_size, pack.size());
    EXPECT_EQ(seen.summary->commits, seen.commits.size());
    // One big chunk gives the same.
    Seen whole = scan(pack, options, pack.size());
    EXPECT_EQ(whole.commits, seen.commits);
    EXPECT_EQ(whole.blobs, seen.blobs);
}

TEST_P(PackScanFormats, ThinPackReportsDeltasOnOutsideBases) {
    Repo repo(GetParam());
    std::string pack = repo.pack("main\n^main~3\n", /*thin=*/true);
    Seen seen = scan(pack, PackScanOptions{.object_format = repo.format, .max_blob_size = 1024});
    ASSERT_TRUE(seen.summary) << seen.summary.error().message;
    EXPECT_EQ(seen.commits, repo.commits("main~3..main"));
    // Every base of an unresolved delta is an object the receiver has (reachable from main~3).
    std::set<std::string> outside;
    for (const auto& line : lines(repo.git({"rev-list", "--objects", "main~3"})))
        outside.insert(line.substr(0, line.find(' ')));
    ASSERT_FALSE(seen.unresolved.empty());
    EXPECT_EQ(seen.summary->unresolved, seen.unresolved.size());
    std::size_t thin_bases = 0;
    for (const auto& d : seen.unresolved) {
        thin_bases += outside.contains(d.base_oid) ? 1 : 0;
        EXPECT_TRUE(outside.contains(d.base_oid) || !repo.reported_kind(d.base_oid, 1024)) << d.base_oid;
        EXPECT_GT(d.result_size, 0u);
    }
    EXPECT_GT(thin_bases, 0u);
    // Blobs reported are exactly the small blobs the pack holds whole or as in-pack deltas.
    auto in_range = repo.small_blobs("main~3..main", 1024);
    for (const auto& [oid, content] : seen.blobs)
        EXPECT_EQ(in_range.at(oid), content);
}

TEST_P(PackScanFormats, NoBlobsAskedNoneReported) {
    Repo repo(GetParam(), 4);
    Seen seen = scan(repo.pack("--all\n"), PackScanOptions{.object_format = repo.format});
    ASSERT_TRUE(seen.summary) << seen.summary.error().message;
    EXPECT_TRUE(seen.blobs.empty());
    EXPECT_EQ(seen.commits, repo.commits("--all"));
}

INSTANTIATE_TEST_SUITE_P(Formats, PackScanFormats, ::testing::Values("sha1", "sha256"));

TEST(PackScan, FollowingStopsCommitsAndTreesApartAndKeepsTheBlobs) {
    Repo repo("sha1");
    std::string pack = repo.pack("--all\n");
    std::uint64_t commits = 0, trees = 0;
    std::map<std::string, std::string> blobs;
    std::vector<PackFollow> asked;
    PackScanner scanner(
        PackScanOptions{.object_format = "sha1", .max_blob_size = 1024, .max_tree_size = 1U << 20},
        PackScanCallbacks{.on_commit = [&](const ScannedCommit&) -> Status {
                              ++commits;
                              return {};
                          },
                          .on_blob = [&](const ScannedBlob& b) -> Status {
                              blobs[b.oid] = b.content;
                              return {};
                          },
                          .on_tree = [&](const ScannedTree&) -> Status {
                              ++trees;
                              return {};
                          },
                          // The first commit, then the first tree, as the LFS step follows HEAD.
                          .following =
                              [&] {
                                  asked.push_back(PackFollow{.commits = commits == 0, .trees = trees == 0});
                                  return asked.back();
                              }});
    ASSERT_TRUE(scanner.feed(pack));
    auto summary = scanner.finish();
    ASSERT_TRUE(summary) << summary.error().message;
    EXPECT_EQ(summary->commits, 1u);
    EXPECT_EQ(summary->trees, 1u);
    EXPECT_GT(repo.commits("--all").size(), 1u);
    // Small blobs are reported as without following, deltas on them applied.
    EXPECT_EQ(blobs, repo.small_blobs("--all", 1024));
    // Asked while something is followed, not after.
    ASSERT_FALSE(asked.empty());
    EXPECT_FALSE(asked.back().commits || asked.back().trees);
    EXPECT_LT(asked.size(), summary->object_count);
}

TEST(PackScan, TinyCacheStillScansAndReportsEvictedBases) {
    Repo repo("sha1");
    PackScanOptions options{.object_format = "sha1", .max_blob_size = 1024, .cache_bytes = 1};
    Seen seen = scan(repo.pack("--all\n"), options);
    ASSERT_TRUE(seen.summary) << seen.summary.error().message;
    // Bases left the cache: their deltas are unresolved, named by in-pack oids.
    EXPECT_EQ(seen.summary->unresolved, seen.unresolved.size());
    for (const auto& d : seen.unresolved)
        EXPECT_FALSE(d.base_oid.empty());
}

TEST(PackScan, EveryTruncationFailsCleanly) {
    Repo repo("sha1", 3);
    std::string pack = repo.pack("--all\n");
    for (std::size_t n = 0; n < pack.size(); ++n) {
        Seen seen = scan(std::string_view(pack).substr(0, n), PackScanOptions{.max_blob_size = 1024}, 512);
        ASSERT_FALSE(seen.summary) << n;
        EXPECT_EQ(seen.summary.error().kind, ErrorKind::Integrity) << n;
    }
    Seen extra = scan(pack + "x", PackScanOptions{.max_blob_size = 1024});
    EXPECT_FALSE(extra.summary);
}

TEST(PackScan, CorruptBytesNeverCrash) {
    Repo repo("sha1", 3);
    std::string pack = repo.pack("--all\n");
    std::mt19937 rng(11);
    for (int round = 0; round < 300; ++round) {
        std::string bad = pack;
        for (int flips = 0; flips < 3; ++flips)
            bad[12 + rng() % (bad.size() - 12)] = static_cast<char>(rng());
        Seen seen = scan(bad, PackScanOptions{.max_blob_size = 1024}, 200, static_cast<unsigned>(round));
        if (!seen.summary) {
            EXPECT_TRUE(seen.summary.error().kind == ErrorKind::Integrity) << seen.summary.error().message;
        }
    }
}

TEST(PackScan, RejectsBadHeaders) {
    EXPECT_FALSE(scan("PACX\0\0\0\2\0\0\0\0", {}).summary);
    std::string v4("PACK\0\0\0\4\0\0\0\0", 12);
    EXPECT_FALSE(scan(v4, {}).summary);
    std::string many("PACK\0\0\0\2\0\0\1\0", 12);
    auto seen = scan(many + std::string(20, '\0'), PackScanOptions{.max_objects = 10});
    ASSERT_FALSE(seen.summary);
    EXPECT_NE(seen.summary.error().message.find("more than"), std::string::npos);
    // An empty pack with its trailer is fine.
    std::string empty("PACK\0\0\0\2\0\0\0\0", 12);
    EXPECT_TRUE(scan(empty + std::string(20, '\0'), {}).summary);
}

TEST(PackScan, CallbackErrorStopsTheScan) {
    Repo repo("sha1", 2);
    std::string pack = repo.pack("--all\n");
    PackScanner scanner(PackScanOptions{}, PackScanCallbacks{.on_commit = [](const ScannedCommit&) -> Status {
                            return fail(Error::internal("enough"));
                        }});
    auto s = scanner.feed(pack);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "enough");
    EXPECT_FALSE(scanner.finish());
}

TEST(PackScan, CommitParentsParsesTheHeaderOnly) {
    std::string tree(40, 'a'), p1(40, 'b'), p2(40, 'c');
    auto parents = commit_parents("tree " + tree + "\nparent " + p1 + "\nparent " + p2 +
                                      "\nauthor A <a@b> 1 +0000\n\nparent " + tree + "\n",
                                  "sha1");
    ASSERT_TRUE(parents);
    EXPECT_EQ(*parents, (std::vector<std::string>{p1, p2}));
    EXPECT_FALSE(commit_parents("parent " + p1 + "\n", "sha1"));
    EXPECT_FALSE(commit_parents("tree " + tree + "\nparent xyz\n", "sha1"));
    EXPECT_FALSE(commit_parents("", "sha1"));
}

TEST(PackScan, ApplyDeltaChecksEveryBound) {
    std::string base = "hello world";
    // base size 11, result 8: copy 5 bytes at 6 ("world"), insert "!!!".
    std::string delta = std::string("\x0b\x08\x91\x06\x05\x03!!!", 9);
    auto out = apply_delta(base, delta, 100);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(*out, "world!!!");
    EXPECT_FALSE(apply_delta("short", delta, 100));                               // base size differs
    EXPECT_FALSE(apply_delta(base, delta, 4));                                    // result too large
    EXPECT_FALSE(apply_delta(base, std::string("\x0b\x08\x91\x09\x05", 5), 100)); // copy past the base
    EXPECT_FALSE(apply_delta(base, std::string("\x0b\x08\x00", 3), 100));         // reserved op
    EXPECT_FALSE(apply_delta(base,
                             std::string("\x0b\x08\x05"
                                         "ab",
                                         5),
                             100));                                                      // insert truncated
    EXPECT_FALSE(apply_delta(base, std::string("\x0b\x09\x91\x06\x05\x03!!!", 9), 100)); // short result
}

} // namespace
