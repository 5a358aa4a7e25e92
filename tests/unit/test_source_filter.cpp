#include "snapshotter/source/filter.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using source::glob_match;
using source::RemoteRepository;

TEST(SourceGlob, StarStaysInsideOneSegment) {
    EXPECT_TRUE(glob_match("acme/*", "acme/app"));
    EXPECT_FALSE(glob_match("acme/*", "acme/sub/app"));
    EXPECT_TRUE(glob_match("acme/old-*", "acme/old-tool"));
    EXPECT_FALSE(glob_match("acme/old-*", "acme/tool-old"));
    EXPECT_TRUE(glob_match("*/app", "acme/app"));
    EXPECT_TRUE(glob_match("acme/*-svc", "acme/pay-svc"));
    EXPECT_FALSE(glob_match("acme/*", "other/app"));
}

TEST(SourceGlob, DoubleStarCrossesSegments) {
    EXPECT_TRUE(glob_match("grp/**", "grp/sub/deep/leaf"));
    EXPECT_TRUE(glob_match("grp/**/leaf", "grp/sub/deep/leaf"));
    EXPECT_TRUE(glob_match("**", "a/b/c"));
    EXPECT_FALSE(glob_match("grp/**", "other/x"));
    EXPECT_TRUE(glob_match("grp/**/*-api", "grp/a/b/pay-api"));
    EXPECT_FALSE(glob_match("grp/**/*-api", "grp/a/b/pay-api/x"));
}

TEST(SourceGlob, QuestionMarkClassesAndCase) {
    EXPECT_TRUE(glob_match("acme/app?", "acme/app2"));
    EXPECT_FALSE(glob_match("acme/app?", "acme/app"));
    EXPECT_FALSE(glob_match("acme?app", "acme/app"));
    EXPECT_TRUE(glob_match("acme/[ab]pp", "acme/bpp"));
    EXPECT_FALSE(glob_match("acme/[!ab]pp", "acme/bpp"));
    EXPECT_TRUE(glob_match("acme/v[0-9]", "acme/v7"));
    EXPECT_FALSE(glob_match("acme/v[0-9]", "acme/vx"));
    EXPECT_TRUE(glob_match("ACME/App", "acme/app"));
    EXPECT_TRUE(glob_match("acme/[x", "acme/[x")); // an unclosed '[' is literal
    EXPECT_TRUE(glob_match("", ""));
    EXPECT_FALSE(glob_match("", "a"));
}

namespace {

RemoteRepository repo(std::string name) {
    RemoteRepository r;
    r.full_name = std::move(name);
    r.visibility = "public";
    return r;
}

std::vector<std::string> names(const std::vector<RemoteRepository>& repos) {
    std::vector<std::string> out;
    for (const auto& r : repos)
        out.push_back(r.full_name);
    return out;
}

} // namespace

TEST(SourceFilter, EachFilterInOrderReportsWhatItRemoved) {
    job::Source s;
    s.include = {"acme/*"};
    s.exclude = {"acme/old-*"};
    s.archived = false;
    s.forks = false;
    s.visibility = job::Visibility::public_only;
    s.topics = {"Backend"};
    s.pushed_since = parse_rfc3339("2026-01-01T00:00:00Z");
    std::vector<RemoteRepository> listed;
    auto keep = repo("acme/keep");
    keep.topics = {"backend"};
    keep.pushed_at = parse_rfc3339("2026-06-01T00:00:00Z");
    listed.push_back(keep);
    listed.push_back(repo("other/x"));      // include
    listed.push_back(repo("acme/old-one")); // exclude (also archived: the first filter wins)
    listed.back().archived = true;
    listed.push_back(repo("acme/arch")); // archived
    listed.back().archived = true;
    listed.push_back(repo("acme/fork")); // forks
    listed.back().fork = true;
    listed.push_back(repo("acme/priv")); // visibility
    listed.back().visibility = "private";
    listed.push_back(repo("acme/untagged")); // topics
    auto stale = repo("acme/stale");         // pushed_since
    stale.topics = {"backend"};
    stale.pushed_at = parse_rfc3339("2025-01-01T00:00:00Z");
    listed.push_back(stale);
    auto unknown = repo("acme/no-time"); // no time: kept
    unknown.topics = {"backend"};
    listed.push_back(unknown);

    auto r = source::apply_filters(s, listed);
    EXPECT_EQ(names(r.kept), (std::vector<std::string>{"acme/keep", "acme/no-time"}));
    using V = std::vector<std::string>;
    EXPECT_EQ(r.removed[0], V{"other/x"});
    EXPECT_EQ(r.removed[1], V{"acme/old-one"});
    EXPECT_EQ(r.removed[2], V{"acme/arch"});
    EXPECT_EQ(r.removed[3], V{"acme/fork"});
    EXPECT_EQ(r.removed[4], V{"acme/priv"});
    EXPECT_EQ(r.removed[5], V{"acme/untagged"});
    EXPECT_EQ(r.removed[6], V{"acme/stale"});
}

TEST(SourceFilter, DefaultsKeepEverythingAndPrivateKeepsInternal) {
    job::Source s;
    std::vector<RemoteRepository> listed = {repo("a/x"), repo("a/y"), repo("a/z")};
    listed[0].archived = true;
    listed[1].fork = true;
    listed[2].visibility = "internal";
    EXPECT_EQ(source::apply_filters(s, listed).kept.size(), 3u);
    s.visibility = job::Visibility::private_only;
    EXPECT_EQ(names(source::apply_filters(s, listed).kept), (std::vector<std::string>{"a/z"}));
}
