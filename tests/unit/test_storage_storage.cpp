// One conformance suite for every Storage backend (file in a temp dir,
// memory), plus the scheme table and key rules of storage.cpp.
#include "snapshotter/storage/storage.hpp"

#include <algorithm>
#include <functional>
#include <gtest/gtest.h>
#include <thread>

using namespace snapshotter;
using namespace snapshotter::storage;

namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// A backend under test: the storage and, for file://, its root directory.
struct Fixture {
    std::unique_ptr<Storage> storage;
    std::optional<TempDir> dir;
};

struct BackendParam {
    std::string label;
    std::function<Fixture()> make;
    friend void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.label; }
};

Fixture make_file_backend() {
    Fixture f;
    auto dir = TempDir::create("test-storage");
    EXPECT_TRUE(dir);
    f.dir.emplace(std::move(*dir));
    auto opened = open({.url = "file://" + (f.dir->path() / "root").string()});
    EXPECT_TRUE(opened) << opened.error().message;
    f.storage = std::move(*opened);
    return f;
}

Fixture make_memory_backend() {
    static int counter = 0;
    Fixture f;
    auto opened = open({.url = "memory://conformance-" + std::to_string(++counter)});
    EXPECT_TRUE(opened) << opened.error().message;
    f.storage = std::move(*opened);
    return f;
}

class StorageConformance : public ::testing::TestWithParam<BackendParam> {
  protected:
    void SetUp() override {
        m_fixture.emplace(GetParam().make());
        ASSERT_NE(m_fixture->storage, nullptr);
    }
    Storage& storage() { return *m_fixture->storage; }

    std::vector<std::string> keys(std::string_view prefix) {
        auto listed = storage().list(prefix);
        EXPECT_TRUE(listed) << listed.error().message;
        std::vector<std::string> out;
        for (const auto& info : listed.value_or(std::vector<ObjectInfo>{}))
            out.push_back(info.key);
        return out;
    }

    bool exists(std::string_view key) {
        auto info = storage().head(key);
        EXPECT_TRUE(info) << info.error().message;
        return info && info->has_value();
    }

    std::string get_ok(std::string_view key) {
        auto data = storage().get(key);
        EXPECT_TRUE(data) << key << ": " << (data ? "" : data.error().message);
        return data.value_or("<missing>");
    }

  private:
    std::optional<Fixture> m_fixture;
};

} // namespace

TEST_P(StorageConformance, CheckSucceeds) {
    EXPECT_TRUE(storage().check());
}

TEST_P(StorageConformance, PutThenGet) {
    ASSERT_TRUE(storage().put("repos/a/manifest.json", "{\"x\":1}", Overwrite::no));
    EXPECT_EQ(get_ok("repos/a/manifest.json"), "{\"x\":1}");
}

TEST_P(StorageConformance, BinaryDataRoundTrips) {
    std::string data;
    for (int i = 0; i < 3 * 256 * 1024 + 17; ++i)
        data.push_back(static_cast<char>(i * 7 % 256));
    ASSERT_TRUE(storage().put("bin", data, Overwrite::no));
    EXPECT_TRUE(get_ok("bin") == data);
    std::string streamed;
    ASSERT_TRUE(storage().read("bin", [&](std::span<const std::byte> chunk) -> Status {
        streamed.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return {};
    }));
    EXPECT_TRUE(streamed == data);
}

TEST_P(StorageConformance, EmptyObject) {
    ASSERT_TRUE(storage().put("empty", "", Overwrite::no));
    EXPECT_EQ(get_ok("empty"), "");
    auto info = storage().head("empty");
    ASSERT_TRUE(info && *info);
    EXPECT_EQ((*info)->size, 0u);
}

TEST_P(StorageConformance, MissingObjectIsNotFound) {
    auto data = storage().get("no/such/key");
    ASSERT_FALSE(data);
    EXPECT_EQ(data.error().kind, ErrorKind::NotFound);
    auto read = storage().read("no/such/key", [](std::span<const std::byte>) -> Status { return {}; });
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().kind, ErrorKind::NotFound);
    auto info = storage().head("no/such/key");
    ASSERT_TRUE(info);
    EXPECT_FALSE(info->has_value());
}

