// The file:// backend never follows a symbolic link inside its root: reads,
// writes, updates, deletes and listings refuse or skip it, with openat2 and
// with the per-component fallback.
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/beneath.hpp"

#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::storage;

namespace {

std::string read_plain(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FileSymlinks : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        force_openat2_fallback(GetParam());
        auto dir = TempDir::create("test-file-storage");
        ASSERT_TRUE(dir) << dir.error().message;
        m_dir.emplace(std::move(*dir));
        root = m_dir->path() / "root";
        outside = m_dir->path() / "outside";
        fs::create_directories(root / "repos" / "a");
        fs::create_directories(outside);
        std::ofstream(outside / "x.bundle") << "outside";
        // repos/a/bundles -> outside; repos/a/manifests/m.json -> outside/x.bundle
        fs::create_directory_symlink(outside, root / "repos" / "a" / "bundles");
        fs::create_directories(root / "repos" / "a" / "manifests");
        fs::create_symlink(outside / "x.bundle", root / "repos" / "a" / "manifests" / "m.json");
        auto opened = open({.url = "file://" + root.string()});
        ASSERT_TRUE(opened) << opened.error().message;
        storage = std::move(*opened);
    }
    void TearDown() override { force_openat2_fallback(false); }

    void expect_refused(const Status& s, std::string_view key) {
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().kind, ErrorKind::Integrity) << s.error().message;
        EXPECT_NE(s.error().message.find(key), std::string::npos) << s.error().message;
        EXPECT_NE(s.error().message.find("symbolic link"), std::string::npos) << s.error().message;
    }

    std::optional<TempDir> m_dir;
    fs::path root, outside;
    std::unique_ptr<Storage> storage;
};

TEST_P(FileSymlinks, ReadsRefuseSymlinkedDirectoriesAndFiles) {
    auto through = storage->get("repos/a/bundles/x.bundle");
    expect_refused(through ? Status{} : fail(through.error()), "repos/a/bundles/x.bundle");
    auto leaf = storage->get("repos/a/manifests/m.json");
    expect_refused(leaf ? Status{} : fail(leaf.error()), "repos/a/manifests/m.json");
    auto head = storage->head("repos/a/bundles/x.bundle");
    expect_refused(head ? Status{} : fail(head.error()), "repos/a/bundles/x.bundle");
}

TEST_P(FileSymlinks, DeletesNeverReachOutside) {
    std::vector<std::string> keys{"repos/a/bundles/x.bundle"};
    expect_refused(storage->remove(keys), "repos/a/bundles/x.bundle");
    EXPECT_EQ(read_plain(outside / "x.bundle"), "outside");
    // The link itself as the object: removing it leaves its target alone.
    std::vector<std::string> leaf{"repos/a/manifests/m.json"};
    EXPECT_TRUE(storage->remove(leaf));
    EXPECT_FALSE(fs::exists(fs::symlink_status(root / "repos" / "a" / "manifests" / "m.json")));
    EXPECT_EQ(read_plain(outside / "x.bundle"), "outside");
}

TEST_P(FileSymlinks, WritesAndUpdatesNeverReachOutside) {
    expect_refused(storage->put("repos/a/bundles/new.bundle", "data", Overwrite::no),
                   "repos/a/bundles/new.bundle");
    auto updated = storage->update(
        "repos/a/bundles/p.json", [](const auto&) { return std::optional<std::string>("x"); },
        Durability::atomic_only);
    expect_refused(updated ? Status{} : fail(updated.error()), "repos/a/bundles/p.json");
    // Replacing a symlinked object replaces the link, never its target.
    EXPECT_TRUE(storage->put("repos/a/manifests/m.json", "new", Overwrite::yes));
    EXPECT_EQ(read_plain(outside / "x.bundle"), "outside");
    EXPECT_EQ(read_plain(root / "repos" / "a" / "manifests" / "m.json"), "new");
    EXPECT_EQ(std::distance(fs::directory_iterator(outside), fs::directory_iterator()), 1);
}

// A new object's directories are created unsynced and fsync'd at its
// commit: the walk that creates them refuses a link on the way as well,
// whether the link leads to a directory or nowhere, and creates nothing
// beyond it.
TEST_P(FileSymlinks, DirectoriesCreatedForAWriteNeverPassALink) {
    expect_refused(storage->put("repos/a/bundles/deeper/new.bundle", "data", Overwrite::no),
                   "repos/a/bundles/deeper/new.bundle");
    EXPECT_FALSE(fs::exists(outside / "deeper"));
    fs::create_symlink(outside / "missing", root / "repos" / "c");
    expect_refused(storage->put("repos/c/bundles/new.bundle", "data", Overwrite::no),
                   "repos/c/bundles/new.bundle");
    EXPECT_FALSE(fs::exists(outside / "missing"));
    ASSERT_TRUE(storage->put("repos/d/e/f/new.bundle", "data", Overwrite::no));
    EXPECT_EQ(read_plain(root / "repos" / "d" / "e" / "f" / "new.bundle"), "data");
}

TEST_P(FileSymlinks, ListingsSkipLinksAndRefuseALinkedPrefix) {
    ASSERT_TRUE(storage->put("repos/a/manifests/real.json", "{}", Overwrite::no));
    auto all = storage->list("repos/");
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_EQ(all->size(), 1U);
    EXPECT_EQ(all->front().key, "repos/a/manifests/real.json");
    auto linked = storage->list("repos/a/bundles/");
    expect_refused(linked ? Status{} : fail(linked.error()), "repos/a/bundles/");
}

TEST_P(FileSymlinks, PlainObjectsStillWork) {
    ASSERT_TRUE(storage->put("repos/b/bundles/x.bundle", "payload", Overwrite::no));
    auto text = storage->get("repos/b/bundles/x.bundle");
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "payload");
    auto conflict = storage->put("repos/b/bundles/x.bundle", "again", Overwrite::no);
    ASSERT_FALSE(conflict);
    EXPECT_EQ(conflict.error().kind, ErrorKind::Conflict);
    std::vector<std::string> keys{"repos/b/bundles/x.bundle"};
    ASSERT_TRUE(storage->remove(keys));
    EXPECT_FALSE(fs::exists(root / "repos" / "b"));
    EXPECT_TRUE(fs::exists(root / "repos"));
}

INSTANTIATE_TEST_SUITE_P(Openat2AndFallback, FileSymlinks, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "openat2"; });

} // namespace
