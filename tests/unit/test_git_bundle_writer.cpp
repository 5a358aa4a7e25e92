#include "git_test_repo.hpp"
#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/util/fs.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <random>

using namespace snapshotter;
using namespace snapshotter::git;
using snapshotter::testing::git_exit;
using snapshotter::testing::git_ok;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

struct Fixture {
    TempDir dir = std::move(*TempDir::create("bundle-writer-test"));
    fs::path home = dir.path() / "home";
    fs::path repo = dir.path() / "repo";

    explicit Fixture(const std::string& object_format) {
        fs::create_directories(home);
        git_ok(home, dir.path(), {"init", "-q", "--object-format=" + object_format, repo.string()});
        for (int i = 0; i < 3; ++i) {
            std::ofstream(repo / "file.txt") << "line " << i << "\n"
                                             << std::string(static_cast<std::size_t>(i) * 100, 'x');
            git_ok(home, repo, {"add", "file.txt"});
            git_ok(home, repo, {"commit", "-q", "-m", "commit " + std::to_string(i)});
            if (i == 0)
                git_ok(home, repo, {"branch", "old"});
        }
        git_ok(home, repo, {"tag", "-a", "v1", "-m", "release"});
    }

    // The repository's refs as bundle header lines (oid, name).
    std::vector<std::pair<std::string, std::string>> refs() {
        std::vector<std::pair<std::string, std::string>> out;
        std::string text = git_ok(home, repo, {"for-each-ref", "--format=%(objectname) %(refname)"});
        std::size_t pos = 0;
        while (pos < text.size()) {
            auto nl = text.find('\n', pos);
            std::string line = text.substr(pos, nl - pos);
            pos = nl + 1;
            auto sp = line.find(' ');
            out.emplace_back(line.substr(0, sp), line.substr(sp + 1));
        }
        return out;
    }

    // Pack of the objects reachable from `revs` (rev-list syntax, one per line).
    std::string pack(const std::string& revs, bool thin = false) {
        std::vector<std::string> args{"pack-objects", "--stdout", "--revs", "-q"};
        if (thin)
            args.emplace_back("--thin");
        if (revs == "--all\n") {
            args.emplace_back("--all");
            return git_ok(home, repo, args, std::string{});
        }
        return git_ok(home, repo, args, revs);
    }
};

// Feed `header` and `pack` through a BundleWriter in random chunk sizes into `path`.
Result<BundleSummary> write_bundle(const fs::path& path, const BundleHeader& header, std::string_view pack) {
    std::string bytes;
    BundleWriter writer([&](std::span<const std::byte> data) -> Status {
        bytes.append(reinterpret_cast<const char*>(data.data()), data.size());
        return {};
    });
    if (auto s = writer.write_header(header); !s)
        return fail(s.error());
    std::mt19937 rng(7);
    for (std::size_t pos = 0; pos < pack.size();) {
        std::size_t n = std::min<std::size_t>(pack.size() - pos, 1 + rng() % 97);
        if (auto s = writer.write_pack(pack.substr(pos, n)); !s)
            return fail(s.error());
        pos += n;
    }
    auto summary = writer.finish();
    std::ofstream(path, std::ios::binary) << bytes;
    if (summary) {
        EXPECT_EQ(summary->bundle_size, bytes.size());
        EXPECT_EQ(summary->sha256, sha256_hex(bytes));
    }
    return summary;
}

void check_full_bundle_round_trip(const std::string& object_format) {
    Fixture f(object_format);
    BundleHeader header{.object_format = object_format, .refs = f.refs()};
    std::string pack = f.pack("--all\n");
    fs::path bundle = f.dir.path() / "full.bundle";
    auto summary = write_bundle(bundle, header, pack);
    ASSERT_TRUE(summary) << summary.error().message;
    EXPECT_EQ(summary->object_count, 3u * 3u + 1u); // 3 commits, 3 trees, 3 blobs, 1 tag
    EXPECT_EQ(summary->pack_size, pack.size());

    fs::path check = f.dir.path() / "check";
    git_ok(f.home, f.dir.path(),
           {"init", "-q", "--bare", "--object-format=" + object_format, check.string()});
    git_ok(f.home, check, {"bundle", "verify", bundle.string()});
    fs::path clone = f.dir.path() / "clone";
    git_ok(f.home, f.dir.path(), {"clone", "-q", "--mirror", bundle.string(), clone.string()});
    git_ok(f.home, clone, {"fsck", "--full", "--strict"});
    EXPECT_EQ(git_ok(f.home, clone, {"for-each-ref"}), git_ok(f.home, f.repo, {"for-each-ref"}));

    // The header parser reads back exactly what was written.
    auto text = read_file(bundle);
    ASSERT_TRUE(text);
    auto parsed = parse_bundle_header(*text);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->header, header);
    EXPECT_EQ(text->substr(parsed->size, 4), "PACK");
}

} // namespace

TEST(BundleWriter, FullSha1BundleVerifiesAndClones) {
    check_full_bundle_round_trip("sha1");
}

TEST(BundleWriter, FullSha256BundleVerifiesAndClones) {
    check_full_bundle_round_trip("sha256");
}