TEST_P(StorageConformance, StreamedWriterIsInvisibleUntilCommit) {
    auto writer = storage().create("repos/a/bundles/1.bundle", Overwrite::no);
    ASSERT_TRUE(writer) << writer.error().message;
    ASSERT_TRUE((*writer)->write(bytes_of("part one, ")));
    ASSERT_TRUE((*writer)->write(bytes_of("")));
    ASSERT_TRUE((*writer)->write(bytes_of("part two")));
    EXPECT_FALSE(exists("repos/a/bundles/1.bundle"));
    EXPECT_TRUE(keys("").empty());
    EXPECT_EQ(storage().get("repos/a/bundles/1.bundle").error().kind, ErrorKind::NotFound);

    ASSERT_TRUE((*writer)->commit());
    EXPECT_EQ(get_ok("repos/a/bundles/1.bundle"), "part one, part two");
    EXPECT_EQ(keys(""), std::vector<std::string>{"repos/a/bundles/1.bundle"});
    EXPECT_FALSE((*writer)->write(bytes_of("late")));
    EXPECT_FALSE((*writer)->commit());
}

TEST_P(StorageConformance, AbortDropsEverything) {
    auto writer = storage().create("k", Overwrite::no);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write(bytes_of("data")));
    (*writer)->abort();
    (*writer)->abort(); // idempotent
    EXPECT_FALSE((*writer)->commit());
    EXPECT_FALSE(exists("k"));
    EXPECT_TRUE(keys("").empty());
    // The key is still free.
    ASSERT_TRUE(storage().put("k", "fresh", Overwrite::no));
    EXPECT_EQ(get_ok("k"), "fresh");
}

TEST_P(StorageConformance, DestroyingAnUncommittedWriterAborts) {
    {
        auto writer = storage().create("dir/k", Overwrite::no);
        ASSERT_TRUE(writer);
        ASSERT_TRUE((*writer)->write(bytes_of("data")));
    }
    EXPECT_FALSE(exists("dir/k"));
    EXPECT_TRUE(keys("").empty());
}

TEST_P(StorageConformance, OverwriteNoConflicts) {
    ASSERT_TRUE(storage().put("m.json", "first", Overwrite::no));
    auto second = storage().put("m.json", "second", Overwrite::no);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(get_ok("m.json"), "first");
    EXPECT_EQ(keys(""), std::vector<std::string>{"m.json"});
}

TEST_P(StorageConformance, OverwriteNoIsCheckedAtCommit) {
    auto early = storage().create("m.json", Overwrite::no);
    ASSERT_TRUE(early);
    ASSERT_TRUE((*early)->write(bytes_of("early")));
    ASSERT_TRUE(storage().put("m.json", "winner", Overwrite::no));
    auto committed = (*early)->commit();
    ASSERT_FALSE(committed);
    EXPECT_EQ(committed.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(get_ok("m.json"), "winner");
}

TEST_P(StorageConformance, OverwriteYesReplaces) {
    ASSERT_TRUE(storage().put("latest.json", "old", Overwrite::yes));
    ASSERT_TRUE(storage().put("latest.json", "new", Overwrite::yes));
    EXPECT_EQ(get_ok("latest.json"), "new");
}

TEST_P(StorageConformance, ListByPrefixIsSorted) {
    for (const char* key : {"repos/b/x", "repos/a/2", "repos/a/10", "repos/ab", "other", "repos/a/sub/deep"})
        ASSERT_TRUE(storage().put(key, key, Overwrite::no)) << key;
    EXPECT_EQ(keys("repos/a"),
              (std::vector<std::string>{"repos/a/10", "repos/a/2", "repos/a/sub/deep", "repos/ab"}));
    EXPECT_EQ(keys("repos/a/"), (std::vector<std::string>{"repos/a/10", "repos/a/2", "repos/a/sub/deep"}));
    EXPECT_EQ(keys(""), (std::vector<std::string>{"other", "repos/a/10", "repos/a/2", "repos/a/sub/deep",
                                                  "repos/ab", "repos/b/x"}));
    EXPECT_EQ(keys("repos/a/sub/deep"), std::vector<std::string>{"repos/a/sub/deep"});
    EXPECT_TRUE(keys("nope/").empty());
    EXPECT_TRUE(keys("repos/c").empty());
}

TEST_P(StorageConformance, ListReportsSizes) {
    ASSERT_TRUE(storage().put("p/one", "1", Overwrite::no));
    ASSERT_TRUE(storage().put("p/three", "333", Overwrite::no));
    auto listed = storage().list("p/");
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 2u);
    EXPECT_EQ((*listed)[0].key, "p/one");
    EXPECT_EQ((*listed)[0].size, 1u);
    EXPECT_EQ((*listed)[1].key, "p/three");
    EXPECT_EQ((*listed)[1].size, 3u);
}

