// The manifest's lfs field: round trips (inline and as a set file), the
// checks on hostile values, the layout's LFS keys, and lfs_objects_of().
#include "sample_manifest.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/util/hash.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using nlohmann::json;

namespace {

const std::string k_id = "20261128T073545.123Z-9f3a1c";

std::vector<LfsObject> objects(std::size_t n) {
    std::vector<LfsObject> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back({sha256_hex(std::to_string(i)), i + 1});
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.oid < b.oid; });
    return out;
}

Result<Manifest> round_trip(const Manifest& m) {
    auto text = serialize_manifest(m);
    if (!text)
        return fail(text.error());
    return parse_manifest(*text);
}

} // namespace

TEST(LfsLayout, KeysAndContainment) {
    const std::string oid = sha256_hex("x");
    const std::string key = layout::lfs_object_key("org/app", oid);
    EXPECT_EQ(key, "repos/org%2Fapp/lfs/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid);
    EXPECT_EQ(layout::lfs_prefix("org/app"), "repos/org%2Fapp/lfs/");
    EXPECT_EQ(layout::lfs_set_key("org/app", oid), "repos/org%2Fapp/lfs/sets/" + oid + ".json");
    EXPECT_TRUE(layout::is_within(key, "org/app", layout::Area::lfs));
    EXPECT_TRUE(layout::is_within(layout::lfs_set_key("org/app", oid), "org/app", layout::Area::lfs));
    EXPECT_EQ(layout::lfs_oid_of_key(key, "org/app"), oid);
    EXPECT_FALSE(layout::lfs_oid_of_key(layout::lfs_set_key("org/app", oid), "org/app"));
    const std::string upper = "repos/org%2Fapp/lfs/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" +
                              std::string(oid).replace(10, 1, "A");
    for (const std::string& outside : {
             "repos/org%2Fapp/lfs/" + oid,       // no fan-out
             "repos/org%2Fapp/lfs/00/00/" + oid, // wrong fan-out
             "repos/org%2Fapp/lfs/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" +
                 oid.substr(1), // short
             upper,
             std::string("repos/org%2Fapp/lfs/sets/x.json"),
             "repos/org%2Fapp/lfs/sets/" + oid + ".json.tmp",
             std::string("repos/org%2Fapp/lfs/../bundles/x.bundle"),
             "repos/org%2Fother/lfs/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid,
             layout::bundle_key("org/app", "x"),
         })
        EXPECT_FALSE(layout::is_within(outside, "org/app", layout::Area::lfs)) << outside;
    EXPECT_FALSE(layout::is_within(key, "org/app", layout::Area::bundles));
}

TEST(LfsSetJson, ManifestsWithoutLfsAreUnchangedAndInlineSetsRoundTrip) {
    auto m = test::sample_manifest("org/app", k_id, {k_id});
    auto plain = serialize_manifest(m);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->find("lfs"), std::string::npos);

    auto store = storage::open_memory("lfs-set-inline");
    auto list = objects(3);
    auto set = make_lfs_set(*store, "org/app", list, {{list[1].oid, list[1].size, "not_found"}});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->count, 3u);
    EXPECT_EQ(set->bytes, 6u);
    EXPECT_FALSE(set->set_key);
    m.lfs = *set;
    auto parsed = round_trip(m);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->lfs, m.lfs);
    auto loaded = lfs_objects_of(*store, *parsed);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(*loaded, list);

    // HEAD's .lfsconfig as a pack showed it round-trips; a manifest without it reads as none.
    const std::string head(40, 'a'), tree(40, 'b'), blob(40, 'c');
    m.lfs->lfsconfig = LfsConfigRecord{head, tree, blob, "https://lfs.example/app"};
    auto with_record = round_trip(m);
    ASSERT_TRUE(with_record) << with_record.error().message;
    EXPECT_EQ(with_record->lfs, m.lfs);
    m.lfs->lfsconfig = LfsConfigRecord{head, tree, "", std::nullopt};
    with_record = round_trip(m);
    ASSERT_TRUE(with_record) << with_record.error().message;
    EXPECT_EQ(with_record->lfs, m.lfs);
    EXPECT_EQ(parsed->lfs->lfsconfig, std::nullopt);
}

