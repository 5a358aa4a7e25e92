#include "snapshotter/git/refname.hpp"

#include <fstream>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::git;

namespace {

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

TEST(Refname, AgreesWithGitCheckRefFormatOnGeneratedNames) {
    // Verdicts of `git check-ref-format` (tests/tools/refname_fixture.py).
    std::ifstream in(std::string(SNAPSHOTTER_SOURCE_DIR) + "/tests/unit/data/refnames.tsv");
    ASSERT_TRUE(in) << "tests/unit/data/refnames.tsv is missing";
    std::string line;
    int checked = 0, accepted = 0;
    while (std::getline(in, line)) {
        ASSERT_GE(line.size(), 2U);
        const bool git_accepts = line[0] == '1';
        const std::string name = from_hex(std::string_view(line).substr(2));
        EXPECT_EQ(is_valid_refname(name), git_accepts) << "name \"" << name << "\"";
        ++checked;
        accepted += git_accepts ? 1 : 0;
    }
    EXPECT_GE(checked, 2000);
    // Both verdicts must be well represented for the comparison to mean anything.
    EXPECT_GE(accepted, checked / 20);
    EXPECT_LE(accepted, checked - checked / 20);
}

TEST(Refname, GitRulesOneByOne) {
    for (const char* ok : {"refs/heads/main", "refs/tags/v1.0", "a/b", "refs/heads/ä", "refs/heads/a;b",
                           "refs/heads/a@b", "refs/heads/a}b", "refs/heads/a.b", "refs/heads/-x"})
        EXPECT_TRUE(is_valid_refname(ok)) << ok;
    for (const char* bad : {"",
                            "@",
                            "main",
                            "refs/heads/a:b",
                            "refs/heads/a..b",
                            "refs/heads/a@{b",
                            "refs/heads/.a",
                            "refs/heads/a.",
                            "refs/heads/a.lock",
                            "refs/heads/a.lock/b",
                            "refs/heads//a",
                            "refs/heads/a/",
                            "/refs/heads/a",
                            "refs/heads/a b",
                            "refs/heads/a~1",
                            "refs/heads/a^",
                            "refs/heads/a?",
                            "refs/heads/a*",
                            "refs/heads/a[",
                            "refs/heads/a\\b",
                            "refs/heads/a\x01",
                            "refs/heads/a\x7f"})
        EXPECT_FALSE(is_valid_refname(bad)) << bad;
}

TEST(Refname, LengthBoundsAreRefused) {
    EXPECT_EQ(refname_refusal("refs/heads/" + std::string(k_max_refname_component_bytes, 'a')), std::nullopt);
    auto long_component =
        refname_refusal("refs/heads/" + std::string(k_max_refname_component_bytes + 1, 'a'));
    ASSERT_TRUE(long_component);
    EXPECT_NE(long_component->find("component"), std::string::npos);
    std::string deep = "refs/heads";
    while (deep.size() + 101 <= k_max_refname_bytes)
        deep += "/" + std::string(100, 'b');
    EXPECT_EQ(refname_refusal(deep), std::nullopt) << deep.size();
    deep += "/" + std::string(100, 'b');
    auto too_long = refname_refusal(deep);
    ASSERT_TRUE(too_long);
    EXPECT_NE(too_long->find("more than 2048"), std::string::npos);
    ASSERT_TRUE(refname_refusal("refs/heads/a:b"));
    EXPECT_NE(refname_refusal("refs/heads/a:b")->find("check-ref-format"), std::string::npos);
}

TEST(Refname, ScreenKeepsGoodNamesAndReportsTheOthers) {
    RefMap refs{{"refs/heads/main", {std::string(40, 'a'), ""}},
                {"refs/heads/a:b", {std::string(40, 'b'), ""}},
                {"refs/tags/" + std::string(300, 't'), {std::string(40, 'c'), ""}}};
    auto screened = screen_refs(refs, "git://x/r");
    ASSERT_TRUE(screened) << screened.error().message;
    EXPECT_EQ(screened->kept.size(), 1U);
    EXPECT_TRUE(screened->kept.contains("refs/heads/main"));
    EXPECT_EQ(screened->refused.size(), 2U);
    EXPECT_TRUE(screened->refused.contains("refs/heads/a:b"));
}

TEST(Refname, ControlCharactersFailTheListing) {
    RefMap refs{{"refs/heads/ok", {std::string(40, 'a'), ""}},
                {"refs/heads/evil\x1b[31m", {std::string(40, 'b'), ""}}};
    auto screened = screen_refs(refs, "git://x/r");
    ASSERT_FALSE(screened);
    EXPECT_EQ(screened.error().kind, ErrorKind::Git);
    EXPECT_NE(screened.error().message.find("control character"), std::string::npos);
    EXPECT_EQ(screened.error().message.find('\x1b'), std::string::npos);
    EXPECT_TRUE(has_control_character("a\tb"));
    EXPECT_FALSE(has_control_character("refs/heads/ä"));
}

TEST(Refname, ExcerptCutsAtACharacterBoundary) {
    EXPECT_EQ(refname_excerpt("short"), "short");
    std::string name = "refs/heads/" + std::string(10, 'a');
    for (int i = 0; i < 100; ++i)
        name += "ä";
    auto cut = refname_excerpt(name, 20);
    EXPECT_TRUE(cut.ends_with("..."));
    EXPECT_LE(cut.size(), 23U);
    EXPECT_NE(static_cast<unsigned char>(cut[cut.size() - 4]) & 0xC0, 0xC0) << "cut inside a character";
}

} // namespace

namespace {

TEST(Refname, HeadOutsideRefsCountsAsAbsent) {
    EXPECT_EQ(screen_head(std::string("refs/heads/main")), std::optional<std::string>("refs/heads/main"));
    EXPECT_EQ(screen_head(std::string("refs/heads/not-yet-born")),
              std::optional<std::string>("refs/heads/not-yet-born"));
    EXPECT_EQ(screen_head(std::nullopt), std::nullopt);
    EXPECT_EQ(screen_head(std::string("HEAD")), std::nullopt);
    EXPECT_EQ(screen_head(std::string("foo/bar")), std::nullopt);
    EXPECT_EQ(screen_head(std::string("refs/heads/a:b")), std::nullopt);
    EXPECT_EQ(screen_head(std::string("refs/heads/a\nb")), std::nullopt);
}

} // namespace

namespace {

TEST(Refname, HeadInEveryState) {
    const std::string oid(40, 'a');
    EXPECT_EQ(classify_head(std::string("refs/heads/main"), oid),
              (HeadState{HeadKind::symbolic, "refs/heads/main"}));
    EXPECT_EQ(classify_head(std::string("refs/heads/gone"), std::nullopt),
              (HeadState{HeadKind::unborn, "refs/heads/gone"}));
    EXPECT_EQ(classify_head(std::nullopt, oid), (HeadState{HeadKind::detached, oid}));
    EXPECT_EQ(classify_head(std::nullopt, std::nullopt), HeadState{});
    // A target outside refs/ is no target: detached when it resolves, absent otherwise.
    EXPECT_EQ(classify_head(std::string("HEAD2"), oid), (HeadState{HeadKind::detached, oid}));
    EXPECT_EQ(classify_head(std::string("elsewhere"), std::nullopt), HeadState{});
    for (auto kind : {HeadKind::symbolic, HeadKind::unborn, HeadKind::detached, HeadKind::absent})
        EXPECT_EQ(head_kind_from_name(head_kind_name(kind)), kind);
    EXPECT_EQ(head_kind_from_name("other"), std::nullopt);
}

} // namespace