TEST_P(StorageConformance, ListIgnoresObjectsBeingWritten) {
    ASSERT_TRUE(storage().put("p/done", "x", Overwrite::no));
    auto writer = storage().create("p/pending", Overwrite::no);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write(bytes_of("not yet")));
    EXPECT_EQ(keys("p/"), std::vector<std::string>{"p/done"});
    EXPECT_EQ(keys(""), std::vector<std::string>{"p/done"});
}

TEST_P(StorageConformance, Head) {
    ASSERT_TRUE(storage().put("h/obj", "12345", Overwrite::no));
    auto info = storage().head("h/obj");
    ASSERT_TRUE(info);
    ASSERT_TRUE(info->has_value());
    EXPECT_EQ((*info)->key, "h/obj");
    EXPECT_EQ((*info)->size, 5u);
    // A key prefix is not an object.
    auto dir = storage().head("h");
    ASSERT_TRUE(dir);
    EXPECT_FALSE(dir->has_value());
}

TEST_P(StorageConformance, RemoveExistingAndMissingKeys) {
    ASSERT_TRUE(storage().put("r/a", "a", Overwrite::no));
    ASSERT_TRUE(storage().put("r/b", "b", Overwrite::no));
    ASSERT_TRUE(storage().put("keep", "k", Overwrite::no));
    std::vector<std::string> doomed = {"r/a", "r/missing", "never/was", "r/b"};
    ASSERT_TRUE(storage().remove(doomed));
    EXPECT_EQ(keys(""), std::vector<std::string>{"keep"});
    ASSERT_TRUE(storage().remove(doomed)); // again: all missing now
    ASSERT_TRUE(storage().remove(std::span<const std::string>{}));
    // The emptied prefix can be written again.
    ASSERT_TRUE(storage().put("r/a", "again", Overwrite::no));
    EXPECT_EQ(get_ok("r/a"), "again");
}

TEST_P(StorageConformance, InvalidKeysAreRejected) {
    for (const char* key :
         {"", "../x", "a/../../x", "/abs", "a//b", "a/", "./a", "a/./b", "a/..", "x\ny", "tab\tkey"}) {
        auto writer = storage().create(key, Overwrite::no);
        EXPECT_FALSE(writer) << "create accepted \"" << key << "\"";
        EXPECT_FALSE(storage().put(key, "x", Overwrite::yes)) << "put accepted \"" << key << "\"";
        auto got = storage().get(key);
        ASSERT_FALSE(got) << key;
        EXPECT_NE(got.error().kind, ErrorKind::NotFound) << "get of \"" << key << "\" was not refused";
        EXPECT_FALSE(storage().head(key)) << "head accepted \"" << key << "\"";
        std::vector<std::string> one{key};
        EXPECT_FALSE(storage().remove(one)) << "remove accepted \"" << key << "\"";
    }
    EXPECT_TRUE(keys("").empty());
}

TEST_P(StorageConformance, ListNeverEscapes) {
    ASSERT_TRUE(storage().put("inside", "x", Overwrite::no));
    for (const char* prefix : {"../", "..", "../root/", "/", "/tmp/", "a/../../"}) {
        auto listed = storage().list(prefix);
        if (listed) {
            EXPECT_TRUE(listed->empty()) << "list(\"" << prefix << "\") returned " << listed->front().key;
        }
    }
}

