// Parsing of repository URLs and the transport allow-list they must pass.
#pragma once

#include "snapshotter/util/error.hpp"

#include <string>
#include <string_view>

namespace snapshotter {

// Transports a repository URL may use.
enum class Transport { https, http, ssh, git, file };

std::string_view transport_name(Transport t);

struct GitUrl {
    Transport transport = Transport::https;
    std::string user; // userinfo before '@' (no password is ever kept)
    std::string host; // empty for file
    std::string port; // empty when not given
    std::string path; // repository path as written, starting with '/' except scp-like ssh
    bool has_password = false;
};

// Which transports are allowed besides https, ssh and git.
struct TransportPolicy {
    bool allow_http = false;
    bool allow_file = true;
};

// Parse `url` (scheme://..., scp-like user@host:path, or an absolute local
// path) and check it against `policy`. The error message says what is wrong
// without repeating a password.
Result<GitUrl> parse_git_url(std::string_view url, TransportPolicy policy);

// A repository name derived from `url`: its path without leading '/', a
// trailing ".git" or '/', e.g. "org/app" for https://host/org/app.git.
std::string name_from_url(const GitUrl& url);

// The host part used to group connections (empty for local paths).
std::string host_key(const GitUrl& url);

} // namespace snapshotter
