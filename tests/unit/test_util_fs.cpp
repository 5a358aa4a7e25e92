#include "snapshotter/util/fs.hpp"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace snapshotter;

namespace {

class FsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto dir = TempDir::create("test-fs");
        ASSERT_TRUE(dir) << dir.error().message;
        m_dir.emplace(std::move(*dir));
    }
    [[nodiscard]] const fs::path& dir() const { return m_dir->path(); }

    // Names of the entries of `d`, sorted.
    static std::vector<std::string> entries(const fs::path& d) {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(d))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

    static void write_plain(const fs::path& p, std::string_view data) {
        std::ofstream out(p, std::ios::binary);
        out << data;
    }

    static std::string read_plain(const fs::path& p) {
        auto text = read_file(p);
        EXPECT_TRUE(text) << text.error().message;
        return text.value_or("<unreadable>");
    }

  private:
    std::optional<TempDir> m_dir;
};

bool is_temp_name(const std::string& name) {
    return name.starts_with(k_temp_prefix);
}

} // namespace

TEST_F(FsTest, AtomicFileIsInvisibleUntilCommit) {
    const auto path = dir() / "obj";
    auto file = AtomicFile::create(path);
    ASSERT_TRUE(file) << file.error().message;
    ASSERT_TRUE(file->write("hello "));
    ASSERT_TRUE(file->write(std::as_bytes(std::span<const char>("world", 5))));
    EXPECT_EQ(file->size(), 11u);
    EXPECT_FALSE(fs::exists(path));
    auto names = entries(dir());
    ASSERT_EQ(names.size(), 1u);
    EXPECT_TRUE(is_temp_name(names[0])) << names[0];

    ASSERT_TRUE(file->commit(Overwrite::no));
    EXPECT_EQ(read_plain(path), "hello world");
    EXPECT_EQ(entries(dir()), std::vector<std::string>{"obj"});
}

TEST_F(FsTest, AtomicFileCreatesParentDirectories) {
    const auto path = dir() / "a" / "b" / "c.json";
    ASSERT_TRUE(write_file_atomic(path, "{}", Overwrite::no));
    EXPECT_EQ(read_plain(path), "{}");
}

TEST_F(FsTest, AtomicFileParentsRacedByManyThreads) {
    // Every writer finds a/b/c missing; losing the race to mkdir is not an error.
    constexpr int k_writers = 8;
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < k_writers; ++i)
        threads.emplace_back([&, i] {
            if (write_file_atomic(dir() / "a" / "b" / "c" / std::to_string(i), "x", Overwrite::no))
                ++ok;
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), k_writers);
    EXPECT_EQ(entries(dir() / "a" / "b" / "c").size(), static_cast<std::size_t>(k_writers));
}

TEST_F(FsTest, AtomicFileUnderAFileIsAStorageError) {
    write_plain(dir() / "plain", "not a directory");
    auto file = AtomicFile::create(dir() / "plain" / "sub" / "obj");
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().kind, ErrorKind::Storage);
}

TEST_F(FsTest, AtomicOnlyCommitPublishesAndStillConflicts) {
    const auto path = dir() / "hint" / "latest.json";
    ASSERT_TRUE(write_file_atomic(path, "1", Overwrite::no, Durability::atomic_only));
    auto again = write_file_atomic(path, "2", Overwrite::no, Durability::atomic_only);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().kind, ErrorKind::Conflict);
    ASSERT_TRUE(write_file_atomic(path, "3", Overwrite::yes, Durability::atomic_only));
    EXPECT_EQ(read_plain(path), "3");
    EXPECT_EQ(entries(dir() / "hint"), std::vector<std::string>{"latest.json"});
}