TEST_P(StorageConformance, GetMaxBytes) {
    ASSERT_TRUE(storage().put("g", "0123456789", Overwrite::no));
    auto exact = storage().get("g", 10);
    ASSERT_TRUE(exact);
    EXPECT_EQ(*exact, "0123456789");
    auto over = storage().get("g", 9);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().kind, ErrorKind::Storage);
    EXPECT_NE(over.error().message.find("larger than 9 bytes"), std::string::npos) << over.error().message;
}

TEST_P(StorageConformance, SinkErrorStopsRead) {
    ASSERT_TRUE(storage().put("s", "data", Overwrite::no));
    auto read = storage().read(
        "s", [](std::span<const std::byte>) -> Status { return fail(Error::integrity("bad")); });
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().kind, ErrorKind::Integrity);
    EXPECT_EQ(read.error().message, "bad");
}

TEST_P(StorageConformance, KeysWithUnusualButValidBytes) {
    const std::string key = "repos/org%2Fapp/manifests/20261128T073545.123Z-9f3a1c.json";
    ASSERT_TRUE(storage().put(key, "m", Overwrite::no));
    EXPECT_EQ(get_ok(key), "m");
    EXPECT_EQ(keys("repos/org%2Fapp/"), std::vector<std::string>{key});
}

TEST_P(StorageConformance, UpdateCreatesReplacesAndKeeps) {
    auto append = [](const std::optional<std::string>& current) -> std::optional<std::string> {
        return current.value_or("") + "x";
    };
    auto wrote = storage().update("p/counter", append, Durability::durable);
    ASSERT_TRUE(wrote) << wrote.error().message;
    EXPECT_TRUE(*wrote);
    ASSERT_TRUE(storage().update("p/counter", append, Durability::durable));
    EXPECT_EQ(get_ok("p/counter"), "xx");
    // `next` declining leaves the object alone.
    auto kept = storage().update(
        "p/counter", [](const auto&) { return std::optional<std::string>{}; }, Durability::durable);
    ASSERT_TRUE(kept);
    EXPECT_FALSE(*kept);
    EXPECT_EQ(get_ok("p/counter"), "xx");
}

TEST_P(StorageConformance, ConcurrentUpdatesAreNeverLost) {
    // Read-modify-write from several threads at once: a lost update would
    // leave the counter short.
    constexpr int k_threads = 4, k_rounds = 25;
    ASSERT_TRUE(storage().put("p/n", "0", Overwrite::no));
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < k_rounds; ++i)
                // atomic_only: the compare-and-swap must not depend on the fsyncs.
                EXPECT_TRUE(storage().update(
                    "p/n",
                    [](const std::optional<std::string>& current) {
                        return std::optional(std::to_string(std::stoi(current.value_or("0")) + 1));
                    },
                    Durability::atomic_only));
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(get_ok("p/n"), std::to_string(k_threads * k_rounds));
}

TEST_P(StorageConformance, UpdateRejectsInvalidKeys) {
    auto r = storage().update(
        "../x", [](const auto&) { return std::optional<std::string>("x"); }, Durability::durable);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Internal);
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageConformance,
                         ::testing::Values(BackendParam{"file", make_file_backend},
                                           BackendParam{"memory", make_memory_backend}),
                         [](const auto& info) { return info.param.label; });

TEST(StorageOpen, SchemeTable) {
    auto schemes = supported_schemes();
    EXPECT_NE(std::find(schemes.begin(), schemes.end(), "file"), schemes.end());
    EXPECT_NE(std::find(schemes.begin(), schemes.end(), "memory"), schemes.end());

    auto unsupported = open({.url = "gopher://x/y"});
    ASSERT_FALSE(unsupported);
    EXPECT_EQ(unsupported.error().kind, ErrorKind::Payload);
    EXPECT_NE(unsupported.error().message.find("scheme \"gopher\" is not supported"), std::string::npos);
    EXPECT_NE(unsupported.error().message.find("file"), std::string::npos);
}

