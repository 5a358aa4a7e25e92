// download_bundle(): a stored bundle larger than its manifest says is read
// only to the manifest's size plus one byte, and nothing is left at the path.
#include "snapshotter/snapshot/catalog.hpp"

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
