#include "snapshotter/util/url.hpp"

#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace snapshotter {

std::string_view transport_name(Transport t) {
    switch (t) {
    case Transport::https:
        return "https";
    case Transport::http:
        return "http";
    case Transport::ssh:
        return "ssh";
    case Transport::git:
        return "git";
    case Transport::file:
        return "file";
    }
    return "?";
}

std::string_view redirect_policy_name(RedirectPolicy policy) {
    switch (policy) {
    case RedirectPolicy::same_origin:
        return "same_origin";
    case RedirectPolicy::any_without_credentials:
        return "any_without_credentials";
    case RedirectPolicy::never:
        return "never";
    }
    return "?";
}

std::optional<Origin> origin_of(std::string_view url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos)
        return std::nullopt;
    Origin out;
    for (char c : url.substr(0, scheme_end))
        out.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (out.scheme != "http" && out.scheme != "https")
        return std::nullopt;
    std::string_view authority = url.substr(scheme_end + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (auto at = authority.rfind('@'); at != std::string_view::npos)
        authority.remove_prefix(at + 1);
    std::size_t host_end = authority.size();
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        host_end = close + 1;
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host_end = colon;
    }
    for (char c : authority.substr(0, host_end))
        out.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (host_end < authority.size()) {
        if (authority[host_end] != ':')
            return std::nullopt;
        out.port = std::string(authority.substr(host_end + 1));
        if (out.port.find_first_not_of("0123456789") != std::string::npos || out.port.size() > 5)
            return std::nullopt;
        // "0080" and "80" are one port.
        out.port.erase(0, std::min(out.port.find_first_not_of('0'), out.port.size() - 1));
    }
    if (out.port.empty())
        out.port = out.scheme == "https" ? "443" : "80";
    if (out.host.empty())
        return std::nullopt;
    return out;
}

RedirectAction decide_redirect(const Origin& configured, std::string_view target, RedirectPolicy policy) {
    auto to = origin_of(target);
    if (!to || policy == RedirectPolicy::never)
        return RedirectAction::refuse;
    if (*to == configured)
        return RedirectAction::follow_with_credentials;
    return policy == RedirectPolicy::any_without_credentials ? RedirectAction::follow_without_credentials
                                                             : RedirectAction::refuse;
}