TEST(StorageOpen, FileUrlsAndPlainPaths) {
    auto dir = TempDir::create("test-open");
    ASSERT_TRUE(dir);
    auto by_url = open({.url = "file://" + dir->path().string() + "/x/"});
    ASSERT_TRUE(by_url);
    EXPECT_EQ((*by_url)->describe(), "file://" + dir->path().string() + "/x");

    auto by_path = open({.url = (dir->path() / "x" / ".." / "y").string()});
    ASSERT_TRUE(by_path);
    EXPECT_EQ((*by_path)->describe(), "file://" + (dir->path() / "y").string());

    auto relative = open({.url = "relative/dir"});
    ASSERT_TRUE(relative);
    EXPECT_EQ((*relative)->describe(), "file://" + (fs::current_path() / "relative" / "dir").string());

    auto escaped = open({.url = "file://" + dir->path().string() + "/a%20b"});
    ASSERT_TRUE(escaped);
    ASSERT_TRUE((*escaped)->put("k", "v", Overwrite::no));
    EXPECT_TRUE(fs::exists(dir->path() / "a b" / "k"));

    auto not_absolute = open({.url = "file://relative/dir"});
    ASSERT_FALSE(not_absolute);
    EXPECT_EQ(not_absolute.error().kind, ErrorKind::Payload);
}

TEST(FileStorage, ObjectsAreFilesBelowTheRoot) {
    auto dir = TempDir::create("test-file-layout");
    ASSERT_TRUE(dir);
    auto s = open({.url = dir->path().string()});
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put("repos/a/latest.json", "{}", Overwrite::no));
    auto text = read_file(dir->path() / "repos" / "a" / "latest.json");
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "{}");
}

TEST(FileStorage, ListSkipsLeftoverTempFiles) {
    auto dir = TempDir::create("test-file-temp");
    ASSERT_TRUE(dir);
    auto s = open({.url = dir->path().string()});
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put("p/real", "x", Overwrite::no));
    // A crash between write and rename leaves such a file behind.
    ASSERT_TRUE(write_file_atomic(dir->path() / "p" / (std::string(k_temp_prefix) + "real.abc123"), "junk",
                                  Overwrite::yes));
    auto listed = (*s)->list("p/");
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].key, "p/real");
}

TEST(FileStorage, PendingUploadsAreTheTemporaryFilesOfUnfinishedWriters) {
    auto dir = TempDir::create("test-file-pending");
    ASSERT_TRUE(dir);
    auto s = open({.url = dir->path().string()});
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put("repos/a/bundles/done.bundle", "published", Overwrite::no));
    auto writer = (*s)->create("repos/a/bundles/half.bundle", Overwrite::no);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write(bytes_of("12345")));

    auto pending = (*s)->list_pending("repos/");
    ASSERT_TRUE(pending) << pending.error().message;
    ASSERT_EQ(pending->size(), 1u);
    const auto& upload = pending->front();
    EXPECT_EQ(upload.key, "repos/a/bundles/half.bundle");
    EXPECT_EQ(upload.size, 5u);
    EXPECT_TRUE(upload.handle.starts_with("repos/a/bundles/" + std::string(k_temp_prefix))) << upload.handle;
    ASSERT_TRUE(upload.since);
    EXPECT_LT(std::chrono::abs(Clock::now() - *upload.since), std::chrono::minutes{1});
    auto elsewhere = (*s)->list_pending("jobs/");
    ASSERT_TRUE(elsewhere);
    EXPECT_TRUE(elsewhere->empty());

    // Aborting it removes the file (as a killed writer's would be) and the
    // published object stays.
    ASSERT_TRUE((*s)->abort_pending(upload));
    EXPECT_FALSE(fs::exists(dir->path() / upload.handle));
    EXPECT_TRUE(fs::exists(dir->path() / "repos/a/bundles/done.bundle"));
    ASSERT_TRUE((*s)->abort_pending(upload)) << "aborting twice is not an error";
    // A published object is not an upload and cannot be aborted as one.
    auto refused = (*s)->abort_pending({"repos/a/bundles/done.bundle", "repos/a/bundles/done.bundle", 0, {}});
    ASSERT_FALSE(refused);
    EXPECT_TRUE(fs::exists(dir->path() / "repos/a/bundles/done.bundle"));
}

