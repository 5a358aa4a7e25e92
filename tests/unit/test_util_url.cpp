#include "snapshotter/util/url.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

namespace {

constexpr TransportPolicy k_default_policy{};
constexpr TransportPolicy k_allow_http{.allow_http = true, .allow_file = true};
constexpr TransportPolicy k_no_file{.allow_http = false, .allow_file = false};

GitUrl parse_ok(std::string_view url, TransportPolicy policy = k_default_policy) {
    auto parsed = parse_git_url(url, policy);
    EXPECT_TRUE(parsed.has_value()) << url << ": " << (parsed ? "" : parsed.error().message);
    return parsed.value_or(GitUrl{});
}

std::string parse_error(std::string_view url, TransportPolicy policy = k_default_policy) {
    auto parsed = parse_git_url(url, policy);
    EXPECT_FALSE(parsed.has_value()) << url << " was accepted";
    if (parsed)
        return {};
    EXPECT_EQ(parsed.error().kind, ErrorKind::Payload);
    return parsed.error().message;
}

} // namespace

TEST(ParseGitUrl, Https) {
    auto u = parse_ok("https://git.example.com/org/app.git");
    EXPECT_EQ(u.transport, Transport::https);
    EXPECT_EQ(u.host, "git.example.com");
    EXPECT_EQ(u.port, "");
    EXPECT_EQ(u.path, "/org/app.git");
    EXPECT_EQ(u.user, "");
    EXPECT_FALSE(u.has_password);
}

TEST(ParseGitUrl, HttpsWithPort) {
    auto u = parse_ok("https://git.example.com:8443/org/app.git");
    EXPECT_EQ(u.transport, Transport::https);
    EXPECT_EQ(u.host, "git.example.com");
    EXPECT_EQ(u.port, "8443");
    EXPECT_EQ(u.path, "/org/app.git");
}

TEST(ParseGitUrl, UserNameOutsideSshIsRefusedWithoutRepeatingIt) {
    // https://TOKEN@host/... is a form some forges document: the token would be printed.
    for (std::string_view url : {"https://ghp_TOKEN1234@git.example.com/org/app.git",
                                 "https://ghp_TOKEN1234@git.example.com:8443/org/app.git",
                                 "git://ghp_TOKEN1234@git.example.com/org/app.git"}) {
        auto message = parse_error(url, k_allow_http);
        EXPECT_NE(message.find("credentials.token_env"), std::string::npos) << message;
        EXPECT_EQ(message.find("ghp_TOKEN1234"), std::string::npos) << message;
    }
    parse_error("http://ghp_TOKEN1234@h/r.git", k_allow_http);
    // ssh logins are user names, not secrets.
    EXPECT_EQ(parse_ok("ssh://git@h/r.git").user, "git");
}

TEST(ParseGitUrl, Ipv6LiteralsWithPorts) {
    auto ssh = parse_ok("ssh://git@[::1]:2222/x");
    EXPECT_EQ(ssh.transport, Transport::ssh);
    EXPECT_EQ(ssh.user, "git");
    EXPECT_EQ(ssh.host, "[::1]");
    EXPECT_EQ(bare_host(ssh), "::1");
    EXPECT_EQ(ssh.port, "2222");
    EXPECT_EQ(ssh.path, "/x");
    auto daemon = parse_ok("git://[::1]:9418/x");
    EXPECT_EQ(daemon.host, "[::1]");
    EXPECT_EQ(daemon.port, "9418");
    auto http = parse_ok("http://[fe80::1:2]:8080/org/x.git", k_allow_http);
    EXPECT_EQ(http.host, "[fe80::1:2]");
    EXPECT_EQ(http.port, "8080");
    EXPECT_EQ(http.path, "/org/x.git");
    auto no_port = parse_ok("https://[2001:db8::7]/x");
    EXPECT_EQ(no_port.host, "[2001:db8::7]");
    EXPECT_EQ(no_port.port, "");
    EXPECT_EQ(host_key(ssh), "[::1]:2222");
    EXPECT_EQ(bare_host(parse_ok("https://h.example/x")), "h.example");
}

TEST(ParseGitUrl, MalformedAuthoritiesAreRefused) {
    EXPECT_NE(parse_error("ssh://[::1/x").find("']'"), std::string::npos);
    EXPECT_NE(parse_error("ssh://[::1]x/x").find("port"), std::string::npos);
    EXPECT_NE(parse_error("https://h:80a/x").find("port"), std::string::npos);
    EXPECT_NE(parse_error("https://h:123456/x").find("port"), std::string::npos);
}

TEST(ParseGitUrl, SchemeIsCaseInsensitive) {
    EXPECT_EQ(parse_ok("HTTPS://h/r.git").transport, Transport::https);
}

