// One pass over a repository's manifests (snapshot/referenced.hpp), on
// memory://: each manifest read once and each LFS set file once, what it keeps
// alive, and its rule: a manifest gone meanwhile is skipped, anything present
// that cannot be read fails the pass naming the key.
#include "fault_storage.hpp"
#include "nightly_store.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/referenced.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

// The set file `manifest_key` of `repo` names.
std::string set_key_of(storage::Storage& storage, const std::string& repo, const std::string& manifest_key) {
    auto m = read_manifest(storage, repo, *layout::snapshot_id_of_manifest_key(manifest_key));
    EXPECT_TRUE(m && m->lfs && m->lfs->set_key);
    return m && m->lfs && m->lfs->set_key ? *m->lfs->set_key : std::string{};
}

// Twelve nights of `repo` (two distinct LFS set files: nights 0-9, 10-11).
class Pass : public ::testing::Test {
  protected:
    void SetUp() override {
        m_repo = fmt::format("pass/{}", random_hex(4));
        m_storage = storage::open_memory(m_repo);
        m_manifests = publish_nights(*m_storage, m_repo, 12);
        ASSERT_EQ(m_manifests.size(), 12U);
    }
    storage::Storage& storage() { return *m_storage; }
    const std::string& repo() const { return m_repo; }
    const std::vector<std::string>& manifests() const { return m_manifests; }

  private:
    std::string m_repo;
    std::unique_ptr<storage::Storage> m_storage;
    std::vector<std::string> m_manifests;
};

} // namespace

TEST_F(Pass, ReadsEachManifestAndEachSetFileOnceAndKeepsEverythingTheyNeed) {
    FaultStorage counting(storage());
    auto referenced = read_referenced(counting, repo(), LfsSets::read);
    ASSERT_TRUE(referenced) << referenced.error().message;
    EXPECT_EQ(referenced->manifests, 12U);
    for (const auto& key : manifests())
        EXPECT_EQ(counting.count(Op::get, key), 1U) << key;
    const auto sets = std::set<std::string>{set_key_of(storage(), repo(), manifests().front()),
                                            set_key_of(storage(), repo(), manifests().back())};
    ASSERT_EQ(sets.size(), 2U);
    for (const auto& key : sets)
        EXPECT_EQ(counting.count(Op::get, key), 1U) << key << ": a set named by ten manifests is read once";
    EXPECT_EQ(referenced->bundles, keys_under(storage(), layout::bundles_prefix(repo())));
    EXPECT_EQ(referenced->tables, keys_under(storage(), layout::tables_prefix(repo())));
    EXPECT_EQ(referenced->lfs, keys_under(storage(), layout::lfs_prefix(repo())));

    // Without the LFS sets: no set read, no LFS key.
    counting.reset();
    auto chains = read_referenced(counting, repo(), LfsSets::skip);
    ASSERT_TRUE(chains) << chains.error().message;
    EXPECT_TRUE(chains->lfs.empty());
    EXPECT_EQ(chains->bundles, referenced->bundles);
    for (const auto& key : sets)
        EXPECT_EQ(counting.count(Op::get, key), 0U) << key;
}

TEST_F(Pass, AManifestGoneBeforeItIsReadIsSkipped) {
    const auto last = manifests().back();
    FaultStorage racing(storage());
    racing.before(Op::get, last, [&](storage::Storage& inner) {
        std::vector<std::string> one{last};
        ASSERT_TRUE(inner.remove(one)); // a prune deletes it between the listing and the read
    });
    auto referenced = read_referenced(racing, repo(), LfsSets::read);
    ASSERT_TRUE(referenced) << referenced.error().message;
    EXPECT_EQ(referenced->manifests, 11U);
    const auto newest_bundle = layout::bundle_key(repo(), *layout::snapshot_id_of_manifest_key(last));
    EXPECT_FALSE(referenced->bundles.contains(newest_bundle)) << "a deleted manifest keeps nothing";
}

