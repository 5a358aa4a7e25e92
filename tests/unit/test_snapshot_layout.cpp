// The layout's keys, and the one containment rule for keys read from storage.
#include "snapshotter/snapshot/layout.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot::layout;

TEST(Layout, KeysOfARepository) {
    EXPECT_EQ(repo_key("org/app"), "org%2Fapp");
    EXPECT_EQ(bundle_key("org/app", "20260101T000000.000Z-ab12"),
              "repos/org%2Fapp/bundles/20260101T000000.000Z-ab12.bundle");
    EXPECT_EQ(manifest_key("org/app", "x"), "repos/org%2Fapp/manifests/x.json");
}

TEST(Layout, KeysTheLayoutMakesAreWithin) {
    EXPECT_TRUE(is_within(bundle_key("org/app", "20260101T000000.000Z-ab12"), "org/app", Area::bundles));
    EXPECT_TRUE(is_within(rebased_bundle_key("org/app", "20260101T000000.000Z-ab12", "a1b2c3"), "org/app",
                          Area::bundles));
    EXPECT_TRUE(is_within(manifest_key("org/app", "20260101T000000.000Z-ab12"), "org/app", Area::manifests));
}

TEST(Layout, EverythingElseIsOutside) {
    const std::string name = "org/app";
    for (const char* key : {
             "../../x",
             "repos/org%2Fapp/bundles/../../org%2Fother/bundles/x.bundle",
             "repos/org%2Fapp/bundles/..",
             "repos/org%2Fapp/bundles/.",
             "repos/org%2Fapp/bundles/",
             "repos/org%2Fapp/bundles//x.bundle",
             "repos/org%2Fapp/bundles/sub/x.bundle",
             "/repos/org%2Fapp/bundles/x.bundle",
             "repos/org%2Fapp/bundles/a\\b.bundle",
             "repos/org%2Fapp/bundles/..\\x",
             "repos/org%2Fapp/bundles/%2E%2E",
             "repos/org%2Fapp/bundles/.tmp-snapshotter-x",
             "repos/org%2fapp/bundles/x.bundle",
             "repos/org%2Fother/bundles/x.bundle",
             "repos/org%2Fapp/manifests/x.json",
             "repos/org%2Fapp/prune-pending.json",
             "jobs/x.json",
             "repos/org%2Fapp/bundles/x\n.bundle",
         })
        EXPECT_FALSE(is_within(key, name, Area::bundles)) << key;
    EXPECT_FALSE(is_within("repos/org%2Fapp/bundles/x.bundle", name, Area::manifests));
    // A name whose key would be a path segment of its own is never a container.
    EXPECT_FALSE(is_within("repos/../bundles/x.bundle", "..", Area::bundles));
}

TEST(Layout, CheckWithinNamesTheKeyAndTheSource) {
    auto s = check_within("../../x", "org/app", Area::bundles, "repos/org%2Fapp/prune-pending.json");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Integrity);
    EXPECT_NE(s.error().message.find("\"../../x\""), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("prune-pending.json"), std::string::npos);
    EXPECT_TRUE(check_within(bundle_key("org/app", "x"), "org/app", Area::bundles, "here"));
}

TEST(Layout, CanonicalRepoKeys) {
    EXPECT_TRUE(is_canonical_repo_key("org%2Fapp"));
    EXPECT_TRUE(is_canonical_repo_key("app"));
    for (const char* segment : {"%2E%2E", "..", ".", "", "%41pp", "org%2fapp", "%zz", "a%2"})
        EXPECT_FALSE(is_canonical_repo_key(segment)) << segment;
}
