#include "git_test_repo.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/hash.hpp"

#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>
#include <zlib.h>

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
    std::map<std::string, std::string> trees;
    std::vector<UnresolvedDelta> unresolved;
    Result<PackScanSummary> summary = fail(Error::internal("not finished"));
    std::size_t failed_at = 0; // bytes fed when a feed failed (0: none did)
};

// Scan `pack` fed in pieces of the sizes `next_piece` gives.
Seen scan_pieces(std::string_view pack, PackScanOptions options,
                 const std::function<std::size_t(std::size_t pos)>& next_piece) {
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
                                                .on_tree = [&](const ScannedTree& t) -> Status {
                                                    seen.trees[t.oid] = t.content;
                                                    return {};
                                                },
                                            });
    for (std::size_t pos = 0; pos < pack.size();) {
        std::size_t n = std::min<std::size_t>(pack.size() - pos, next_piece(pos));
        pos += n;
        if (auto s = scanner.feed(pack.substr(pos - n, n)); !s) {
            seen.summary = fail(s.error());
            seen.failed_at = pos;
            return seen;
        }
    }
    seen.summary = scanner.finish();
    return seen;
}

// Scan `pack` fed in chunks of random sizes up to `max_chunk`.
Seen scan(std::string_view pack, PackScanOptions options, std::size_t max_chunk = 97, unsigned seed = 7) {
    std::mt19937 rng(seed);
    return scan_pieces(pack, std::move(options), [&](std::size_t) { return 1 + rng() % max_chunk; });
}

// Scan `pack` fed in two pieces, cut at `cut`.
Seen scan_cut(std::string_view pack, PackScanOptions options, std::size_t cut) {
    return scan_pieces(pack, std::move(options),
                       [&](std::size_t pos) { return pos < cut ? cut - pos : pack.size() - pos; });
}

// `options` without the whole-entry path: every entry streamed through zlib.
PackScanOptions zlib_only(PackScanOptions options) {
    options.max_whole_inflate = 0;
    return options;
}

// Expect two scans of one pack to have reported the same, and to have
// succeeded or failed alike (with the same message).
void expect_same(const Seen& a, const Seen& b, const std::string& context) {
    EXPECT_EQ(a.commits, b.commits) << context;
    EXPECT_EQ(a.blobs, b.blobs) << context;
    EXPECT_EQ(a.trees, b.trees) << context;
    ASSERT_EQ(a.unresolved.size(), b.unresolved.size()) << context;
    for (std::size_t i = 0; i < a.unresolved.size(); ++i) {
        EXPECT_EQ(a.unresolved[i].base_oid, b.unresolved[i].base_oid) << context;
        EXPECT_EQ(a.unresolved[i].result_size, b.unresolved[i].result_size) << context;
    }
    ASSERT_EQ(a.summary.has_value(), b.summary.has_value())
        << context << ": " << (a.summary ? b.summary.error().message : a.summary.error().message);
    if (!a.summary) {
        EXPECT_EQ(a.summary.error().kind, b.summary.error().kind) << context;
        if (a.summary.error().message != b.summary.error().message) {
            // A corrupt stream that also inflates past its size: which zlib
            // says first depends on where inflate() calls end, so on how the
            // bytes were cut (zlib alone fed 97 or 200 bytes at a time differs
            // so too); the entry is the same.
            const std::regex either(
                R"(pack entry at (\d+) (is not valid zlib data|inflates to more than its \d+ bytes))");
            std::smatch x, y;
            ASSERT_TRUE(std::regex_match(a.summary.error().message, x, either)) << context;
            ASSERT_TRUE(std::regex_match(b.summary.error().message, y, either)) << context;
            EXPECT_EQ(x[1], y[1]) << context;
        }
        return;
    }
    const PackScanSummary &x = *a.summary, &y = *b.summary;
    EXPECT_EQ(std::tie(x.version, x.object_count, x.commits, x.blobs, x.deltas, x.unresolved, x.skipped,
                       x.pack_size, x.trees),
              std::tie(y.version, y.object_count, y.commits, y.blobs, y.deltas, y.unresolved, y.skipped,
                       y.pack_size, y.trees))
        << context;
}