TEST_F(FsTest, AtomicFileWithABareRelativeName) {
    const auto old_cwd = fs::current_path();
    fs::current_path(dir());
    auto written = write_file_atomic("relative.json", "{}", Overwrite::no);
    auto conflict = write_file_atomic("relative.json", "{}", Overwrite::no);
    fs::current_path(old_cwd);
    ASSERT_TRUE(written) << written.error().message;
    EXPECT_EQ(read_plain(dir() / "relative.json"), "{}");
    ASSERT_FALSE(conflict);
    EXPECT_EQ(conflict.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(entries(dir()), std::vector<std::string>{"relative.json"});
}

TEST_F(FsTest, AtomicFileDestroyedWithoutCommitLeavesNothing) {
    const auto path = dir() / "obj";
    {
        auto file = AtomicFile::create(path);
        ASSERT_TRUE(file);
        ASSERT_TRUE(file->write("partial"));
        EXPECT_EQ(entries(dir()).size(), 1u);
    }
    EXPECT_TRUE(entries(dir()).empty());
}

TEST_F(FsTest, MovedAtomicFileKeepsItsTempFileUntilCommit) {
    const auto path = dir() / "obj";
    auto file = AtomicFile::create(path);
    ASSERT_TRUE(file);
    std::optional<AtomicFile> moved;
    {
        AtomicFile temp(std::move(*file));
        moved.emplace(std::move(temp));
    } // the moved-from objects are destroyed here and must not delete anything
    ASSERT_TRUE(moved->write("data"));
    ASSERT_TRUE(moved->commit(Overwrite::no));
    EXPECT_EQ(read_plain(path), "data");
}

TEST_F(FsTest, OverwriteNoConflictsAndKeepsTheOriginal) {
    const auto path = dir() / "obj";
    write_plain(path, "original");
    auto file = AtomicFile::create(path);
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->write("replacement"));
    auto committed = file->commit(Overwrite::no);
    ASSERT_FALSE(committed);
    EXPECT_EQ(committed.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(read_plain(path), "original");
}

TEST_F(FsTest, FailedCommitLeavesNoTempFile) {
    const auto path = dir() / "obj";
    write_plain(path, "original");
    {
        auto file = AtomicFile::create(path);
        ASSERT_TRUE(file);
        ASSERT_TRUE(file->write("replacement"));
        EXPECT_FALSE(file->commit(Overwrite::no));
    }
    EXPECT_EQ(entries(dir()), std::vector<std::string>{"obj"});
}

TEST_F(FsTest, OverwriteYesReplaces) {
    const auto path = dir() / "obj";
    write_plain(path, "original");
    ASSERT_TRUE(write_file_atomic(path, "replacement", Overwrite::yes));
    EXPECT_EQ(read_plain(path), "replacement");
    EXPECT_EQ(entries(dir()), std::vector<std::string>{"obj"});
}

TEST_F(FsTest, OverwriteNoIsAtomicUnderRace) {
    // Many writers prepared before any commits: exactly one may publish.
    const auto path = dir() / "obj";
    constexpr int k_writers = 16;
    std::vector<AtomicFile> files;
    for (int i = 0; i < k_writers; ++i) {
        auto file = AtomicFile::create(path);
        ASSERT_TRUE(file);
        ASSERT_TRUE(file->write("writer " + std::to_string(i)));
        files.push_back(std::move(*file));
    }
    std::atomic<int> ok{0}, conflicts{0}, other{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (auto& file : files)
        threads.emplace_back([&] {
            while (!go.load())
                std::this_thread::yield();
            auto s = file.commit(Overwrite::no);
            if (s)
                ++ok;
            else if (s.error().kind == ErrorKind::Conflict)
                ++conflicts;
            else
                ++other;
        });
    go = true;
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(conflicts.load(), k_writers - 1);
    EXPECT_EQ(other.load(), 0);
    EXPECT_TRUE(read_plain(path).starts_with("writer "));
    files.clear();
    EXPECT_EQ(entries(dir()), std::vector<std::string>{"obj"});
}

TEST_F(FsTest, WriteAndCommitAfterCommitFail) {
    auto file = AtomicFile::create(dir() / "obj");
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->commit(Overwrite::no));
    auto w = file->write("late");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().kind, ErrorKind::Internal);
    EXPECT_FALSE(file->commit(Overwrite::yes));
}

TEST_F(FsTest, ReadFileMissingIsNotFound) {
    auto text = read_file(dir() / "missing");
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().kind, ErrorKind::NotFound);
}

TEST_F(FsTest, ReadFileLimits) {
    const auto path = dir() / "ten";
    write_plain(path, "0123456789");
    auto exact = read_file(path, 10);
    ASSERT_TRUE(exact);
    EXPECT_EQ(*exact, "0123456789");
    auto over = read_file(path, 9);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().kind, ErrorKind::Storage);
    EXPECT_NE(over.error().message.find("larger than 9 bytes"), std::string::npos) << over.error().message;
}

TEST_F(FsTest, ReadFileLargerThanOneBuffer) {
    const auto path = dir() / "big";
    std::string data(200'000, 'x');
    data[150'000] = 'y';
    write_plain(path, data);
    auto whole = read_file(path);
    ASSERT_TRUE(whole);
    EXPECT_EQ(*whole, data);
    EXPECT_FALSE(read_file(path, 199'999));
}

TEST_F(FsTest, ReadFileEmpty) {
    const auto path = dir() / "empty";
    write_plain(path, "");
    auto text = read_file(path, 0);
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "");
}

TEST_F(FsTest, ReadFileOfADirectoryFails) {
    auto text = read_file(dir());
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().kind, ErrorKind::Storage);
}

TEST_F(FsTest, IsAbsentOrEmptyDir) {
    EXPECT_EQ(is_absent_or_empty_dir(dir() / "missing"), true);
    fs::create_directory(dir() / "empty");
    EXPECT_EQ(is_absent_or_empty_dir(dir() / "empty"), true);
    fs::create_directory(dir() / "full");
    write_plain(dir() / "full" / ".hidden", "");
    EXPECT_EQ(is_absent_or_empty_dir(dir() / "full"), false);
    write_plain(dir() / "file", "x");
    EXPECT_EQ(is_absent_or_empty_dir(dir() / "file"), false);
}

TEST(TempDir, CreatedPrivateAndRemovedRecursively) {
    fs::path path;
    {
        auto dir = TempDir::create("label");
        ASSERT_TRUE(dir) << dir.error().message;
        path = dir->path();
        EXPECT_TRUE(fs::is_directory(path));
        EXPECT_NE(path.filename().string().find("label"), std::string::npos);
        EXPECT_TRUE(path.filename().string().starts_with(k_temp_prefix));
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0700u);
        fs::create_directories(path / "a" / "b");
        std::ofstream(path / "a" / "b" / "f") << "x";
    }
    EXPECT_FALSE(fs::exists(path));
}

TEST(TempDir, UnderParentAndMovable) {
    auto parent = TempDir::create("parent");
    ASSERT_TRUE(parent);
    fs::path path;
    {
        std::optional<TempDir> child;
        {
            auto created = TempDir::create("child", parent->path() / "nested");
            ASSERT_TRUE(created);
            child.emplace(std::move(*created));
        } // the moved-from one must not remove the directory
        path = child->path();
        EXPECT_EQ(path.parent_path(), parent->path() / "nested");
        TempDir moved(std::move(*child));
        child.reset(); // nor this one
        EXPECT_TRUE(fs::is_directory(path));
        EXPECT_EQ(moved.path(), path);
    }
    EXPECT_FALSE(fs::exists(path));
}

TEST(TempDir, TwoAreDistinct) {
    auto a = TempDir::create("same");
    auto b = TempDir::create("same");
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->path(), b->path());
}