TEST(ParseGitUrl, SshUrl) {
    auto u = parse_ok("ssh://git@git.example.com:2222/org/app.git");
    EXPECT_EQ(u.transport, Transport::ssh);
    EXPECT_EQ(u.user, "git");
    EXPECT_EQ(u.host, "git.example.com");
    EXPECT_EQ(u.port, "2222");
    EXPECT_EQ(u.path, "/org/app.git");
}

TEST(ParseGitUrl, SshSchemeAliases) {
    EXPECT_EQ(parse_ok("git+ssh://h/r.git").transport, Transport::ssh);
    EXPECT_EQ(parse_ok("ssh+git://h/r.git").transport, Transport::ssh);
}

TEST(ParseGitUrl, ScpLikeSsh) {
    auto u = parse_ok("git@github.com:org/app.git");
    EXPECT_EQ(u.transport, Transport::ssh);
    EXPECT_EQ(u.user, "git");
    EXPECT_EQ(u.host, "github.com");
    EXPECT_EQ(u.path, "org/app.git");

    auto no_user = parse_ok("github.com:org/app.git");
    EXPECT_EQ(no_user.transport, Transport::ssh);
    EXPECT_EQ(no_user.user, "");
    EXPECT_EQ(no_user.host, "github.com");
}

TEST(ParseGitUrl, ScpLikeNeedsHostAndPath) {
    EXPECT_NE(parse_error("git@:org/app.git").find("host"), std::string::npos);
    EXPECT_NE(parse_error("git@host:").find("path"), std::string::npos);
}

TEST(ParseGitUrl, RelativePathIsNotScpLike) {
    // A '/' before the first ':' makes it a path, and relative paths are not accepted.
    EXPECT_NE(parse_error("some/dir:x").find("must be a URL"), std::string::npos);
    EXPECT_NE(parse_error("relative/repo.git").find("must be a URL"), std::string::npos);
}

TEST(ParseGitUrl, GitProtocol) {
    auto u = parse_ok("git://127.0.0.1:9418/org/app.git");
    EXPECT_EQ(u.transport, Transport::git);
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, "9418");
    EXPECT_EQ(u.path, "/org/app.git");
}

TEST(ParseGitUrl, FileUrlPathsArePercentDecodedAsGitDoes) {
    // git 2.39: `git ls-remote file:///srv/pct%41.git` opens /srv/pctA.git.
    EXPECT_EQ(parse_ok("file:///srv/pct%41.git").path, "/srv/pctA.git");
    EXPECT_EQ(parse_ok("file:///srv/a%20b.git").path, "/srv/a b.git");
    EXPECT_EQ(parse_ok("file:///srv/%C3%BCnic%C3%B6de.git").path, "/srv/ünicöde.git");
    EXPECT_EQ(parse_ok("file:///srv/ünicöde.git").path, "/srv/ünicöde.git");
    EXPECT_EQ(parse_ok("file:///srv/pct%2541.git").path, "/srv/pct%41.git"); // decoded once
    EXPECT_EQ(parse_ok("file:///srv/odd%4.git").path, "/srv/odd%4.git");     // not an escape: kept
    EXPECT_EQ(parse_ok("file:///srv/end%").path, "/srv/end%");
    // A plain path is read as written.
    EXPECT_EQ(parse_ok("/srv/pct%41.git").path, "/srv/pct%41.git");
    EXPECT_NE(parse_error("file:///srv/a%00b.git").find("NUL"), std::string::npos);
}

TEST(ParseGitUrl, FileUrlAndAbsolutePath) {
    auto u = parse_ok("file:///srv/git/app.git");
    EXPECT_EQ(u.transport, Transport::file);
    EXPECT_EQ(u.host, "");
    EXPECT_EQ(u.path, "/srv/git/app.git");

    auto local = parse_ok("file://localhost/srv/git/app.git");
    EXPECT_EQ(local.transport, Transport::file);

    auto path = parse_ok("/srv/git/app.git");
    EXPECT_EQ(path.transport, Transport::file);
    EXPECT_EQ(path.path, "/srv/git/app.git");
}

TEST(ParseGitUrl, FileUrlMustBeLocal) {
    EXPECT_NE(parse_error("file://otherhost/srv/app.git").find("must be local"), std::string::npos);
}

TEST(ParseGitUrl, FileOnlyWhenAllowed) {
    EXPECT_NE(parse_error("file:///srv/app.git", k_no_file).find("options.allow_file"), std::string::npos);
    EXPECT_NE(parse_error("/srv/app.git", k_no_file).find("options.allow_file"), std::string::npos);
    // Remote transports are unaffected.
    parse_ok("https://h/r.git", k_no_file);
}

