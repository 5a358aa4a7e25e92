#include "snapshotter/source/forge.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

TEST(SourceGitea, OrgAndUserUrlsPagesAndFlags) {
    job::Source s;
    s.type = job::ForgeType::gitea;
    s.api_url = "https://codeberg.org/api/v1";
    s.scope = job::SourceScope::org;
    s.owner = "forgejo";
    auto forge = source::make_forge(s);
    EXPECT_EQ(forge->first_page_url(nullptr).value(),
              "https://codeberg.org/api/v1/orgs/forgejo/repos?limit=50&page=1");
    s.scope = job::SourceScope::user;
    EXPECT_EQ(source::make_forge(s)->first_page_url(nullptr).value(),
              "https://codeberg.org/api/v1/users/forgejo/repos?limit=50&page=1");
    auto h = forge->auth_headers("tok", "");
    EXPECT_NE(std::find(h.begin(), h.end(), http::Header{"Authorization", "token tok"}), h.end());

    http::Response r;
    r.status = 200;
    r.headers = {{"x-total-count", "51"},
                 {"link", R"(<https://codeberg.org/api/v1/orgs/forgejo/repos?limit=50&page=2>; rel="next",)"
                          R"(<https://codeberg.org/api/v1/orgs/forgejo/repos?limit=50&page=2>; rel="last")"}};
    r.body = R"([{"full_name":"forgejo/a","clone_url":"https://codeberg.org/forgejo/a.git","private":false,
                  "internal":true,"fork":true,"archived":true,"has_wiki":true,"topics":["x"],
                  "updated_at":"2026-03-04T05:06:07+01:00"}])";
    auto page = forge->parse_page(r, "u");
    ASSERT_TRUE(page) << page.error().message;
    const auto& a = page->repositories.at(0);
    EXPECT_EQ(a.visibility, "internal");
    EXPECT_TRUE(a.fork && a.archived && a.has_wiki);
    EXPECT_EQ(a.wiki_https_url, "https://codeberg.org/forgejo/a.wiki.git");
    EXPECT_EQ(a.pushed_at, parse_rfc3339("2026-03-04T04:06:07Z"));
    EXPECT_EQ(page->next_url, "https://codeberg.org/api/v1/orgs/forgejo/repos?limit=50&page=2");
}
