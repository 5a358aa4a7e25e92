// git::AsyncPackScanner: the same reports and summary as a PackScanner fed
// directly, whatever the write sizes; a scan failure reaches feed() and
// finish(); a tiny queue blocks and still completes; cancel and the
// destructor stop the thread mid-pack.
#include "git_test_repo.hpp"
#include "snapshotter/git/async_scan.hpp"
#include "snapshotter/util/fs.hpp"

#include <atomic>
#include <chrono>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

using namespace snapshotter;
using namespace snapshotter::git;
using snapshotter::testing::git_ok;

namespace {

// A pack of a small history: a text file edited in each commit (blob deltas) and tiny blobs.
struct Pack {
    TempDir dir = std::move(*TempDir::create("async-scan-test"));
    std::string bytes;

    Pack() {
        const auto home = dir.path() / "home", repo = dir.path() / "repo";
        std::filesystem::create_directories(home);
        git_ok(home, dir.path(), {"init", "-q", repo.string()});
        std::string body;
        for (int i = 0; i < 30; ++i) {
            body += "line " + std::to_string(i) + " of a file edited in every commit\n";
            std::ofstream(repo / "file.txt") << body;
            std::ofstream(repo / ("small-" + std::to_string(i % 7) + ".txt")) << "small " << i << "\n";
            git_ok(home, repo, {"add", "."});
            git_ok(home, repo, {"commit", "-q", "-m", "commit " + std::to_string(i)});
        }
        bytes =
            git_ok(home, repo, {"pack-objects", "--stdout", "--revs", "-q", "--delta-base-offset", "--all"},
                   std::string{});
    }
};

struct Seen {
    std::vector<std::string> commits, blobs;
    bool operator==(const Seen&) const = default;
};

PackScanner scanner_into(Seen& seen, std::chrono::microseconds delay = {}) {
    return PackScanner(PackScanOptions{.max_blob_size = 1024},
                       PackScanCallbacks{.on_commit = [&seen](const ScannedCommit& c) -> Status {
                                             seen.commits.push_back(c.oid);
                                             return {};
                                         },
                                         .on_blob = [&seen, delay](const ScannedBlob& b) -> Status {
                                             if (delay.count() > 0)
                                                 std::this_thread::sleep_for(delay);
                                             seen.blobs.push_back(b.oid + ":" + b.content);
                                             return {};
                                         }});
}

void expect_integrity_failure(AsyncPackScanner& async) {
    auto finished = async.finish();
    ASSERT_FALSE(finished);
    EXPECT_EQ(finished.error().kind, ErrorKind::Integrity);
}

TEST(AsyncPackScanner, ReportsWhatADirectScanReportsWhateverTheWriteSizes) {
    Pack pack;
    Seen direct;
    auto sync = scanner_into(direct);
    ASSERT_TRUE(sync.feed(pack.bytes));
    auto expected = sync.finish();
    ASSERT_TRUE(expected) << expected.error().message;
    ASSERT_GT(direct.blobs.size(), 10U);
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, pack.bytes.size()}) {
        Seen seen;
        AsyncPackScanner async(scanner_into(seen));
        for (std::size_t at = 0; at < pack.bytes.size(); at += step)
            ASSERT_TRUE(async.feed(std::string_view(pack.bytes).substr(at, step)));
        auto summary = async.finish();
        ASSERT_TRUE(summary) << summary.error().message;
        EXPECT_EQ(summary->object_count, expected->object_count);
        EXPECT_EQ(summary->blobs, expected->blobs);
        EXPECT_EQ(seen, direct) << "step " << step;
        EXPECT_TRUE(async.finish()); // a second finish() answers the same
    }
}

TEST(AsyncPackScanner, ATinyQueueBlocksTheWriterAndStillCompletes) {
    Pack pack;
    Seen direct, seen;
    auto sync = scanner_into(direct);
    ASSERT_TRUE(sync.feed(pack.bytes));
    ASSERT_TRUE(sync.finish());
    AsyncPackScanner async(scanner_into(seen, std::chrono::microseconds{200}), 1);
    for (std::size_t at = 0; at < pack.bytes.size(); at += 100)
        ASSERT_TRUE(async.feed(std::string_view(pack.bytes).substr(at, 100)));
    ASSERT_TRUE(async.finish());
    EXPECT_EQ(seen, direct);
}

TEST(AsyncPackScanner, AScanFailureReachesFeedAndFinish) {
    Pack pack;
    std::string corrupt = pack.bytes;
    corrupt[0] = 'J'; // not "PACK"
    Seen seen;
    AsyncPackScanner async(scanner_into(seen));
    Status fed;
    for (int i = 0; i < 2000 && fed; ++i) { // the thread fails on the first bytes; feed() then says so
        fed = async.feed(std::string_view(corrupt).substr(0, 16));
        std::this_thread::sleep_for(std::chrono::microseconds{100});
    }
    ASSERT_FALSE(fed);
    EXPECT_EQ(fed.error().kind, ErrorKind::Integrity);
    expect_integrity_failure(async);
}

TEST(AsyncPackScanner, ATruncatedPackFailsAtFinish) {
    Pack pack;
    Seen seen;
    AsyncPackScanner async(scanner_into(seen));
    ASSERT_TRUE(async.feed(std::string_view(pack.bytes).substr(0, pack.bytes.size() - 30)));
    expect_integrity_failure(async);
}

TEST(AsyncPackScanner, CancelAndTheDestructorStopMidPack) {
    Pack pack;
    Seen seen;
    {
        AsyncPackScanner async(scanner_into(seen, std::chrono::microseconds{500}), 1);
        ASSERT_TRUE(async.feed(std::string_view(pack.bytes).substr(0, pack.bytes.size() / 2)));
        async.cancel();
        EXPECT_FALSE(async.feed("more"));
        EXPECT_FALSE(async.finish());
    }
    Seen other;
    {
        AsyncPackScanner async(scanner_into(other, std::chrono::microseconds{500}), 1);
        ASSERT_TRUE(async.feed(pack.bytes));
    } // destroyed without finish(): joins, does not hang
    SUCCEED();
}

TEST(PackScanKnownBound, PastMaxKnownDeltasAreReportedUnresolvedNotSkipped) {
    Pack pack;
    auto scan = [&](std::uint64_t max_known) {
        PackScanner scanner(PackScanOptions{.max_blob_size = 4096, .max_known = max_known},
                            PackScanCallbacks{});
        EXPECT_TRUE(scanner.feed(pack.bytes));
        auto summary = scanner.finish();
        EXPECT_TRUE(summary) << summary.error().message;
        return summary.value_or(PackScanSummary{});
    };
    const auto all = scan(4'000'000);
    ASSERT_GT(all.deltas, 5U);
    EXPECT_EQ(all.unresolved, 0U); // a full pack: every base is in it
    EXPECT_EQ(all.forgotten, 0U);
    const auto bounded = scan(3);
    EXPECT_GT(bounded.forgotten, 0U);
    EXPECT_GT(bounded.unresolved, 0U);
    // Every blob the unbounded scan reported is reported or counted unresolved (never skipped).
    EXPECT_GE(bounded.blobs + bounded.unresolved, all.blobs);
    EXPECT_EQ(bounded.object_count, all.object_count);
}

} // namespace