TEST(ParseGitUrl, HttpOnlyWhenAllowed) {
    EXPECT_EQ(parse_error("http://h/r.git"),
              "scheme \"http\" is not allowed (set options.allow_http to permit it)");
    EXPECT_EQ(parse_ok("http://h/r.git", k_allow_http).transport, Transport::http);
}

TEST(ParseGitUrl, DoubleColonTransportsAreRefused) {
    EXPECT_EQ(parse_error("ext::ssh://host/repo"), "transport \"ext::\" is not allowed");
    EXPECT_EQ(parse_error("fd::3"), "transport \"fd::\" is not allowed");
    EXPECT_EQ(parse_error("x::https://h/r.git"), "transport \"x::\" is not allowed");
    EXPECT_EQ(parse_error("ext::ssh://host/repo", k_allow_http), "transport \"ext::\" is not allowed");
}

TEST(ParseGitUrl, ExtWithCommandIsRefused) {
    // The classic exploit form has spaces; it must be refused either way.
    auto message = parse_error("ext::sh -c touch% /tmp/pwned");
    EXPECT_FALSE(message.empty());
}

TEST(ParseGitUrl, DoubleColonAfterSchemeIsNotATransport) {
    auto u = parse_ok("ssh://[::1]/repo.git");
    EXPECT_EQ(u.transport, Transport::ssh);
}

TEST(ParseGitUrl, UnknownSchemesAreRefused) {
    EXPECT_EQ(parse_error("ftp://h/r.git"), "scheme \"ftp\" is not allowed");
    EXPECT_EQ(parse_error("ext://h/r.git"), "scheme \"ext\" is not allowed");
}

TEST(ParseGitUrl, LeadingDashIsRefused) {
    EXPECT_EQ(parse_error("-uhttps://h/r.git"), "must not start with '-'");
    EXPECT_EQ(parse_error("--upload-pack=touch /tmp/x"), "must not start with '-'");
}

TEST(ParseGitUrl, HostStartingWithDashIsRefused) {
    // ssh would read such a host as an option (CVE-2017-1000117).
    EXPECT_FALSE(parse_git_url("ssh://-oProxyCommand=touch%20x/r.git", k_default_policy).has_value());
    EXPECT_FALSE(parse_git_url("-oProxyCommand=x:r.git", k_default_policy).has_value());
    EXPECT_FALSE(parse_git_url("git@-oProxyCommand=x:r.git", k_default_policy).has_value());
    EXPECT_EQ(parse_error("ssh://-oProxyCommand=x@h/r.git"), "host, user and path must not start with '-'");
    EXPECT_EQ(parse_error("git@h:-r.git"), "host, user and path must not start with '-'");
    // A dash inside a name is fine.
    EXPECT_EQ(parse_ok("ssh://git-user@my-host/r.git").host, "my-host");
}

