#include "snapshotter/source/discover.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace std::chrono_literals;

namespace {

http::Response response(long status, std::vector<http::Header> headers) {
    http::Response r;
    r.status = status;
    r.headers = std::move(headers);
    return r;
}

const Clock::time_point k_now = Clock::from_time_t(1'800'000'000);

} // namespace

TEST(SourceDiscover, RetryAfterOnSecondaryLimitsAnd429) {
    EXPECT_EQ(source::rate_limit_wait(response(403, {{"retry-after", "7"}}), k_now), 7s);
    EXPECT_EQ(source::rate_limit_wait(response(429, {{"retry-after", "0"}}), k_now), 1s);
    // A 403 without any rate-limit header is an authorization failure.
    EXPECT_FALSE(source::rate_limit_wait(response(403, {}), k_now));
    EXPECT_FALSE(source::rate_limit_wait(
        response(403, {{"x-ratelimit-remaining", "12"}, {"x-ratelimit-reset", "1800000100"}}), k_now));
    // Other statuses never wait, whatever their headers.
    EXPECT_FALSE(source::rate_limit_wait(response(502, {{"retry-after", "5"}}), k_now));
    EXPECT_FALSE(source::rate_limit_wait(response(403, {{"retry-after", "soon"}}), k_now));
}

TEST(SourceDiscover, SpentPrimaryQuotaWaitsUntilTheReset) {
    EXPECT_EQ(
        source::rate_limit_wait(
            response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1800000042"}}), k_now),
        42s);
    // GitLab's RateLimit-* on a 429 without Retry-After.
    EXPECT_EQ(source::rate_limit_wait(
                  response(429, {{"ratelimit-remaining", "0"}, {"ratelimit-reset", "1800000005"}}), k_now),
              5s);
    // A reset already past still waits a second.
    EXPECT_EQ(
        source::rate_limit_wait(
            response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1700000000"}}), k_now),
        1s);
    // A successful answer that spent the last request: wait before the next one.
    EXPECT_EQ(
        source::quota_wait(
            response(200, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1800000010"}}), k_now),
        10s);
    EXPECT_FALSE(source::quota_wait(
        response(200, {{"x-ratelimit-remaining", "1"}, {"x-ratelimit-reset", "1800000010"}}), k_now));
    EXPECT_FALSE(source::quota_wait(response(200, {}), k_now));
}

TEST(SourceDiscover, DiscoveredNamesCarryTheHost) {
    auto https = parse_git_url("https://github.com/acme/app.git", {});
    ASSERT_TRUE(https);
    EXPECT_EQ(source::discovered_name(*https, "acme/app"), "github.com/acme/app");
    auto port = parse_git_url("https://gitlab.example.com:8443/grp/sub/p.git", {});
    ASSERT_TRUE(port);
    EXPECT_EQ(source::discovered_name(*port, "grp/sub/p"), "gitlab.example.com_8443/grp/sub/p");
    auto ssh = parse_git_url("git@github.com:acme/app.git", {});
    ASSERT_TRUE(ssh);
    EXPECT_EQ(source::discovered_name(*ssh, "acme/app"), "github.com/acme/app");
}

TEST(SourceDiscover, ExpandBuildsRepositoriesWikisAndCredentials) {
    job::Source s;
    s.type = job::ForgeType::github;
    s.api_url = "https://api.github.com";
    s.scope = job::SourceScope::org;
    s.owner = "acme";
    s.refs = {"refs/heads/*"};
    s.include_wikis = true;
    s.credentials = job::Credentials{"GH_TOKEN", "", ""};
    auto forge = source::make_forge(s);
    source::RemoteRepository a;
    a.full_name = "acme/app";
    a.https_url = "https://github.com/acme/app.git";
    a.ssh_url = "git@github.com:acme/app.git";
    a.has_wiki = true;
    a.wiki_https_url = "https://github.com/acme/app.wiki.git";
    source::RemoteRepository bad;
    bad.full_name = "acme/bad";
    bad.https_url = "ext::sh -c evil";
    auto e = source::expand(s, *forge, {a, bad}, {});
    ASSERT_EQ(e.repositories.size(), 2u);
    EXPECT_EQ(e.wikis, 1);
    EXPECT_EQ(e.repositories[0].name, "github.com/acme/app");
    EXPECT_EQ(e.repositories[0].url, "https://github.com/acme/app.git");
    EXPECT_EQ(e.repositories[0].refs, std::vector<std::string>{"refs/heads/*"});
    ASSERT_TRUE(e.repositories[0].credentials);
    EXPECT_EQ(e.repositories[0].credentials->token_env, "GH_TOKEN");
    EXPECT_EQ(e.repositories[0].credentials->username, "x-access-token");
    EXPECT_EQ(e.repositories[1].name, "github.com/acme/app.wiki");
    ASSERT_EQ(e.rejected.size(), 1u);
    EXPECT_EQ(e.rejected[0].first, "acme/bad");

    // ssh: the ssh URL and key; no wiki URL over ssh means the wiki is rejected, not guessed.
    s.transport = job::CloneTransport::ssh;
    s.credentials = job::Credentials{"GH_TOKEN", "", "GH_KEY"};
    e = source::expand(s, *forge, {a}, {});
    ASSERT_EQ(e.repositories.size(), 1u);
    EXPECT_EQ(e.repositories[0].url, "git@github.com:acme/app.git");
    EXPECT_EQ(e.repositories[0].credentials->ssh_key_env, "GH_KEY");
    EXPECT_EQ(e.repositories[0].credentials->token_env, "");
    ASSERT_EQ(e.rejected.size(), 1u);
    EXPECT_EQ(e.rejected[0].first, "acme/app (wiki)");
}