// A pack made by hand: entries of any declared size and zlib stream.
struct RawEntry {
    unsigned type = 3; // blob
    std::uint64_t declared = 0;
    std::string stream;
};

std::string zlib_compress(std::string_view data) {
    uLongf size = compressBound(static_cast<uLong>(data.size()));
    std::string out(size, '\0');
    EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                        reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()), 6),
              Z_OK);
    out.resize(size);
    return out;
}

// A blob entry whose stream holds `content`, declaring `declared` bytes (its size by default).
RawEntry blob_entry(std::string_view content, std::optional<std::uint64_t> declared = std::nullopt) {
    return RawEntry{.declared = declared.value_or(content.size()), .stream = zlib_compress(content)};
}

std::string raw_pack(const std::vector<RawEntry>& entries) {
    std::string out("PACK\0\0\0\2", 8);
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((entries.size() >> shift) & 0xffU));
    for (const auto& e : entries) {
        std::uint64_t size = e.declared;
        auto c = static_cast<unsigned char>((e.type << 4) | (size & 15U));
        for (size >>= 4; size != 0; size >>= 7) {
            out.push_back(static_cast<char>(c | 0x80U));
            c = static_cast<unsigned char>(size & 0x7fU);
        }
        out.push_back(static_cast<char>(c));
        out += e.stream;
    }
    return out + std::string(20, '\0'); // the scanner leaves the trailer to BundleWriter
}

std::string blob_oid(std::string_view content) {
    Digest digest("sha1");
    digest.update(fmt::format("blob {}", content.size()) + std::string(1, '\0'));
    digest.update(content);
    return digest.hex_digest();
}

// `size` bytes that deflate hardly shrinks.
std::string noise(std::size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out(size, '\0');
    for (auto& c : out)
        c = static_cast<char>(rng() % 64 + 32);
    return out;
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
        PackScanOptions options{.max_blob_size = 1024};
        Seen seen = scan(std::string_view(pack).substr(0, n), options, 512);
        ASSERT_FALSE(seen.summary) << n;
        EXPECT_EQ(seen.summary.error().kind, ErrorKind::Integrity) << n;
        // What zlib alone reports, and where.
        expect_same(seen, scan(std::string_view(pack).substr(0, n), zlib_only(options), 512),
                    fmt::format("truncated to {}", n));
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
        PackScanOptions options{.max_blob_size = 1024};
        Seen seen = scan(bad, options, 200, static_cast<unsigned>(round));
        if (!seen.summary) {
            EXPECT_TRUE(seen.summary.error().kind == ErrorKind::Integrity) << seen.summary.error().message;
        }
        expect_same(seen, scan(bad, zlib_only(options), 200, static_cast<unsigned>(round)),
                    fmt::format("round {}", round));
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

// The whole-entry path (libdeflate) and zlib's streaming report the same
// wherever the feeds cut the pack, entries straddling a cut included.
TEST(PackScan, WholeEntriesMatchZlibAtEveryCut) {
    Repo repo("sha1", 3);
    std::string pack = repo.pack("--all\n");
    const PackScanOptions options{.max_blob_size = 1024, .max_tree_size = 1U << 20};
    // Every entry whole; entries over 64 bytes streamed; none whole.
    PackScanOptions some_whole = options;
    some_whole.max_whole_inflate = 64;
    std::uint64_t some = 0;
    for (std::size_t cut = 0; cut <= pack.size(); ++cut) {
        const std::string context = fmt::format("cut at {}", cut);
        Seen zlib = scan_cut(pack, zlib_only(options), cut);
        ASSERT_TRUE(zlib.summary) << context << ": " << zlib.summary.error().message;
        EXPECT_EQ(zlib.summary->whole, 0u);
        EXPECT_FALSE(zlib.blobs.empty());
        EXPECT_FALSE(zlib.trees.empty());
        Seen whole = scan_cut(pack, options, cut);
        expect_same(whole, zlib, context);
        ASSERT_TRUE(whole.summary);
        // An entry cut in two is held until it is whole, never handed to zlib.
        EXPECT_EQ(whole.summary->whole, whole.summary->object_count) << context;
        Seen mixed = scan_cut(pack, some_whole, cut);
        expect_same(mixed, zlib, context);
        ASSERT_TRUE(mixed.summary);
        EXPECT_GT(mixed.summary->whole, 0u);
        EXPECT_LT(mixed.summary->whole, mixed.summary->object_count);
        some = mixed.summary->whole;
    }
    EXPECT_GT(some, 0u);
}

TEST(PackScan, OneByteAtATimeMatchesZlib) {
    Repo repo("sha1", 3);
    std::string pack = repo.pack("--all\n");
    const PackScanOptions options{.max_blob_size = 1024, .max_tree_size = 1U << 20};
    Seen bytes = scan_pieces(pack, options, [](std::size_t) { return 1; });
    Seen zlib = scan_pieces(pack, zlib_only(options), [](std::size_t) { return 1; });
    expect_same(bytes, zlib, "one byte at a time");
    ASSERT_TRUE(bytes.summary) << bytes.summary.error().message;
    EXPECT_EQ(bytes.summary->whole, bytes.summary->object_count);
    expect_same(bytes, scan(pack, zlib_only(options), pack.size()), "one piece, zlib");
}

// A declared size the stream disagrees with fails as zlib says, whether the
// entry ends the pack (decided at finish) or more bytes follow it.
TEST(PackScan, DeclaredSizeThatDisagreesFailsAsZlibSays) {
    const std::string content = "hello, world\n";
    const RawEntry after = blob_entry(noise(4000, 1));
    struct Case {
        std::optional<std::uint64_t> declared;
        std::string message;
    };
    for (const Case& c : {Case{content.size() + 1, "pack entry at 12 inflates to 13 bytes, not 14"},
                          Case{content.size() - 1, "pack entry at 12 inflates to more than its 12 bytes"},
                          Case{1U << 20, "pack entry at 12 inflates to 13 bytes, not 1048576"}}) {
        for (bool last : {true, false}) {
            std::vector<RawEntry> entries{blob_entry(content, c.declared)};
            if (!last)
                entries.push_back(after);
            const std::string pack = raw_pack(entries);
            for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, pack.size()}) {
                const std::string context =
                    fmt::format("declared {}, last {}, chunk {}", *c.declared, last, chunk);
                Seen whole = scan(pack, PackScanOptions{.max_blob_size = 1024}, chunk);
                ASSERT_FALSE(whole.summary) << context;
                EXPECT_EQ(whole.summary.error().kind, ErrorKind::Integrity) << context;
                EXPECT_EQ(whole.summary.error().message, c.message) << context;
                expect_same(whole, scan(pack, zlib_only(PackScanOptions{.max_blob_size = 1024}), chunk),
                            context);
            }
        }
    }
}