TEST(MemoryStorage, HasNoPendingUploads) {
    auto s = open_memory("no-pending");
    auto writer = s->create("a/b", Overwrite::no);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write(bytes_of("x")));
    auto pending = s->list_pending("");
    ASSERT_TRUE(pending);
    EXPECT_TRUE(pending->empty());
}

TEST(FileStorage, ListDoesNotLeaveTheRoot) {
    auto dir = TempDir::create("test-file-escape");
    ASSERT_TRUE(dir);
    ASSERT_TRUE(write_file_atomic(dir->path() / "outside" / "secret", "x", Overwrite::no));
    auto s = open({.url = (dir->path() / "root").string()});
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put("inside", "x", Overwrite::no));
    for (const char* prefix : {"../", "../outside/", "a/../../"}) {
        auto listed = (*s)->list(prefix);
        if (listed) {
            EXPECT_TRUE(listed->empty()) << "list(\"" << prefix << "\") returned " << listed->front().key;
        }
    }
}

TEST(FileStorage, RemoveTidiesEmptyDirectoriesButKeepsTheRoot) {
    auto dir = TempDir::create("test-file-remove");
    ASSERT_TRUE(dir);
    const auto root = dir->path() / "root";
    auto s = open({.url = root.string()});
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put("a/b/c", "x", Overwrite::no));
    ASSERT_TRUE((*s)->put("a/keep", "x", Overwrite::no));
    std::vector<std::string> doomed{"a/b/c"};
    ASSERT_TRUE((*s)->remove(doomed));
    EXPECT_FALSE(fs::exists(root / "a" / "b"));
    EXPECT_TRUE(fs::exists(root / "a" / "keep"));
    std::vector<std::string> last{"a/keep"};
    ASSERT_TRUE((*s)->remove(last));
    EXPECT_FALSE(fs::exists(root / "a"));
    EXPECT_TRUE(fs::is_directory(root));
}

TEST(FileStorage, CheckFailsWhenTheRootIsBelowAFile) {
    auto dir = TempDir::create("test-file-check");
    ASSERT_TRUE(dir);
    ASSERT_TRUE(write_file_atomic(dir->path() / "file", "x", Overwrite::no));
    auto s = open({.url = (dir->path() / "file" / "root").string()});
    ASSERT_TRUE(s);
    auto checked = (*s)->check();
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().kind, ErrorKind::Storage);
    // A root that does not exist yet below a writable directory is fine.
    auto fresh = open({.url = (dir->path() / "new" / "root").string()});
    ASSERT_TRUE(fresh);
    EXPECT_TRUE((*fresh)->check());
    EXPECT_FALSE(fs::exists(dir->path() / "new")); // check() writes nothing
}

TEST(MemoryStorage, SharedByNameIsolatedOtherwise) {
    auto a = open_memory("shared-by-name");
    auto b = open_memory("shared-by-name");
    auto c = open_memory("shared-by-name-other");
    ASSERT_TRUE(a->put("k", "v", Overwrite::no));
    auto seen = b->get("k");
    ASSERT_TRUE(seen);
    EXPECT_EQ(*seen, "v");
    EXPECT_FALSE(c->head("k").value().has_value());
    EXPECT_EQ(a->describe(), "memory://shared-by-name");
}

TEST(IsValidKey, Rules) {
    for (const char* good : {"a", "a/b", "repos/org%2Fapp/latest.json", "a.b/c..d/...", "x y", "-dash"})
        EXPECT_TRUE(is_valid_key(good)) << good;
    for (const char* bad :
         {"", "/a", "a/", "a//b", ".", "..", "../a", "a/../b", "a/.", "./a", "a\nb", "a\x7f"})
        EXPECT_FALSE(is_valid_key(bad)) << bad;
    EXPECT_TRUE(is_valid_key(std::string(1024, 'k')));
    EXPECT_FALSE(is_valid_key(std::string(1025, 'k')));
}
