// Leftovers (snapshot/leftovers.hpp), the bundles manifests reference and
// the forward-only latest pointer (snapshot/publish.hpp), on file:// storage
// in a temp dir (it has times and temporary files) and memory://.
#include "sample_manifest.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/leftovers.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/snapshot/referenced.hpp"
#include "snapshotter/util/time.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

const std::string k_repo = "org/app";
const std::string k_old_id = "20261101T000000.000Z-aaaaaa";
const std::string k_new_id = "20261128T000000.000Z-bbbbbb";

// A committed full snapshot of k_repo whose chain is `bundle_ids`.
void put_manifest(storage::Storage& storage, const std::string& id,
                  const std::vector<std::string>& bundle_ids) {
    Manifest m = test::sample_manifest(k_repo, id, bundle_ids);
    auto text = serialize_manifest(m);
    ASSERT_TRUE(text);
    ASSERT_TRUE(storage.put(layout::manifest_key(k_repo, id), *text, Overwrite::no));
}

class FileLeftovers : public ::testing::Test {
  protected:
    void SetUp() override {
        auto dir = TempDir::create("test-leftovers");
        ASSERT_TRUE(dir);
        m_dir.emplace(std::move(*dir));
        auto opened = storage::open({.url = m_dir->path().string()});
        ASSERT_TRUE(opened);
        m_storage = std::move(*opened);
    }
    storage::Storage& storage() { return *m_storage; }
    fs::path path_of(const std::string& key) { return m_dir->path() / key; }
    // Make the file of `key` look `age` old.
    void age(const std::string& key, std::chrono::seconds age) {
        fs::last_write_time(path_of(key), fs::file_time_type::clock::now() - age);
    }

  private:
    std::optional<TempDir> m_dir;
    std::unique_ptr<storage::Storage> m_storage;
};

} // namespace

TEST_F(FileLeftovers, OrphanBundlesAndPendingUploadsAreFoundAndNothingElse) {
    ASSERT_TRUE(storage().put(layout::bundle_key(k_repo, k_old_id), "old", Overwrite::no));
    ASSERT_TRUE(storage().put(layout::bundle_key(k_repo, k_new_id), "new", Overwrite::no));
    put_manifest(storage(), k_old_id, {k_old_id});
    ASSERT_TRUE(advance_latest(storage(), k_repo, k_old_id, layout::manifest_key(k_repo, k_old_id)));
    ASSERT_TRUE(storage().put("jobs/j1.json", "{}", Overwrite::no));
    // A writer still open (or killed): a temporary file of 4 bytes.
    auto writer = storage().create(layout::bundle_key(k_repo, "20261128T010000.000Z-cccccc"), Overwrite::no);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write(std::as_bytes(std::span<const char>("half", 4))));
    age(layout::bundle_key(k_repo, k_new_id), std::chrono::hours{48});

    auto scan = find_leftovers(storage(), {});
    ASSERT_TRUE(scan) << scan.error().message;
    EXPECT_TRUE(scan->problems.empty());
    ASSERT_EQ(scan->items.size(), 2u);
    const auto& pending = scan->items[0];
    EXPECT_EQ(pending.kind, Leftover::Kind::pending_upload);
    EXPECT_EQ(pending.key, layout::bundle_key(k_repo, "20261128T010000.000Z-cccccc"));
    EXPECT_EQ(pending.repository, k_repo);
    EXPECT_EQ(pending.size, 4u);
    const auto& orphan = scan->items[1];
    EXPECT_EQ(orphan.kind, Leftover::Kind::orphan_bundle);
    EXPECT_EQ(orphan.key, layout::bundle_key(k_repo, k_new_id));
    EXPECT_EQ(orphan.size, 3u);
    EXPECT_NEAR(static_cast<double>(age_seconds(orphan, Clock::now())), 48 * 3600.0, 60.0);

    auto summary = leftovers_summary(scan->items, Clock::now(), std::chrono::hours{24});
    EXPECT_EQ(summary["count"], 2);
    EXPECT_EQ(summary["bytes"], 7);
    EXPECT_EQ(summary["stale"], 1);
    EXPECT_EQ(summary["items"][1]["kind"], "orphan_bundle");

    // Restricted to another repository, nothing.
    auto other = find_leftovers(storage(), {"org/other"});
    ASSERT_TRUE(other);
    EXPECT_TRUE(other->items.empty());
}