TEST_F(Pass, AManifestGoneBeforeItsSetIsReadIsSkipped) {
    // A prune deletes the last two manifests, then the set only they named,
    // while the pass reads the first of them.
    const auto set = set_key_of(storage(), repo(), manifests().back());
    FaultStorage racing(storage());
    racing.before(Op::get, set, [&](storage::Storage& inner) {
        std::vector<std::string> gone{manifests()[10], manifests()[11], set};
        ASSERT_TRUE(inner.remove(gone));
    });
    auto referenced = read_referenced(racing, repo(), LfsSets::read);
    ASSERT_TRUE(referenced) << referenced.error().message;
    EXPECT_EQ(referenced->manifests, 10U);
    EXPECT_FALSE(referenced->lfs.contains(set));
}

TEST_F(Pass, ACorruptManifestFailsThePassNamingItsKey) {
    const auto& corrupt = manifests()[5];
    ASSERT_TRUE(storage().put(corrupt, "{\"schema_version\": 3, \"snapshot_id\":", Overwrite::yes));
    for (auto lfs : {LfsSets::skip, LfsSets::read}) {
        auto referenced = read_referenced(storage(), repo(), lfs);
        ASSERT_FALSE(referenced);
        EXPECT_NE(referenced.error().message.find(corrupt), std::string::npos) << referenced.error().message;
        EXPECT_NE(referenced.error().message.find("deleting nothing"), std::string::npos);
    }
}

TEST_F(Pass, AMissingOrAlteredSetOfAPresentManifestFailsThePassNamingIt) {
    const auto set = set_key_of(storage(), repo(), manifests().back());
    auto text = storage().get(set);
    ASSERT_TRUE(text);
    ASSERT_TRUE(storage().put(set, *text + "\n", Overwrite::yes));
    auto altered = read_referenced(storage(), repo(), LfsSets::read);
    ASSERT_FALSE(altered);
    EXPECT_NE(altered.error().message.find(set), std::string::npos) << altered.error().message;

    std::vector<std::string> one{set};
    ASSERT_TRUE(storage().remove(one));
    auto missing = read_referenced(storage(), repo(), LfsSets::read);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find(set), std::string::npos) << missing.error().message;
    EXPECT_TRUE(read_referenced(storage(), repo(), LfsSets::skip)) << "the chains alone are whole";
}

TEST_F(Pass, AMissingTableFailsThePassNamingIt) {
    // The newest night's table: no read has cached it in this process (tables.hpp).
    auto text = storage().get(manifests().back());
    ASSERT_TRUE(text);
    auto newest = parse_manifest(*text);
    ASSERT_TRUE(newest && newest->table);
    const auto table = newest->table->key;
    std::vector<std::string> one{table};
    ASSERT_TRUE(storage().remove(one));
    auto referenced = read_referenced(storage(), repo(), LfsSets::skip);
    ASSERT_FALSE(referenced);
    EXPECT_NE(referenced.error().message.find(table), std::string::npos) << referenced.error().message;
}

TEST(PassRule, ABundleKeyOutsideTheRepositoryFailsThePass) {
    auto storage = storage::open_memory("pass-outside");
    const std::string repo = "pass/outside";
    const std::string id = "20261101T000000.000Z-aaaaaa";
    Manifest m = sample_manifest(repo, id, {id});
    m.bundles.front().key = layout::bundle_key("pass/victim", id);
    auto text = serialize_manifest(m);
    ASSERT_TRUE(text);
    ASSERT_TRUE(storage->put(layout::manifest_key(repo, id), *text, Overwrite::no));
    auto referenced = read_referenced(*storage, repo, LfsSets::read);
    ASSERT_FALSE(referenced);
    EXPECT_EQ(referenced.error().kind, ErrorKind::Integrity);
    EXPECT_NE(referenced.error().message.find(layout::bundle_key("pass/victim", id)), std::string::npos)
        << referenced.error().message;
}

TEST(PassRule, AStorageErrorFailsThePass) {
    auto inner = storage::open_memory("pass-error");
    const auto keys = publish_nights(*inner, "pass/error", 2);
    FaultStorage faulty(*inner);
    faulty.fail_nth(Op::get, 2);
    auto referenced = read_referenced(faulty, "pass/error", LfsSets::skip);
    ASSERT_FALSE(referenced);
    EXPECT_EQ(referenced.error().kind, ErrorKind::Storage);
    EXPECT_NE(referenced.error().message.find(keys[1]), std::string::npos) << referenced.error().message;
}