TEST(BundleWriter, IncrementalThinBundleWithPrerequisites) {
    Fixture f("sha1");
    std::string old_tip = trim(git_ok(f.home, f.repo, {"rev-parse", "old"}));
    std::string main_tip = trim(git_ok(f.home, f.repo, {"rev-parse", "main"}));
    BundleHeader header{.prerequisites = {old_tip}, .refs = {{main_tip, "refs/heads/main"}}};
    std::string pack = f.pack("main\n^" + old_tip + "\n", true);
    fs::path bundle = f.dir.path() / "incr.bundle";
    auto summary = write_bundle(bundle, header, pack);
    ASSERT_TRUE(summary) << summary.error().message;

    // A repository holding only `old` can fetch it; one without cannot verify it.
    fs::path base = f.dir.path() / "base";
    git_ok(f.home, f.dir.path(), {"init", "-q", "--bare", base.string()});
    git_ok(f.home, base, {"fetch", "-q", f.repo.string(), "+refs/heads/old:refs/heads/old"});
    git_ok(f.home, base, {"bundle", "verify", bundle.string()});
    git_ok(f.home, base, {"fetch", "-q", bundle.string(), "+refs/*:refs/*"});
    git_ok(f.home, base, {"fsck", "--full"});
    EXPECT_EQ(trim(git_ok(f.home, base, {"rev-parse", "main"})), main_tip);

    fs::path empty = f.dir.path() / "empty";
    git_ok(f.home, f.dir.path(), {"init", "-q", "--bare", empty.string()});
    EXPECT_NE(git_exit(f.home, empty, {"bundle", "verify", bundle.string()}), 0);
}

TEST(BundleWriter, DetectsAFlippedByteAnywhereInThePack) {
    Fixture f("sha1");
    BundleHeader header{.refs = f.refs()};
    std::string pack = f.pack("--all\n");
    for (std::size_t pos : {std::size_t{20}, pack.size() / 2, pack.size() - 25, pack.size() - 1}) {
        std::string bad = pack;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
        auto summary = write_bundle(f.dir.path() / "bad.bundle", header, bad);
        ASSERT_FALSE(summary) << "flip at " << pos;
        EXPECT_EQ(summary.error().kind, ErrorKind::Integrity);
    }
}

TEST(BundleWriter, RejectsTruncatedAndForeignPacks) {
    Fixture f("sha256");
    BundleHeader header{.object_format = "sha256", .refs = f.refs()};
    std::string pack = f.pack("--all\n");
    EXPECT_FALSE(write_bundle(f.dir.path() / "a", header, pack.substr(0, pack.size() - 1)));
    EXPECT_FALSE(write_bundle(f.dir.path() / "b", header, pack.substr(0, 10)));
    EXPECT_FALSE(write_bundle(f.dir.path() / "c", header, "PACK\0\0\0\x04" + pack.substr(8)));
    EXPECT_FALSE(write_bundle(f.dir.path() / "d", header, "KCAP" + pack.substr(4)));
    // A SHA-1 trailer does not pass for a SHA-256 bundle.
    Fixture g("sha1");
    auto summary = write_bundle(f.dir.path() / "e", header, g.pack("--all\n"));
    EXPECT_FALSE(summary);
}

TEST(BundleHeaderFormat, RejectsBadInput) {
    EXPECT_FALSE(format_bundle_header({.object_format = "md5"}));
    EXPECT_FALSE(format_bundle_header({.prerequisites = {"xyz"}}));
    EXPECT_FALSE(format_bundle_header({.refs = {{std::string(40, 'a'), "refs/heads/a b"}}}));
    EXPECT_FALSE(format_bundle_header({.refs = {{std::string(64, 'a'), "refs/heads/a"}}}));
    auto ok = format_bundle_header(
        {.prerequisites = {std::string(40, 'b')}, .refs = {{std::string(40, 'a'), "refs/heads/a"}}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, "# v2 git bundle\n-" + std::string(40, 'b') + "\n" + std::string(40, 'a') +
                       " refs/heads/a\n\n");
}

TEST(BundleHeaderParse, AcceptsGitsOwnFormsAndRejectsMalformed) {
    std::string a(40, 'a');
    auto parsed =
        parse_bundle_header("# v2 git bundle\n-" + a + " some commit subject\n" + a + " HEAD\n\nPACK");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->header.prerequisites, std::vector<std::string>{a});
    EXPECT_EQ(parsed->header.refs.size(), 1u);
    auto v3 = parse_bundle_header("# v3 git bundle\n@object-format=sha256\n@filter=blob:none\n" +
                                  std::string(64, 'c') + " refs/heads/x\n\n");
    ASSERT_TRUE(v3);
    EXPECT_EQ(v3->header.object_format, "sha256");
    EXPECT_EQ(v3->header.capabilities, std::vector<std::string>{"filter=blob:none"});

    for (std::string bad :
         {std::string("# v4 git bundle\n\n"), std::string("# v2 git bundle\n") + a + " refs/x\n",
          std::string("# v2 git bundle\n") + a + "\n\n", std::string("# v2 git bundle\nzz refs/x\n\n"),
          std::string("# v3 git bundle\n@object-format=md5\n\n"), std::string("")}) {
        auto r = parse_bundle_header(bad);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_EQ(r.error().kind, ErrorKind::Integrity);
        }
    }
}
