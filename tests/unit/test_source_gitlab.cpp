#include "snapshotter/source/forge.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

namespace {

job::Source gitlab(std::string scope, std::string owner) {
    job::Source s;
    s.type = job::ForgeType::gitlab;
    s.api_url = "https://gitlab.example.com/api/v4";
    s.scope = *job::parse_source_scope(scope);
    s.owner = std::move(owner);
    return s;
}

} // namespace

TEST(SourceGitLab, GroupPathIsEncodedAndSubgroupsIncluded) {
    auto g = gitlab("group", "acme/platform");
    EXPECT_EQ(source::make_forge(g)->first_page_url(nullptr).value(),
              "https://gitlab.example.com/api/v4/groups/acme%2Fplatform/"
              "projects?include_subgroups=true&order_by=id&"
              "sort=asc&per_page=100");
    auto u = gitlab("user", "alice");
    EXPECT_EQ(source::make_forge(u)->first_page_url(nullptr).value(),
              "https://gitlab.example.com/api/v4/users/alice/"
              "projects?pagination=keyset&order_by=id&sort=asc&per_page=100");
    auto h = source::make_forge(u)->auth_headers("tok", "");
    EXPECT_NE(std::find(h.begin(), h.end(), http::Header{"PRIVATE-TOKEN", "tok"}), h.end());
}

TEST(SourceGitLab, ParsesProjectsAndFollowsXNextPageWithoutLink) {
    auto g = gitlab("group", "acme");
    http::Response r;
    r.status = 200;
    r.headers = {{"x-next-page", "3"}, {"x-page", "2"}};
    r.body =
        R"([{"path_with_namespace":"acme/sub/app","http_url_to_repo":"https://gitlab.example.com/acme/sub/app.git",
                  "ssh_url_to_repo":"git@gitlab.example.com:acme/sub/app.git","archived":false,
                  "forked_from_project":{"id":1},"visibility":"internal","tag_list":["old"],"topics":["new"],
                  "last_activity_at":"2026-02-03T04:05:06.000Z","wiki_enabled":true}])";
    const std::string url = "https://gitlab.example.com/api/v4/groups/acme/projects?per_page=100&page=2";
    auto page = source::make_forge(g)->parse_page(r, url);
    ASSERT_TRUE(page) << page.error().message;
    ASSERT_EQ(page->repositories.size(), 1u);
    const auto& p = page->repositories[0];
    EXPECT_EQ(p.full_name, "acme/sub/app");
    EXPECT_TRUE(p.fork);
    EXPECT_EQ(p.visibility, "internal");
    EXPECT_EQ(p.topics, std::vector<std::string>{"new"});
    EXPECT_EQ(p.pushed_at, parse_rfc3339("2026-02-03T04:05:06Z"));
    EXPECT_EQ(p.wiki_https_url, "https://gitlab.example.com/acme/sub/app.wiki.git");
    EXPECT_EQ(page->next_url, "https://gitlab.example.com/api/v4/groups/acme/projects?per_page=100&page=3");
    // The last page: X-Next-Page is empty.
    r.headers = {{"x-next-page", ""}};
    EXPECT_EQ(source::make_forge(g)->parse_page(r, url)->next_url, "");
    // Link wins when both are sent (keyset pagination sends only Link).
    r.headers = {{"link", "<https://gitlab.example.com/api/v4/next>; rel=\"next\""}, {"x-next-page", "3"}};
    EXPECT_EQ(source::make_forge(g)->parse_page(r, url)->next_url, "https://gitlab.example.com/api/v4/next");
}
