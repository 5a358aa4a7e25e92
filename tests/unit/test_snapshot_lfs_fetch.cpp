// The LFS step of a snapshot against memory storage and an in-process fake
// batch server: what is fetched, what is skipped, what is recorded missing.
#include "lfs_fake_server.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/lfs_fetch.hpp"
#include "snapshotter/util/hash.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using nlohmann::json;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;

namespace {

// A batch server holding `contents` by oid; `purged` oids answer 404 and
// `corrupt` ones serve other bytes. Downloads are served by the same server.
struct FakeLfs {
    std::map<std::string, std::string> contents;
    std::set<std::string> purged, corrupt;
    FakeHttpServer server{[this](const FakeRequest& r) { return answer(r); }};

    LfsObject add(const std::string& content) {
        auto oid = sha256_hex(content);
        contents[oid] = content;
        return {oid, content.size()};
    }
    FakeResponse answer(const FakeRequest& r) {
        if (r.path.starts_with("/objects/")) {
            auto oid = r.path.substr(9);
            return {200, {}, corrupt.contains(oid) ? std::string(contents[oid].size(), 'X') : contents[oid]};
        }
        json list = json::array();
        const json body = json::parse(r.body);
        for (const auto& o : body["objects"]) {
            std::string oid = o["oid"];
            if (purged.contains(oid) || !contents.contains(oid))
                list.push_back(
                    {{"oid", oid}, {"size", o["size"]}, {"error", {{"code", 404}, {"message", "gone"}}}});
            else
                list.push_back({{"oid", oid},
                                {"size", o["size"]},
                                {"actions", {{"download", {{"href", server.url() + "/objects/" + oid}}}}}});
        }
        return {200, {}, json{{"objects", list}}.dump()};
    }
    [[nodiscard]] std::size_t downloads() const {
        std::size_t n = 0;
        for (const auto& r : server.requests())
            n += r.path.starts_with("/objects/") && r.method == "GET";
        return n;
    }
};

} // namespace

TEST(LfsFetch, PointersAreFoundAmongBlobs) {
    const std::string oid = sha256_hex("x");
    const std::string pointer =
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + oid + "\nsize 1\n";
    auto found = pointers_in({"hello", pointer, pointer, "version x\n"});
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0], (LfsObject{oid, 1}));
}

TEST(LfsFetch, AutoIsOnWithPointersAttributesOrAParentSet) {
    LfsScan nothing;
    EXPECT_FALSE(lfs_wanted(job::LfsMode::automatic, nothing, std::nullopt));
    EXPECT_TRUE(lfs_wanted(job::LfsMode::on, nothing, std::nullopt));
    LfsScan attributes;
    attributes.gitattributes_lfs = true;
    EXPECT_TRUE(lfs_wanted(job::LfsMode::automatic, attributes, std::nullopt));
    EXPECT_FALSE(lfs_wanted(job::LfsMode::off, attributes, std::nullopt));
    LfsSet parent;
    parent.count = 1;
    EXPECT_TRUE(lfs_wanted(job::LfsMode::automatic, nothing, parent));
}

TEST(LfsFetch, StoresWhatIsMissingRecordsPurgedAndCorruptObjectsAndDedups) {
    FakeLfs lfs;
    auto good = lfs.add("good content");
    auto purged = lfs.add("purged content");
    auto corrupt = lfs.add("corrupt content");
    auto parents = lfs.add("the parent's content");
    lfs.purged.insert(purged.oid);
    lfs.corrupt.insert(corrupt.oid);
    auto store = storage::open_memory("lfs-fetch-first");
    ASSERT_TRUE(
        store->put(layout::lfs_object_key("org/app", parents.oid), "the parent's content", Overwrite::no));

    lfs::Client client({lfs.server.url() + "/lfs", "", "", RedirectPolicy::same_origin, true});
    auto outcome =
        store_lfs_objects(*store, "org/app", &client, "", {good, purged, corrupt, parents}, {parents});
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->downloaded_objects, 1u);
    EXPECT_EQ(outcome->downloaded_bytes, good.size);
    EXPECT_EQ(outcome->already_stored, 1u);
    ASSERT_TRUE(outcome->set);
    EXPECT_EQ(outcome->set->count, 4u);
    ASSERT_EQ(outcome->set->missing.size(), 2u);
    std::map<std::string, std::string> reasons;
    for (const auto& m : outcome->set->missing)
        reasons[m.oid] = m.reason;
    EXPECT_EQ(reasons[purged.oid], "not_found");
    EXPECT_EQ(reasons[corrupt.oid], "hash_mismatch");
    EXPECT_EQ(outcome->warnings.size(), 2u);
    // The metrics' and the job summary's totals of this step.
    const auto totals = lfs_totals(*outcome);
    EXPECT_EQ(totals.objects, 4u);
    EXPECT_EQ(totals.bytes, good.size + purged.size + corrupt.size + parents.size);
    EXPECT_EQ(totals.objects_uploaded, 1u);
    EXPECT_EQ(totals.bytes_uploaded, good.size);
    EXPECT_EQ(totals.missing, 2u);
    auto stored = store->get(layout::lfs_object_key("org/app", good.oid));
    ASSERT_TRUE(stored);
    EXPECT_EQ(*stored, "good content");
    auto head = store->head(layout::lfs_object_key("org/app", corrupt.oid));
    ASSERT_TRUE(head);
    EXPECT_FALSE(head->has_value());

    // The next night: the stored ones are not fetched again, the missing ones are asked for again.
    const auto before = lfs.downloads();
    lfs.corrupt.clear();
    auto next =
        store_lfs_objects(*store, "org/app", &client, "", {good, purged, corrupt, parents}, {good, parents});
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->downloaded_objects, 1u);
    EXPECT_EQ(next->downloaded_bytes, corrupt.size);
    EXPECT_EQ(lfs.downloads(), before + 1);
    ASSERT_EQ(next->set->missing.size(), 1u);
    EXPECT_EQ(next->set->missing[0].oid, purged.oid);

    // Found in storage by a listing when many are new: nothing downloaded.
    std::vector<LfsObject> many;
    for (int i = 0; i < 70; ++i) {
        auto o = lfs.add("object " + std::to_string(i));
        ASSERT_TRUE(store->put(layout::lfs_object_key("org/app", o.oid), "object " + std::to_string(i),
                               Overwrite::no));
        many.push_back(o);
    }
    const auto before_many = lfs.downloads();
    auto listed = store_lfs_objects(*store, "org/app", &client, "", many, {});
    ASSERT_TRUE(listed) << listed.error().message;
    EXPECT_EQ(listed->downloaded_objects, 0u);
    EXPECT_EQ(listed->already_stored, 70u);
    EXPECT_EQ(lfs_totals(*listed).bytes_uploaded, 0u); // an unchanged night uploads nothing
    EXPECT_EQ(lfs.downloads(), before_many);
    EXPECT_TRUE(listed->set->set_key);
}

TEST(LfsFetch, WithoutAServerEveryUnstoredObjectIsMissingNotFatal) {
    auto store = storage::open_memory("lfs-fetch-no-server");
    LfsObject o{sha256_hex("a"), 1};
    auto outcome =
        store_lfs_objects(*store, "org/app", nullptr, "a local repository has no LFS server", {o}, {});
    ASSERT_TRUE(outcome);
    ASSERT_EQ(outcome->set->missing.size(), 1u);
    EXPECT_EQ(outcome->set->missing[0].reason, "error: a local repository has no LFS server");
    auto j = lfs_outcome_json(*outcome);
    EXPECT_EQ(j["missing"], 1);
    EXPECT_EQ(j["objects"], 1);
}
