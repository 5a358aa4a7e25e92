#include "snapshotter/source/forge.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::source;

TEST(SourceForge, LinkNextAsGitHubAndGitLabSendIt) {
    EXPECT_EQ(link_next(R"(<https://api.github.com/orgs/acme/repos?per_page=100&page=2>; rel="next", )"
                        R"(<https://api.github.com/orgs/acme/repos?per_page=100&page=3>; rel="last")"),
              "https://api.github.com/orgs/acme/repos?per_page=100&page=2");
    // next not first, spaces and case vary.
    EXPECT_EQ(link_next(R"(<https://x/a?page=1>; rel="first", <https://x/a?page=4>;rel="NEXT")"),
              "https://x/a?page=4");
    // The last page carries prev and first only.
    EXPECT_EQ(link_next(R"(<https://x/a?page=1>; rel="first", <https://x/a?page=2>; rel="prev")"), "");
    EXPECT_EQ(link_next(""), "");
    EXPECT_EQ(link_next("garbage"), "");
    EXPECT_EQ(link_next("<https://x/a"), "");
}

TEST(SourceForge, WithQueryReplacesOrAdds) {
    EXPECT_EQ(with_query("https://g/api/v4/groups/a/projects?per_page=100&page=1", "page", "2"),
              "https://g/api/v4/groups/a/projects?per_page=100&page=2");
    EXPECT_EQ(with_query("https://g/x", "page", "2"), "https://g/x?page=2");
    EXPECT_EQ(with_query("https://g/x?a=1", "b", "x y"), "https://g/x?a=1&b=x%20y");
}

TEST(SourceForge, PercentEncodeKeepsUnreserved) {
    EXPECT_EQ(percent_encode("grp/sub"), "grp%2Fsub");
    EXPECT_EQ(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
}

TEST(SourceForge, WikiUrl) {
    EXPECT_EQ(wiki_url_of("https://github.com/acme/app.git"), "https://github.com/acme/app.wiki.git");
    EXPECT_EQ(wiki_url_of("git@github.com:acme/app.git"), "git@github.com:acme/app.wiki.git");
    EXPECT_EQ(wiki_url_of("https://h/acme/app"), "https://h/acme/app.wiki.git");
}
