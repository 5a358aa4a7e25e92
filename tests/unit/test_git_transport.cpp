#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/fs.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace snapshotter;
using namespace snapshotter::git;

namespace {

bool has_pair(const std::vector<std::string>& args, std::string_view flag, std::string_view value) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == flag && args[i + 1] == value)
            return true;
    return false;
}

unsigned mode_of(const fs::path& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_mode & 0777;
}

} // namespace

TEST(ShellQuote, QuotesForThePosixShell) {
    EXPECT_EQ(shell_single_quote("/srv/repo.git"), "'/srv/repo.git'");
    EXPECT_EQ(shell_single_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_single_quote("$(rm -rf /)"), "'$(rm -rf /)'");
}

TEST(SshArguments, WritesKeyAndKnownHostsPrivately) {
    auto dir = TempDir::create("ssh-args-test");
    ASSERT_TRUE(dir);
    SshSettings settings{.private_key =
                             "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
                         .known_hosts = "example.com ssh-ed25519 AAAA\n"};
    auto args = ssh_arguments(settings, dir->path());
    ASSERT_TRUE(args) << args.error().message;
    fs::path key = dir->path() / "id";
    fs::path known = dir->path() / "known_hosts";
    EXPECT_TRUE(has_pair(*args, "-i", key.string()));
    EXPECT_TRUE(has_pair(*args, "-o", "IdentitiesOnly=yes"));
    EXPECT_TRUE(has_pair(*args, "-o", "UserKnownHostsFile=" + known.string()));
    EXPECT_TRUE(has_pair(*args, "-o", "StrictHostKeyChecking=yes"));
    EXPECT_EQ(mode_of(key), 0600u);
    EXPECT_EQ(mode_of(known), 0600u);
    auto text = read_file(key);
    ASSERT_TRUE(text);
    EXPECT_TRUE(text->ends_with("KEY-----\n")); // ssh needs the final newline
    // The key never appears in the arguments themselves.
    for (const auto& a : *args)
        EXPECT_EQ(a.find("PRIVATE KEY"), std::string::npos);
    // Writing twice into the same directory refuses to reuse files.
    EXPECT_FALSE(ssh_arguments(settings, dir->path()));
}

TEST(SshArguments, HostKeyPolicies) {
    auto dir = TempDir::create("ssh-args-test");
    ASSERT_TRUE(dir);
    auto sub = [&](const char* name) {
        fs::create_directory(dir->path() / name);
        return dir->path() / name;
    };
    auto strict = ssh_arguments({}, sub("strict"));
    ASSERT_TRUE(strict);
    EXPECT_TRUE(has_pair(*strict, "-o", "StrictHostKeyChecking=yes"));
    EXPECT_FALSE(has_pair(*strict, "-o", "IdentitiesOnly=yes"));
    // Never the user's ~/.ssh/known_hosts: an empty private file, and the system-wide one.
    EXPECT_TRUE(
        has_pair(*strict, "-o", "UserKnownHostsFile=" + (dir->path() / "strict" / "known_hosts").string()));
    EXPECT_FALSE(has_pair(*strict, "-o", "GlobalKnownHostsFile=/dev/null"));
    auto accept_new = ssh_arguments({.host_key_policy = HostKeyPolicy::accept_new}, sub("new"));
    ASSERT_TRUE(accept_new);
    EXPECT_TRUE(has_pair(*accept_new, "-o", "StrictHostKeyChecking=accept-new"));
    EXPECT_TRUE(
        has_pair(*accept_new, "-o", "UserKnownHostsFile=" + (dir->path() / "new" / "known_hosts").string()));
    auto insecure = ssh_arguments({.host_key_policy = HostKeyPolicy::insecure}, sub("insecure"));
    ASSERT_TRUE(insecure);
    EXPECT_TRUE(has_pair(*insecure, "-o", "StrictHostKeyChecking=no"));
}

TEST(Connect, RefusesUrlsThePolicyForbids) {
    auto c = connect({.url = "http://example.com/repo.git"});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().kind, ErrorKind::Payload);
    c = connect({.url = "/srv/repo.git", .policy = {.allow_file = false}});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().kind, ErrorKind::Payload);
    c = connect({.url = "ext::sh -c evil"});
    ASSERT_FALSE(c);
}