TEST(PackScan, CorruptOrTruncatedStreamsFailAsZlibSays) {
    const std::string content = noise(3000, 2);
    std::string stream = zlib_compress(content);
    std::string bad_check = stream;
    bad_check.back() = static_cast<char>(bad_check.back() ^ 1); // the Adler-32 trailer
    std::string bad_header = stream;
    bad_header[0] = static_cast<char>(0x79); // not deflate
    std::string bad_data = stream;
    bad_data[stream.size() / 2] = static_cast<char>(bad_data[stream.size() / 2] ^ 0x55);
    const RawEntry good = blob_entry("fine\n");
    for (const auto& [name, bad] :
         {std::pair{"check", bad_check}, std::pair{"header", bad_header}, std::pair{"data", bad_data}}) {
        for (bool last : {true, false}) {
            std::vector<RawEntry> entries{good, RawEntry{.declared = content.size(), .stream = bad}};
            if (!last)
                entries.push_back(good);
            const std::string pack = raw_pack(entries);
            for (std::size_t chunk : {std::size_t{5}, std::size_t{1000}, pack.size()}) {
                const std::string context = fmt::format("{}, last {}, chunk {}", name, last, chunk);
                Seen whole = scan(pack, PackScanOptions{.max_blob_size = 1024}, chunk);
                ASSERT_FALSE(whole.summary) << context;
                EXPECT_EQ(whole.summary.error().kind, ErrorKind::Integrity) << context;
                EXPECT_NE(whole.summary.error().message.find("is not valid zlib data"), std::string::npos)
                    << context << ": " << whole.summary.error().message;
                EXPECT_EQ(whole.blobs.size(), 1u) << context; // the entry before it
                expect_same(whole, scan(pack, zlib_only(PackScanOptions{.max_blob_size = 1024}), chunk),
                            context);
            }
        }
    }
    // A stream cut short, at every length, with nothing after it.
    const std::string pack = raw_pack({good, RawEntry{.declared = content.size(), .stream = stream}});
    const std::size_t start = pack.size() - 20 - stream.size();
    for (std::size_t n = start; n < pack.size() - 20; n += 97) {
        const std::string context = fmt::format("stream cut at {}", n - start);
        Seen whole = scan(std::string_view(pack).substr(0, n), PackScanOptions{.max_blob_size = 1024}, 512);
        ASSERT_FALSE(whole.summary) << context;
        EXPECT_NE(whole.summary.error().message.find("pack is truncated after 1 of 2 objects"),
                  std::string::npos)
            << context << ": " << whole.summary.error().message;
        expect_same(whole, scan(std::string_view(pack).substr(0, n), zlib_only({.max_blob_size = 1024}), 512),
                    context);
    }
}