TEST(ParseGitUrl, PasswordInUrlIsRefusedWithoutRepeatingIt) {
    auto message = parse_error("https://alice:hunter22@h/r.git");
    EXPECT_NE(message.find("token_env"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter22"), std::string::npos) << message;
    // An empty password is still a password field.
    EXPECT_FALSE(parse_git_url("https://alice:@h/r.git", k_default_policy).has_value());
}

TEST(ParseGitUrl, SpacesAndControlCharactersAreRefused) {
    EXPECT_NE(parse_error("https://h/r .git").find("spaces or control"), std::string::npos);
    EXPECT_NE(parse_error(std::string("https://h/r\n.git")).find("spaces or control"), std::string::npos);
    EXPECT_NE(parse_error(std::string("https://h/r\x7f.git")).find("spaces or control"), std::string::npos);
}

TEST(ParseGitUrl, EmptyAndHostlessAreRefused) {
    EXPECT_EQ(parse_error(""), "must not be empty");
    EXPECT_EQ(parse_error("https:///r.git"), "needs a host");
    EXPECT_EQ(parse_error("https://h"), "needs a repository path");
    EXPECT_EQ(parse_error("https://h/"), "needs a repository path");
}

TEST(TransportName, AllNames) {
    EXPECT_EQ(transport_name(Transport::https), "https");
    EXPECT_EQ(transport_name(Transport::http), "http");
    EXPECT_EQ(transport_name(Transport::ssh), "ssh");
    EXPECT_EQ(transport_name(Transport::git), "git");
    EXPECT_EQ(transport_name(Transport::file), "file");
}

TEST(NameFromUrl, StripsSlashesAndDotGit) {
    EXPECT_EQ(name_from_url(parse_ok("https://h/org/app.git")), "org/app");
    EXPECT_EQ(name_from_url(parse_ok("https://h/org/app.git/")), "org/app");
    EXPECT_EQ(name_from_url(parse_ok("https://h/org/app/")), "org/app");
    EXPECT_EQ(name_from_url(parse_ok("git@github.com:org/app.git")), "org/app");
    EXPECT_EQ(name_from_url(parse_ok("ssh://git@h/~user/app.git")), "user/app");
    EXPECT_EQ(name_from_url(parse_ok("/srv/git/app.git")), "srv/git/app");
    EXPECT_EQ(name_from_url(parse_ok("file:///srv/git/app")), "srv/git/app");
    EXPECT_EQ(name_from_url(parse_ok("https://h/app.git.git")), "app.git");
}

TEST(HostKey, IncludesPortAndIsEmptyForFiles) {
    EXPECT_EQ(host_key(parse_ok("https://h.example/r.git")), "h.example");
    EXPECT_EQ(host_key(parse_ok("https://h.example:8443/r.git")), "h.example:8443");
    EXPECT_EQ(host_key(parse_ok("git@h.example:r.git")), "h.example");
    EXPECT_EQ(host_key(parse_ok("/srv/r.git")), "");
}

TEST(OriginOf, SchemeHostAndPortWithDefaults) {
    auto o = origin_of("HTTPS://Git.Example.com/org/app.git/info/refs?service=git-upload-pack");
    ASSERT_TRUE(o);
    EXPECT_EQ(o->scheme, "https");
    EXPECT_EQ(o->host, "git.example.com");
    EXPECT_EQ(o->port, "443");
    EXPECT_EQ(origin_of("http://h/x")->port, "80");
    EXPECT_EQ(origin_of("http://h:8080")->port, "8080");
    EXPECT_EQ(origin_of("http://h:0080/x")->port, "80");
    EXPECT_EQ(origin_of("http://user:pw@h:81/x")->host, "h");
    EXPECT_EQ(origin_of("http://[::1]:8080/x")->host, "[::1]");
    EXPECT_EQ(origin_of("http://[::1]:8080/x")->port, "8080");
    EXPECT_EQ(origin_of("https://[::1]/x")->port, "443");
    EXPECT_EQ(origin_of("https://h/x"), origin_of("https://H:443/y"));
    EXPECT_NE(origin_of("https://h/x"), origin_of("http://h/x"));
    EXPECT_NE(origin_of("https://h/x"), origin_of("https://h:8443/x"));
    EXPECT_NE(origin_of("https://h/x"), origin_of("https://h.evil/x"));
    EXPECT_FALSE(origin_of("ftp://h/x"));
    EXPECT_FALSE(origin_of("/relative/path"));
    EXPECT_FALSE(origin_of("https:///x"));
    EXPECT_FALSE(origin_of("https://h:8x/x"));
    EXPECT_FALSE(origin_of("https://[::1/x"));
}

TEST(DecideRedirect, CredentialsStayWithTheirOrigin) {
    const Origin home = *origin_of("https://git.example.com/org/app.git");
    const std::string same = "https://git.example.com:443/org/renamed.git/info/refs?service=git-upload-pack";
    const std::string other_port = "https://git.example.com:8443/org/app.git/info/refs";
    const std::string other_host = "https://evil.example/org/app.git/info/refs";
    const std::string downgrade = "http://git.example.com/org/app.git/info/refs";
    using enum RedirectAction;
    EXPECT_EQ(decide_redirect(home, same, RedirectPolicy::same_origin), follow_with_credentials);
    EXPECT_EQ(decide_redirect(home, same, RedirectPolicy::any_without_credentials), follow_with_credentials);
    EXPECT_EQ(decide_redirect(home, same, RedirectPolicy::never), refuse);
    for (const auto& target : {other_port, other_host, downgrade}) {
        EXPECT_EQ(decide_redirect(home, target, RedirectPolicy::same_origin), refuse) << target;
        EXPECT_EQ(decide_redirect(home, target, RedirectPolicy::any_without_credentials),
                  follow_without_credentials)
            << target;
        EXPECT_EQ(decide_redirect(home, target, RedirectPolicy::never), refuse) << target;
    }
    // Not http(s), or not absolute: never followed.
    EXPECT_EQ(decide_redirect(home, "file:///etc/passwd", RedirectPolicy::any_without_credentials), refuse);
    EXPECT_EQ(decide_redirect(home, "/org/app.git", RedirectPolicy::any_without_credentials), refuse);
}

TEST(RedirectPolicyName, AllNames) {
    EXPECT_EQ(redirect_policy_name(RedirectPolicy::same_origin), "same_origin");
    EXPECT_EQ(redirect_policy_name(RedirectPolicy::any_without_credentials), "any_without_credentials");
    EXPECT_EQ(redirect_policy_name(RedirectPolicy::never), "never");
}