TEST_F(FileLeftovers, AManifestCommittedLaterAdoptsItsBundle) {
    ASSERT_TRUE(storage().put(layout::bundle_key(k_repo, k_new_id), "new", Overwrite::no));
    auto before = find_leftovers(storage(), {k_repo});
    ASSERT_TRUE(before);
    ASSERT_EQ(before->items.size(), 1u);
    put_manifest(storage(), k_new_id, {k_new_id});
    auto after = find_leftovers(storage(), {k_repo});
    ASSERT_TRUE(after);
    EXPECT_TRUE(after->items.empty());
    auto referenced = read_referenced(storage(), k_repo, LfsSets::skip);
    ASSERT_TRUE(referenced);
    EXPECT_EQ(referenced->bundles, std::set<std::string>{layout::bundle_key(k_repo, k_new_id)});
}

TEST_F(FileLeftovers, AnUnreadableManifestMakesNoOrphansButAProblem) {
    ASSERT_TRUE(storage().put(layout::bundle_key(k_repo, k_old_id), "old", Overwrite::no));
    ASSERT_TRUE(storage().put(layout::manifest_key(k_repo, k_old_id), "{not json", Overwrite::no));
    auto scan = find_leftovers(storage(), {});
    ASSERT_TRUE(scan);
    EXPECT_TRUE(scan->items.empty());
    ASSERT_EQ(scan->problems.size(), 1u);
    EXPECT_NE(scan->problems[0].message.find(k_repo), std::string::npos) << scan->problems[0].message;
    auto referenced = read_referenced(storage(), k_repo, LfsSets::skip);
    ASSERT_FALSE(referenced);
    EXPECT_NE(referenced.error().message.find(layout::manifest_key(k_repo, k_old_id)), std::string::npos)
        << referenced.error().message;
}

TEST(AdvanceLatest, MovesOnlyForward) {
    auto storage = storage::open_memory("advance-latest");
    const auto key = layout::latest_key(k_repo);
    auto moved = advance_latest(*storage, k_repo, k_new_id, "m-new");
    ASSERT_TRUE(moved);
    EXPECT_TRUE(*moved);
    // An older snapshot publishing last does not move the pointer back.
    moved = advance_latest(*storage, k_repo, k_old_id, "m-old");
    ASSERT_TRUE(moved);
    EXPECT_FALSE(*moved);
    EXPECT_EQ(parse_latest(storage->get(key).value()).value(), k_new_id);
    // A newer one moves it; an unreadable pointer is replaced.
    const std::string newest = "20261129T000000.000Z-cccccc";
    EXPECT_TRUE(advance_latest(*storage, k_repo, newest, "m").value());
    EXPECT_EQ(parse_latest(storage->get(key).value()).value(), newest);
    ASSERT_TRUE(storage->put(key, "{broken", Overwrite::yes));
    EXPECT_TRUE(advance_latest(*storage, k_repo, k_old_id, "m-old").value());
    EXPECT_EQ(parse_latest(storage->get(key).value()).value(), k_old_id);
}

TEST(Layout, RepositoryOfKey) {
    EXPECT_EQ(layout::repository_of_key(layout::bundle_key("org/app", k_old_id)), "org/app");
    EXPECT_EQ(layout::repository_of_key("repos/x/latest.json"), "x");
    EXPECT_EQ(layout::repository_of_key("jobs/j.json"), std::nullopt);
    EXPECT_EQ(layout::repository_of_key("repos/"), std::nullopt);
    EXPECT_EQ(layout::bundles_prefix("org/app"), "repos/org%2Fapp/bundles/");
}
