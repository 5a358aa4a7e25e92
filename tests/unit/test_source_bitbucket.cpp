#include "snapshotter/source/forge.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

TEST(SourceBitbucket, WorkspacePagesFollowNextUntilItIsAbsent) {
    job::Source s;
    s.type = job::ForgeType::bitbucket;
    s.api_url = "https://api.bitbucket.org/2.0";
    s.scope = job::SourceScope::workspace;
    s.owner = "team1";
    auto forge = source::make_forge(s);
    EXPECT_EQ(forge->first_page_url(nullptr).value(),
              "https://api.bitbucket.org/2.0/repositories/team1?pagelen=100");
    auto bearer = forge->auth_headers("tok", "");
    EXPECT_NE(std::find(bearer.begin(), bearer.end(), http::Header{"Authorization", "Bearer tok"}),
              bearer.end());
    auto basic = forge->auth_headers("pw", "me");
    EXPECT_NE(std::find(basic.begin(), basic.end(), http::Header{"Authorization", "Basic bWU6cHc="}),
              basic.end());

    http::Response r;
    r.status = 200;
    r.body = R"({"pagelen":100,"page":1,"size":101,
                 "next":"https://api.bitbucket.org/2.0/repositories/team1?pagelen=100&page=2",
                 "values":[{"full_name":"team1/api","is_private":true,"has_wiki":true,
                            "parent":{"full_name":"x/api"},"updated_on":"2020-04-07T21:38:29.542346+00:00",
                            "links":{"clone":[{"name":"https","href":"https://someone@bitbucket.org/team1/api.git"},
                                              {"name":"ssh","href":"git@bitbucket.org:team1/api.git"}]}}]})";
    auto page = forge->parse_page(r, "u");
    ASSERT_TRUE(page) << page.error().message;
    const auto& a = page->repositories.at(0);
    EXPECT_EQ(a.https_url, "https://bitbucket.org/team1/api.git");
    EXPECT_EQ(a.ssh_url, "git@bitbucket.org:team1/api.git");
    EXPECT_EQ(a.visibility, "private");
    EXPECT_TRUE(a.fork);
    EXPECT_FALSE(a.archived);
    EXPECT_EQ(a.wiki_https_url, "https://bitbucket.org/team1/api.git/wiki");
    EXPECT_EQ(a.pushed_at, parse_rfc3339("2020-04-07T21:38:29Z"));
    EXPECT_EQ(page->next_url, "https://api.bitbucket.org/2.0/repositories/team1?pagelen=100&page=2");
    r.body = R"({"pagelen":100,"page":2,"size":101,"values":[]})";
    EXPECT_EQ(forge->parse_page(r, "u")->next_url, "");
    r.body = "[]";
    EXPECT_FALSE(forge->parse_page(r, "u"));
}