TEST(LfsSetJson, LargeSetsGoToAContentAddressedFile) {
    auto store = storage::open_memory("lfs-set-file");
    auto list = objects(k_lfs_inline_max + 1);
    auto set = make_lfs_set(*store, "org/app", list, {});
    ASSERT_TRUE(set);
    ASSERT_TRUE(set->set_key);
    EXPECT_TRUE(set->objects.empty());
    EXPECT_EQ(*set->set_key, layout::lfs_set_key("org/app", *set->set_sha256));
    auto m = test::sample_manifest("org/app", k_id, {k_id});
    m.lfs = *set;
    auto parsed = round_trip(m);
    ASSERT_TRUE(parsed) << parsed.error().message;
    auto loaded = lfs_objects_of(*store, *parsed);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(*loaded, list);
    // The same list again is the same object.
    auto again = make_lfs_set(*store, "org/app", list, {});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->set_key, set->set_key);
    // A tampered set file is refused.
    ASSERT_TRUE(
        store->put(*set->set_key, serialize_lfs_objects(objects(k_lfs_inline_max + 2)), Overwrite::yes));
    auto tampered = lfs_objects_of(*store, *parsed);
    ASSERT_FALSE(tampered);
    EXPECT_EQ(tampered.error().kind, ErrorKind::Integrity);
}

TEST(LfsSetJson, HostileValuesAreIntegrityErrors) {
    auto store = storage::open_memory("lfs-set-hostile");
    auto m = test::sample_manifest("org/app", k_id, {k_id});
    m.lfs = *make_lfs_set(*store, "org/app", objects(2), {});
    auto good = json::parse(*serialize_manifest(m));
    const std::string oid = sha256_hex("z");
    std::vector<std::function<void(json&)>> edits = {
        [](json& l) { l["count"] = 3; },
        [](json& l) { l["count"] = -1; },
        [](json& l) { l["count"] = 1.5; },
        [](json& l) { l["bytes"] = 99; },
        [](json& l) { l["objects"][0]["oid"] = "ABC"; },
        [](json& l) { l["objects"][0]["size"] = 1ULL << 50; },
        [](json& l) { std::swap(l["objects"][0], l["objects"][1]); },
        [](json& l) {
            l["objects"][1] = l["objects"][0];
            l["bytes"] = 2 * l["objects"][0]["size"].get<int>();
        },
        [&](json& l) {
            l["set"] = {{"key", "repos/org%2Fapp/lfs/sets/" + oid + ".json"}, {"sha256", oid}};
        },
        [](json& l) { l.erase("objects"); },
        [&](json& l) {
            l.erase("objects");
            l["count"] = 100;
            l["set"] = {{"key", "repos/org%2Fother/lfs/sets/" + oid + ".json"}, {"sha256", oid}};
        },
        [&](json& l) {
            l.erase("objects");
            l["count"] = 100;
            l["set"] = {{"key", "../../etc/passwd"}, {"sha256", oid}};
        },
        [&](json& l) {
            l["missing"] = {{{"oid", oid}, {"size", 1}, {"reason", "not_found"}}};
        },
        [&](json& l) {
            l["missing"] = {{{"oid", l["objects"][0]["oid"]}, {"size", 1}, {"reason", "gone"}}};
        },
        [](json& l) { l = "x"; },
        [](json& l) { l["lfsconfig"] = "x"; },
        [](json& l) {
            l["lfsconfig"] = {{"head", "ABC"}, {"tree", std::string(40, 'b')}};
        },
        [](json& l) {
            l["lfsconfig"] = {{"head", std::string(40, 'a')}};
        },
        [](json& l) {
            l["lfsconfig"] = {{"head", std::string(40, 'a')}, {"tree", std::string(40, 'b')}, {"blob", 7}};
        },
        [](json& l) {
            l["lfsconfig"] = {{"head", std::string(40, 'a')},
                              {"tree", std::string(40, 'b')},
                              {"url", std::string(9000, 'u')}};
        },
    };
    for (std::size_t i = 0; i < edits.size(); ++i) {
        json j = good;
        edits[i](j["lfs"]);
        auto parsed = parse_manifest(j.dump());
        ASSERT_FALSE(parsed) << i << ": " << j["lfs"].dump();
        EXPECT_EQ(parsed.error().kind, ErrorKind::Integrity) << i;
    }
}