Result<GitUrl> parse_git_url(std::string_view url, TransportPolicy policy) {
    if (url.empty())
        return fail(Error::payload("must not be empty"));
    if (url.front() == '-')
        return fail(Error::payload("must not start with '-'"));
    for (unsigned char c : url)
        if (c < 0x20 || c == 0x7f || c == ' ')
            return fail(Error::payload("must not contain spaces or control characters"));

    GitUrl out;
    auto scheme_end = url.find("://");
    auto double_colon = url.find("::");
    if (double_colon != std::string_view::npos &&
        (scheme_end == std::string_view::npos || double_colon < scheme_end))
        return fail(Error::payload(fmt::format("transport \"{}::\" is not allowed",
                                               url.substr(0, std::min<std::size_t>(double_colon, 16)))));

    if (scheme_end == std::string_view::npos) {
        if (url.front() == '/') {
            out.transport = Transport::file;
            out.path = std::string(url);
        } else {
            // scp-like ssh: [user@]host:path (the host has no '/').
            auto colon = url.find(':');
            auto slash = url.find('/');
            if (colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon))
                return fail(Error::payload(
                    "must be a URL (https://, ssh://, git://, file://), user@host:path or an absolute path"));
            std::string_view userhost = url.substr(0, colon);
            auto at = userhost.rfind('@');
            if (at != std::string_view::npos) {
                out.user = std::string(userhost.substr(0, at));
                userhost = userhost.substr(at + 1);
            }
            out.transport = Transport::ssh;
            out.host = std::string(userhost);
            out.path = std::string(url.substr(colon + 1));
            if (out.host.empty() || out.path.empty())
                return fail(Error::payload("ssh address needs a host and a path"));
        }
    } else {
        std::string scheme(url.substr(0, scheme_end));
        for (auto& c : scheme)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (scheme == "https")
            out.transport = Transport::https;
        else if (scheme == "http")
            out.transport = Transport::http;
        else if (scheme == "ssh" || scheme == "git+ssh" || scheme == "ssh+git")
            out.transport = Transport::ssh;
        else if (scheme == "git")
            out.transport = Transport::git;
        else if (scheme == "file")
            out.transport = Transport::file;
        else
            return fail(Error::payload(fmt::format("scheme \"{}\" is not allowed", scheme)));
        std::string_view rest = url.substr(scheme_end + 3);
        auto slash = rest.find('/');
        std::string_view authority = rest.substr(0, slash);
        out.path = slash == std::string_view::npos ? std::string{} : std::string(rest.substr(slash));
        auto at = authority.rfind('@');
        if (at != std::string_view::npos) {
            std::string_view userinfo = authority.substr(0, at);
            auto colon = userinfo.find(':');
            out.has_password = colon != std::string_view::npos;
            out.user = std::string(userinfo.substr(0, colon));
            authority = authority.substr(at + 1);
        }
        // An IPv6 literal keeps its brackets in `host`; a port may follow the ']'.
        std::size_t host_end = authority.size();
        if (authority.starts_with('[')) {
            auto close = authority.find(']');
            if (close == std::string_view::npos)
                return fail(Error::payload("an IPv6 address needs its closing ']'"));
            host_end = close + 1;
            if (host_end < authority.size() && authority[host_end] != ':')
                return fail(Error::payload("only a ':port' may follow an IPv6 address"));
        } else if (auto port_colon = authority.rfind(':'); port_colon != std::string_view::npos) {
            host_end = port_colon;
        }
        if (host_end < authority.size()) {
            out.port = std::string(authority.substr(host_end + 1)); // "host:" means the default port
            if (out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos)
                return fail(Error::payload("the port must be a number"));
        }
        out.host = std::string(authority.substr(0, host_end));
        if (out.transport != Transport::file && out.host.empty())
            return fail(Error::payload("needs a host"));
        if (out.transport == Transport::file && !out.host.empty() && out.host != "localhost")
            return fail(Error::payload("file:// URLs must be local (file:///path)"));
        if (out.path.empty() || out.path == "/")
            return fail(Error::payload("needs a repository path"));
        // git percent-decodes a file:// URL's path (file:///srv/pct%41.git is
        // /srv/pctA.git, checked with git 2.39) and reads a plain path as
        // written; the stream engine opens this decoded path, git decodes alike.
        if (out.transport == Transport::file) {
            std::string decoded;
            for (std::size_t i = 0; i < out.path.size(); ++i) {
                int hi = i + 2 < out.path.size() && out.path[i] == '%' ? hex_value(out.path[i + 1]) : -1;
                int lo = hi >= 0 ? hex_value(out.path[i + 2]) : -1;
                if (hi >= 0 && lo >= 0) {
                    decoded.push_back(static_cast<char>(hi * 16 + lo));
                    i += 2;
                } else {
                    decoded.push_back(out.path[i]);
                }
            }
            if (decoded.find('\0') != std::string::npos)
                return fail(Error::payload("a file:// path must not decode to a NUL byte"));
            out.path = std::move(decoded);
        }
    }
    // ssh and git read a host, user or path that starts with '-' as an option
    // (CVE-2017-1000117); git refuses them too, but never hand one over.
    if (out.host.starts_with('-') || out.user.starts_with('-') || out.path.starts_with('-'))
        return fail(Error::payload("host, user and path must not start with '-'"));
    if (out.has_password)
        return fail(Error::payload("credentials in the URL are not allowed; use credentials.token_env"));
    // Forges document https://TOKEN@host/...: a user name in an http(s) or git
    // URL may be a token, and the URL is printed (manifest, report, logs).
    if (!out.user.empty() && out.transport != Transport::ssh)
        return fail(Error::payload(
            fmt::format("a user name in a {} URL is not allowed (it may be a token, and URLs are printed); "
                        "put the token in the variable named by credentials.token_env and the user name "
                        "in credentials.username",
                        transport_name(out.transport))));
    if (out.transport == Transport::http && !policy.allow_http)
        return fail(Error::payload("scheme \"http\" is not allowed (set options.allow_http to permit it)"));
    if (out.transport == Transport::file && !policy.allow_file)
        return fail(Error::payload("local repositories are not allowed (options.allow_file is false)"));
    return out;
}

std::string name_from_url(const GitUrl& url) {
    std::string_view path = url.path;
    while (!path.empty() && (path.front() == '/' || path.front() == '~'))
        path.remove_prefix(1);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    if (path.ends_with(".git"))
        path.remove_suffix(4);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    return std::string(path);
}

std::string bare_host(const GitUrl& url) {
    const std::string& host = url.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        return host.substr(1, host.size() - 2);
    return host;
}

std::string host_key(const GitUrl& url) {
    if (url.transport == Transport::file)
        return {};
    return url.port.empty() ? url.host : url.host + ":" + url.port;
}

} // namespace snapshotter