namespace {

// Make `path` look `age` old to a sweeper.
void age(const fs::path& path, std::chrono::hours age) {
    fs::last_write_time(path, fs::file_time_type::clock::now() - age);
}

} // namespace

TEST(TempDirSweep, RemovesOnlyAbandonedOldOwnDirectories) {
    auto base = TempDir::create("sweep-base");
    ASSERT_TRUE(base);
    const fs::path b = base->path();
    // Left by a process that died holding it: created in a child that exits
    // without running destructors, as a SIGKILL would.
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto leaked = TempDir::create("git-credential", b);
        if (leaked)
            std::ofstream(leaked->path() / "credentials") << "https://user:token@host\n";
        ::_exit(leaked ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::vector<fs::path> abandoned;
    for (const auto& e : fs::directory_iterator(b))
        abandoned.push_back(e.path());
    ASSERT_EQ(abandoned.size(), 1u);
    age(abandoned[0], std::chrono::hours{2});

    auto live = TempDir::create("live", b); // held by this process
    ASSERT_TRUE(live);
    age(live->path(), std::chrono::hours{2});
    const fs::path young = b / (std::string(k_temp_prefix) + "young-abc123");
    fs::create_directory(young);
    const fs::path other = b / "not-ours";
    fs::create_directory(other);
    age(other, std::chrono::hours{2});
    const fs::path temp_file = b / (std::string(k_temp_prefix) + "obj.json.0123456789ab");
    std::ofstream(temp_file) << "x";
    const fs::path link = b / (std::string(k_temp_prefix) + "link-abc123");
    fs::create_directory_symlink(other, link);

    EXPECT_EQ(sweep_abandoned_temp_dirs(b), 1u);
    EXPECT_FALSE(fs::exists(abandoned[0]));
    EXPECT_TRUE(fs::is_directory(live->path()));
    EXPECT_TRUE(fs::is_directory(young));
    EXPECT_TRUE(fs::is_directory(other));
    EXPECT_TRUE(fs::exists(temp_file));
    EXPECT_TRUE(fs::is_symlink(link));
    // Young ones go once they are old enough; the live one never while held.
    EXPECT_EQ(sweep_abandoned_temp_dirs(b, std::chrono::seconds{0}), 1u);
    EXPECT_FALSE(fs::exists(young));
    EXPECT_TRUE(fs::is_directory(live->path()));
}

TEST(TempDirSweep, MissingBaseIsNothingToDo) {
    EXPECT_EQ(sweep_abandoned_temp_dirs("/nonexistent/snapshotter-sweep"), 0u);
}

TEST(RandomHex, LengthAndAlphabet) {
    auto h = random_hex(6);
    EXPECT_EQ(h.size(), 12u);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
    EXPECT_NE(random_hex(16), random_hex(16));
    EXPECT_EQ(random_hex(0), "");
}

TEST_F(FsTest, FileLockIsExclusiveUntilReleased) {
    const auto path = dir() / "locks" / "mirror.lock";
    std::optional<FileLock> first;
    {
        auto lock = FileLock::acquire(path);
        ASSERT_TRUE(lock) << lock.error().message;
        first.emplace(std::move(*lock));
    }
    EXPECT_TRUE(fs::exists(path));
    std::atomic<bool> second_held{false};
    std::thread waiter([&] {
        auto lock = FileLock::acquire(path);
        second_held = lock.has_value();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(second_held.load()) << "a second holder got the lock while the first held it";
    first.reset();
    waiter.join();
    EXPECT_TRUE(second_held.load());
}

TEST_F(FsTest, FileLockFailsWhenTheLockFileCannotBeCreated) {
    write_plain(dir() / "file", "x");
    auto lock = FileLock::acquire(dir() / "file" / "sub.lock");
    ASSERT_FALSE(lock);
    EXPECT_EQ(lock.error().kind, ErrorKind::Storage);
}
