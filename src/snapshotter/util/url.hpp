// Parsing of repository URLs and the transport allow-list they must pass.
#pragma once

#include "snapshotter/util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace snapshotter {

// Transports a repository URL may use.
enum class Transport { https, http, ssh, git, file };

std::string_view transport_name(Transport t);

struct GitUrl {
    Transport transport = Transport::https;
    std::string user; // userinfo before '@' (ssh only: other transports refuse it; no password is ever kept)
    std::string host; // empty for file; an IPv6 literal keeps its brackets ("[::1]")
    std::string port; // empty when not given
    std::string path; // repository path as written, starting with '/' except scp-like ssh
    bool has_password = false;
};

// Which transports are allowed besides https, ssh and git.
struct TransportPolicy {
    bool allow_http = false;
    bool allow_file = true;
};

// Which HTTP redirects the git engines follow (options.http.follow_redirects).
// Credentials go only to the origin of the configured URL, whatever the policy.
enum class RedirectPolicy {
    same_origin,             // follow redirects within the origin; refuse one to another origin
    any_without_credentials, // also follow one to another origin, sending it no credential
    never,                   // refuse every redirect
};

// The payload name of `policy` ("same_origin", ...).
std::string_view redirect_policy_name(RedirectPolicy policy);

// Scheme, host and port of an http(s) URL: where a credential may be sent.
struct Origin {
    std::string scheme; // "http" or "https", lowercase
    std::string host;   // lowercase; an IPv6 literal keeps its brackets
    std::string port;   // always set: the scheme's default when the URL names none
    friend bool operator==(const Origin&, const Origin&) = default;
};

// The origin of absolute http(s) URL `url`; nullopt for any other URL or one
// without a host.
std::optional<Origin> origin_of(std::string_view url);

// What to do with a redirect.
enum class RedirectAction {
    follow_with_credentials,    // same origin: the credentials go along
    follow_without_credentials, // another origin that the policy allows: nothing secret goes
    refuse,                     // stop with an error naming the redirect
};

// Decide a redirect from a request to `configured`'s origin to absolute URL
// `target` under `policy`; a target that is not http(s) or has no host is
// refused.
RedirectAction decide_redirect(const Origin& configured, std::string_view target, RedirectPolicy policy);

// Parse `url` (scheme://..., scp-like user@host:path, or an absolute local
// path) and check it against `policy`. The error message says what is wrong
// without repeating a password.
Result<GitUrl> parse_git_url(std::string_view url, TransportPolicy policy);

// A repository name derived from `url`: its path without leading '/', a
// trailing ".git" or '/', e.g. "org/app" for https://host/org/app.git.
std::string name_from_url(const GitUrl& url);

// `url.host` without the brackets of an IPv6 literal, as resolvers and ssh want it.
std::string bare_host(const GitUrl& url);

// The host part used to group connections (empty for local paths).
std::string host_key(const GitUrl& url);

} // namespace snapshotter
