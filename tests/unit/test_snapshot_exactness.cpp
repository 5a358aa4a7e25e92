#include "snapshotter/snapshot/exactness.hpp"
#include "snapshotter/snapshot/manifest.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

const std::string k_a(40, 'a'), k_b(40, 'b'), k_c(40, 'c');

TEST(Exactness, EqualMapsHaveNoDifference) {
    git::RefMap refs{{"refs/heads/main", {k_a, ""}}, {"refs/tags/v1", {k_b, k_a}}};
    EXPECT_TRUE(ref_differences(refs, refs).empty());
    EXPECT_TRUE(check_recorded_refs("org/r", refs, refs));
    EXPECT_TRUE(check_recorded_refs("org/r", {}, {}));
}

TEST(Exactness, NamesMissingUnexpectedAndMoved) {
    git::RefMap listed{{"refs/heads/main", {k_a, ""}}, {"refs/heads/dev", {k_b, ""}}};
    git::RefMap recorded{{"refs/heads/dev", {k_c, ""}}, {"refs/heads/extra", {k_a, ""}}};
    auto diff = ref_differences(listed, recorded);
    ASSERT_EQ(diff.size(), 3U);
    EXPECT_EQ(diff[0], "refs/heads/dev: listed bbbbbbbbbbbb, recorded cccccccccccc");
    EXPECT_EQ(diff[1], "missing refs/heads/main");
    EXPECT_EQ(diff[2], "unexpected refs/heads/extra");
    auto s = check_recorded_refs("org/r", listed, recorded);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Git);
    EXPECT_NE(s.error().message.find("org/r: the snapshot would not be exact: 2 refs were listed"),
              std::string::npos)
        << s.error().message;
    EXPECT_NE(s.error().message.find("nothing was committed"), std::string::npos);
}

TEST(Exactness, TheCliEngineDroppingEveryRefIsCaught) {
    // git fetch from a shallow repository rejects the refs and exits 0.
    git::RefMap listed;
    for (int i = 0; i < 270; ++i)
        listed[fmt::format("refs/heads/b{:03}", i)] = {k_a, ""};
    auto diff = ref_differences(listed, {});
    ASSERT_EQ(diff.size(), 6U);
    EXPECT_EQ(diff.back(), "and 265 more");
    EXPECT_FALSE(check_recorded_refs("org/r", listed, {}));
}

TEST(Exactness, BundleHeaderMustListTheManifestsRefs) {
    git::RefMap refs{{"refs/heads/main", {k_a, ""}}, {"refs/heads/dev", {k_b, ""}}};
    git::BundleHeader all{.refs = {{k_a, "refs/heads/main"},
                                   {k_b, "refs/heads/dev"},
                                   {k_c, "refs/snapshotter/preserved/x/refs/heads/old"}}};
    EXPECT_TRUE(check_bundle_header("r", all, refs, HeaderScope::every_ref));
    git::BundleHeader changed{.refs = {{k_b, "refs/heads/dev"}}};
    EXPECT_TRUE(check_bundle_header("r", changed, refs, HeaderScope::changed_refs));
    auto missing = check_bundle_header("r", changed, refs, HeaderScope::every_ref);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("missing refs/heads/main"), std::string::npos);
    git::BundleHeader moved{.refs = {{k_c, "refs/heads/dev"}}};
    auto s = check_bundle_header("r", moved, refs, HeaderScope::changed_refs);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("refs/heads/dev: bundle cccccccccccc, manifest bbbbbbbbbbbb"),
              std::string::npos);
    git::BundleHeader extra{.refs = {{k_a, "refs/heads/zzz"}}};
    EXPECT_FALSE(check_bundle_header("r", extra, refs, HeaderScope::changed_refs));
}

TEST(Exactness, RefusedRefsAreListedPrintably) {
    auto j = refused_json({{"refs/heads/a:b", "git refuses this name"},
                           {"refs/heads/" + std::string(500, 'x'), "too long"},
                           {"refs/heads/\xff", "bad"}});
    ASSERT_EQ(j.size(), 3U);
    EXPECT_EQ(j[0]["name"], "refs/heads/a:b");
    EXPECT_EQ(j[0]["reason"], "git refuses this name");
    EXPECT_EQ(j[1]["name"], "refs/heads/" + std::string(189, 'x') + "...");
    EXPECT_EQ(j[2]["name"], "refs/heads/\xEF\xBF\xBD"); // U+FFFD for the invalid byte
    EXPECT_NO_THROW((void)j.dump());
}

TEST(Exactness, EqualHeadsHaveNoDifference) {
    for (const git::HeadState& head : {git::HeadState{git::HeadKind::symbolic, "refs/heads/main"},
                                       git::HeadState{git::HeadKind::unborn, "refs/heads/next"},
                                       git::HeadState{git::HeadKind::detached, k_a}, git::HeadState{}}) {
        EXPECT_EQ(head_difference(head, head), "");
        EXPECT_TRUE(check_recorded_head("org/r", head, head));
    }
}

TEST(Exactness, HeadStateTargetAndOidAreCompared) {
    const git::HeadState symbolic{git::HeadKind::symbolic, "refs/heads/main"};
    const git::HeadState other_branch{git::HeadKind::symbolic, "refs/heads/dev"};
    const git::HeadState unborn{git::HeadKind::unborn, "refs/heads/main"};
    const git::HeadState detached{git::HeadKind::detached, k_a};
    const git::HeadState moved{git::HeadKind::detached, k_b};
    const git::HeadState absent{};
    EXPECT_EQ(head_difference(symbolic, other_branch),
              "HEAD: listed symbolic to refs/heads/main, recorded symbolic to refs/heads/dev");
    EXPECT_EQ(head_difference(symbolic, unborn),
              "HEAD: listed symbolic to refs/heads/main, recorded unborn on refs/heads/main");
    EXPECT_EQ(head_difference(detached, moved), "HEAD: listed detached at aaaaaaaaaaaa, recorded detached at "
                                                "bbbbbbbbbbbb");
    EXPECT_EQ(head_difference(detached, absent), "HEAD: listed detached at aaaaaaaaaaaa, recorded absent");
    EXPECT_EQ(head_difference(absent, symbolic), "HEAD: listed absent, recorded symbolic to refs/heads/main");
    auto s = check_recorded_head("org/r", detached, moved);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Git);
    EXPECT_NE(s.error().message.find("org/r: the snapshot would not be exact: HEAD: listed detached"),
              std::string::npos);
    EXPECT_NE(s.error().message.find("nothing was committed"), std::string::npos);
}

TEST(Exactness, TheManifestsHeadIsWhatTheCheckCompares) {
    Manifest m;
    EXPECT_EQ(head_state(m), git::HeadState{});
    m.head_kind = git::HeadKind::symbolic;
    m.head = "refs/heads/main";
    EXPECT_EQ(head_state(m), (git::HeadState{git::HeadKind::symbolic, "refs/heads/main"}));
    m.head_kind = git::HeadKind::unborn;
    EXPECT_EQ(head_state(m), (git::HeadState{git::HeadKind::unborn, "refs/heads/main"}));
    m.head.reset();
    m.head_kind = git::HeadKind::detached;
    m.head_oid = k_c;
    EXPECT_EQ(head_state(m), (git::HeadState{git::HeadKind::detached, k_c}));
    EXPECT_FALSE(check_recorded_head("r", {git::HeadKind::detached, k_a}, head_state(m)));
}

} // namespace
