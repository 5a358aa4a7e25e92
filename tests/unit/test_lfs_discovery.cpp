// Where the LFS server is: git-lfs's derivation from the clone URL
// (docs/api/server-discovery.md), .lfsconfig, and the payload's lfs_url.
#include "snapshotter/lfs/discovery.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::lfs;

TEST(LfsDiscovery, TheDerivationTable) {
    const std::pair<const char*, const char*> table[] = {
        {"https://git-server.com/foo/bar", "https://git-server.com/foo/bar.git/info/lfs"},
        {"https://git-server.com/foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"},
        {"https://git-server.com/foo/bar/", "https://git-server.com/foo/bar.git/info/lfs"},
        {"https://git-server.com:8443/foo/bar", "https://git-server.com:8443/foo/bar.git/info/lfs"},
        {"http://127.0.0.1:8080/r.git", "http://127.0.0.1:8080/r.git/info/lfs"},
        {"git@git-server.com:foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"},
        {"git@git-server.com:foo/bar", "https://git-server.com/foo/bar.git/info/lfs"},
        {"ssh://git-server.com/foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"},
        {"ssh://git@git-server.com:2222/foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"},
        {"git://git-server.com:9418/foo/bar", "https://git-server.com/foo/bar.git/info/lfs"},
        {"https://[::1]:8443/foo/bar", "https://[::1]:8443/foo/bar.git/info/lfs"},
    };
    for (const auto& [clone, lfs] : table) {
        auto derived = derive_lfs_url(clone);
        ASSERT_TRUE(derived) << clone << ": " << derived.error().message;
        EXPECT_EQ(*derived, lfs) << clone;
    }
    auto local = derive_lfs_url("/srv/git/app.git");
    ASSERT_FALSE(local);
    EXPECT_EQ(local.error().kind, ErrorKind::NotFound);
    EXPECT_FALSE(derive_lfs_url("file:///srv/git/app.git"));
}

TEST(LfsDiscovery, ThePayloadWinsThenLfsconfigThenTheDerivation) {
    const TransportPolicy policy{false, true};
    auto payload = choose_lfs_server("https://h/a", std::string("https://lfs.example/a/"), std::string("https://x/y"),
                                     policy);
    ASSERT_TRUE(payload);
    EXPECT_EQ(payload->url, "https://lfs.example/a");
    EXPECT_EQ(payload->source, LfsUrlSource::payload);
    EXPECT_TRUE(payload->credentials);

    auto config = choose_lfs_server("https://h/a", std::nullopt, std::string("https://h/lfs/a"), policy);
    ASSERT_TRUE(config);
    EXPECT_EQ(config->source, LfsUrlSource::lfsconfig);
    EXPECT_TRUE(config->credentials) << "same origin as the clone URL";

    auto elsewhere = choose_lfs_server("https://h/a", std::nullopt, std::string("https://evil.example/a"), policy);
    ASSERT_TRUE(elsewhere);
    EXPECT_FALSE(elsewhere->credentials) << "a .lfsconfig elsewhere never gets the repository's token";

    auto derived = choose_lfs_server("https://h/a", std::nullopt, std::nullopt, policy);
    ASSERT_TRUE(derived);
    EXPECT_EQ(derived->url, "https://h/a.git/info/lfs");
    EXPECT_EQ(derived->source, LfsUrlSource::derived);
}

TEST(LfsDiscovery, ABadLfsconfigUrlIsRefused) {
    const TransportPolicy policy{false, true};
    for (const char* url : {"ftp://h/a", "https://user:secret@h/a", "http://h/a", "https://", "file:///etc"}) {
        auto chosen = choose_lfs_server("https://h/a", std::nullopt, std::string(url), policy);
        ASSERT_FALSE(chosen) << url;
        EXPECT_EQ(chosen.error().message.find("secret"), std::string::npos);
    }
    EXPECT_TRUE(choose_lfs_server("https://h/a", std::nullopt, std::string("http://h/a"), {true, true}));
}