// An entry of exactly the size limit is inflated whole, one byte over is
// streamed; both fed as a server sends them (64 KiB sideband packets).
TEST(PackScan, WholeInflateSizeLimitIsInclusive) {
    const std::size_t cap = PackScanOptions{}.max_whole_inflate;
    ASSERT_EQ(cap, 1U << 20);
    const std::string at_cap = noise(cap, 3), over_cap = noise(cap + 1, 4), small = "small\n";
    const std::string pack = raw_pack(
        {blob_entry(small), blob_entry(""), blob_entry(at_cap), blob_entry(over_cap), blob_entry(small)});
    const PackScanOptions options{.max_blob_size = 2U << 20};
    auto packets = [](std::size_t) { return std::size_t{65515}; };
    Seen whole = scan_pieces(pack, options, packets);
    ASSERT_TRUE(whole.summary) << whole.summary.error().message;
    EXPECT_EQ(whole.summary->whole, 4u); // small (twice, one oid), the empty blob and at_cap; not over_cap
    EXPECT_EQ(whole.blobs.at(blob_oid(at_cap)), at_cap);
    EXPECT_EQ(whole.blobs.at(blob_oid(over_cap)), over_cap);
    EXPECT_EQ(whole.blobs.at(blob_oid(small)), small);
    EXPECT_EQ(whole.blobs.at(blob_oid("")), "");
    Seen zlib = scan_pieces(pack, zlib_only(options), packets);
    ASSERT_TRUE(zlib.summary) << zlib.summary.error().message;
    EXPECT_EQ(zlib.summary->whole, 0u); // a limit of 0 is none, the empty blob included
    expect_same(whole, zlib, "64 KiB packets");
    // A lower limit: at it whole, over it streamed.
    PackScanOptions low = options;
    low.max_whole_inflate = small.size();
    Seen limited = scan_pieces(pack, low, packets);
    ASSERT_TRUE(limited.summary) << limited.summary.error().message;
    EXPECT_EQ(limited.summary->whole, 3u);
    expect_same(limited, whole, "limit at the small blob's size");
}

// An entry whose stream never completes (it declares more than it holds) is
// not held past zlib's bound on its stream: zlib fails it while bytes still
// come, not only at finish().
TEST(PackScan, AnEntryNeverWholeIsHandedToZlibWithinItsBound) {
    const std::uint64_t declared = 1U << 20;
    std::vector<RawEntry> entries{blob_entry("tiny\n", declared)};
    for (unsigned i = 0; i < 40; ++i)
        entries.push_back(blob_entry(noise(64U << 10, 10 + i)));
    const std::string pack = raw_pack(entries);
    Seen seen = scan_pieces(pack, PackScanOptions{}, [](std::size_t) { return std::size_t{65515}; });
    ASSERT_FALSE(seen.summary);
    EXPECT_EQ(seen.summary.error().message, "pack entry at 12 inflates to 5 bytes, not 1048576");
    EXPECT_GT(seen.failed_at, 0u) << "failed in a feed";
    EXPECT_LE(seen.failed_at, compressBound(declared) + 2 * 65515U);
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
