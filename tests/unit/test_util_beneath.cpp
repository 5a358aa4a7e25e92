// open_beneath() and make_dirs_beneath() never pass through a symbolic link,
// with openat2 and with the per-component fallback of older kernels.
#include "snapshotter/util/beneath.hpp"
#include "snapshotter/util/fs.hpp"

#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace snapshotter;

namespace {

class Beneath : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        force_openat2_fallback(GetParam());
        auto dir = TempDir::create("test-beneath");
        ASSERT_TRUE(dir) << dir.error().message;
        m_dir.emplace(std::move(*dir));
        root = m_dir->path() / "root";
        outside = m_dir->path() / "outside";
        fs::create_directories(root / "a" / "b");
        fs::create_directories(outside);
        std::ofstream(root / "a" / "b" / "file") << "inside";
        std::ofstream(outside / "file") << "outside";
        fs::create_directory_symlink(outside, root / "a" / "dirlink");
        fs::create_symlink(outside / "file", root / "a" / "b" / "filelink");
        int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        root_fd = UniqueFd(fd);
    }
    void TearDown() override { force_openat2_fallback(false); }

    std::optional<TempDir> m_dir;
    fs::path root, outside;
    UniqueFd root_fd;
};

TEST_P(Beneath, OpensPlainPaths) {
    auto fd = open_beneath(root_fd.get(), "a/b/file", O_RDONLY);
    ASSERT_TRUE(fd) << fd.error();
    auto text = read_fd(fd->get(), "a/b/file");
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "inside");
    auto missing = open_beneath(root_fd.get(), "a/b/none", O_RDONLY);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), ENOENT);
}

TEST_P(Beneath, RefusesASymlinkedDirectoryOnTheWay) {
    auto fd = open_beneath(root_fd.get(), "a/dirlink/file", O_RDONLY);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error(), ELOOP);
    auto dir = open_beneath(root_fd.get(), "a/dirlink", O_RDONLY | O_DIRECTORY);
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error(), ELOOP);
}

TEST_P(Beneath, RefusesASymlinkedFile) {
    auto fd = open_beneath(root_fd.get(), "a/b/filelink", O_RDONLY);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error(), ELOOP);
}

TEST_P(Beneath, RefusesDotDotAndAbsolutePaths) {
    for (const char* path : {"../outside/file", "a/../../outside/file", "/etc/passwd", ""}) {
        auto fd = open_beneath(root_fd.get(), path, O_RDONLY);
        EXPECT_FALSE(fd) << path;
    }
}

TEST_P(Beneath, MakeDirsCreatesAndRefusesSymlinks) {
    auto made = make_dirs_beneath(root_fd.get(), "a/b/c/d", true);
    ASSERT_TRUE(made) << made.error();
    EXPECT_TRUE(fs::is_directory(root / "a" / "b" / "c" / "d"));
    auto through = make_dirs_beneath(root_fd.get(), "a/dirlink/new", true);
    ASSERT_FALSE(through);
    EXPECT_EQ(through.error(), ELOOP);
    EXPECT_FALSE(fs::exists(outside / "new"));
    auto self = make_dirs_beneath(root_fd.get(), "", false);
    ASSERT_TRUE(self);
}

INSTANTIATE_TEST_SUITE_P(Openat2AndFallback, Beneath, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "openat2"; });

} // namespace
