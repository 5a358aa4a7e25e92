#include "snapshotter/source/forge.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

namespace {

job::Source github(std::string scope, std::string owner) {
    job::Source s;
    s.type = job::ForgeType::github;
    s.api_url = "https://api.github.com";
    s.scope = *job::parse_source_scope(scope);
    s.owner = std::move(owner);
    return s;
}

} // namespace

TEST(SourceGitHub, ScopeUrls) {
    auto org = github("org", "acme");
    EXPECT_EQ(source::make_forge(org)->first_page_url(nullptr).value(),
              "https://api.github.com/orgs/acme/repos?type=all&per_page=100");
    auto team = github("team", "acme/core-devs");
    EXPECT_EQ(source::make_forge(team)->first_page_url(nullptr).value(),
              "https://api.github.com/orgs/acme/teams/core-devs/repos?per_page=100");
    auto user = github("user", "Octo");
    auto forge = source::make_forge(user);
    EXPECT_EQ(forge->identity_url(false), "");
    EXPECT_EQ(forge->identity_url(true), "https://api.github.com/user");
    nlohmann::json me = {{"login", "octo"}}, other = {{"login", "someone"}};
    EXPECT_EQ(forge->first_page_url(&me).value(),
              "https://api.github.com/user/repos?affiliation=owner&visibility=all&per_page=100");
    EXPECT_EQ(forge->first_page_url(&other).value(),
              "https://api.github.com/users/Octo/repos?type=owner&per_page=100");
    EXPECT_EQ(forge->first_page_url(nullptr).value(),
              "https://api.github.com/users/Octo/repos?type=owner&per_page=100");
}

TEST(SourceGitHub, AuthHeaders) {
    auto org = github("org", "acme");
    auto h = source::make_forge(org)->auth_headers("tok", "");
    EXPECT_NE(std::find(h.begin(), h.end(), http::Header{"Authorization", "Bearer tok"}), h.end());
    auto anon = source::make_forge(org)->auth_headers("", "");
    EXPECT_TRUE(
        std::none_of(anon.begin(), anon.end(), [](const auto& x) { return x.first == "Authorization"; }));
}

TEST(SourceGitHub, ParsesAPageAndItsNextLink) {
    auto org = github("org", "acme");
    http::Response r;
    r.status = 200;
    r.headers = {{"link", R"(<https://api.github.com/orgs/acme/repos?page=2>; rel="next")"}};
    r.body = R"([{"full_name":"acme/app","clone_url":"https://github.com/acme/app.git",
                  "ssh_url":"git@github.com:acme/app.git","archived":true,"fork":false,"visibility":"internal",
                  "topics":["a","b"],"pushed_at":"2026-01-02T03:04:05Z","has_wiki":true},
                 {"full_name":"acme/lib","clone_url":"https://github.com/acme/lib.git","private":true,"fork":true,
                  "pushed_at":null}])";
    auto page = source::make_forge(org)->parse_page(r, "https://api.github.com/orgs/acme/repos");
    ASSERT_TRUE(page) << page.error().message;
    ASSERT_EQ(page->repositories.size(), 2u);
    const auto& app = page->repositories[0];
    EXPECT_EQ(app.full_name, "acme/app");
    EXPECT_TRUE(app.archived);
    EXPECT_EQ(app.visibility, "internal");
    EXPECT_EQ(app.topics, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(app.pushed_at, parse_rfc3339("2026-01-02T03:04:05Z"));
    EXPECT_EQ(app.wiki_https_url, "https://github.com/acme/app.wiki.git");
    EXPECT_EQ(app.wiki_ssh_url, "git@github.com:acme/app.wiki.git");
    const auto& lib = page->repositories[1];
    EXPECT_EQ(lib.visibility, "private");
    EXPECT_TRUE(lib.fork);
    EXPECT_FALSE(lib.pushed_at);
    EXPECT_EQ(page->next_url, "https://api.github.com/orgs/acme/repos?page=2");
}

TEST(SourceGitHub, EmptyLastPageAndBadBodies) {
    auto org = github("org", "acme");
    auto forge = source::make_forge(org);
    http::Response r;
    r.status = 200;
    r.body = "[]";
    auto page = forge->parse_page(r, "u");
    ASSERT_TRUE(page);
    EXPECT_TRUE(page->repositories.empty());
    EXPECT_EQ(page->next_url, "");
    r.body = "{\"message\":\"x\"}";
    EXPECT_FALSE(forge->parse_page(r, "u"));
    r.body = "not json";
    EXPECT_FALSE(forge->parse_page(r, "u"));
}
