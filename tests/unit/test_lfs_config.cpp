// lfs.url read from a .lfsconfig blob's bytes (lfs/config.hpp). The expected
// values are what `git config --file <f> --get lfs.url` (git 2.39) prints.
#include "snapshotter/lfs/config.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

namespace {

std::optional<std::string> url_of(std::string_view text) {
    auto url = lfs::lfs_url_in_config(text);
    EXPECT_TRUE(url) << text;
    return url ? *url : std::nullopt;
}

} // namespace

TEST(LfsConfig, ReadsLfsUrlAsGitDoes) {
    EXPECT_EQ(url_of("[lfs]\n\turl = https://a.example/x\n"), "https://a.example/x");
    EXPECT_EQ(url_of("[LFS]\nURL = \"https://b.example/ y\" ; c"), "https://b.example/ y");
    EXPECT_EQ(url_of("[lfs]\nurl = https://c.example/1\n[lfs \"sub\"]\nurl = https://d\n[lfs]\n"
                     "url=https://c.example/2 # tail"),
              "https://c.example/2");
    EXPECT_EQ(url_of("[lfs]\n  url = one\\\n two"), "one two");
    EXPECT_EQ(url_of("# comment\n; another\n[lfs]\r\nurl = https://e.example/r\r\n"), "https://e.example/r");
    EXPECT_EQ(url_of("[lfs] url = https://f.example/same-line"), "https://f.example/same-line");
}

TEST(LfsConfig, OtherSectionsAndBareKeysHaveNoUrl) {
    EXPECT_EQ(url_of("[core]\nurl = x\n[lfs.foo]\nurl = y"), std::nullopt);
    EXPECT_EQ(url_of("[lfs]\nurl"), std::nullopt);
    EXPECT_EQ(url_of(""), std::nullopt);
    EXPECT_EQ(url_of("garbage"), std::nullopt);
    EXPECT_EQ(url_of("[lfs]\nfetchexclude = x\n"), std::nullopt);
}

TEST(LfsConfig, WhatGitRefusesIsAnIntegrityError) {
    for (std::string_view text : {"[lfs]\nurl = \"unterminated", "[lfs", "[lfs]\nurl = a\\q", "[lfs]\n=x",
                                  "[lfs \"x]\n", "[lfs]\nurl x"}) {
        auto url = lfs::lfs_url_in_config(text);
        ASSERT_FALSE(url) << text;
        EXPECT_EQ(url.error().kind, ErrorKind::Integrity) << text;
    }
    EXPECT_FALSE(lfs::lfs_url_in_config(std::string(lfs::k_max_lfsconfig_bytes + 1, '#')));
}
