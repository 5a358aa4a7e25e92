#include "snapshotter/lfs/discovery.hpp"

#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>

namespace snapshotter::lfs {

namespace {

// `path` (of a repository URL) cut at a query or fragment, without trailing
// '/', with a leading '/', and with ".git" appended when it lacks it.
std::string repository_path(std::string_view path) {
    path = path.substr(0, path.find_first_of("?#"));
    while (path.ends_with('/'))
        path.remove_suffix(1);
    std::string out = path.starts_with('/') ? std::string(path) : "/" + std::string(path);
    if (!out.ends_with(".git"))
        out += ".git";
    return out;
}

std::string without_trailing_slash(std::string url) {
    while (url.ends_with('/'))
        url.pop_back();
    return url;
}

// Whether `url` is an http(s) URL with a host and no userinfo, within `policy`.
bool is_usable_server_url(std::string_view url, TransportPolicy policy) {
    auto origin = origin_of(url);
    if (!origin || url.size() > 2048)
        return false;
    for (unsigned char c : url)
        if (c <= 0x20 || c == 0x7f)
            return false;
    auto authority = url.substr(url.find("://") + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos)
        return false;
    return origin->scheme == "https" || policy.allow_http;
}

} // namespace

Result<std::string> derive_lfs_url(std::string_view clone_url) {
    auto parsed = parse_git_url(clone_url, {.allow_http = true, .allow_file = true});
    if (!parsed)
        return fail(parsed.error());
    const auto& url = *parsed;
    switch (url.transport) {
    case Transport::https:
    case Transport::http: {
        const std::string port = url.port.empty() ? "" : ":" + url.port;
        return fmt::format("{}://{}{}{}/info/lfs", transport_name(url.transport), url.host, port,
                           repository_path(url.path));
    }
    case Transport::ssh:
    case Transport::git:
        return fmt::format("https://{}{}/info/lfs", url.host, repository_path(url.path));
    case Transport::file:
        break;
    }
    return fail(Error::not_found(
        fmt::format("{} is a local repository: it has no LFS server (give lfs_url)", redact_url(clone_url))));
}

std::string_view to_string(LfsUrlSource source) {
    switch (source) {
    case LfsUrlSource::payload:
        return "payload";
    case LfsUrlSource::lfsconfig:
        return "lfsconfig";
    case LfsUrlSource::derived:
        break;
    }
    return "derived";
}

Result<LfsServer> choose_lfs_server(std::string_view clone_url, const std::optional<std::string>& payload_url,
                                    const std::optional<std::string>& lfsconfig_url, TransportPolicy policy) {
    if (payload_url)
        return LfsServer{without_trailing_slash(*payload_url), LfsUrlSource::payload, true};
    auto derived = derive_lfs_url(clone_url);
    if (lfsconfig_url) {
        if (!is_usable_server_url(*lfsconfig_url, policy))
            return fail(Error::payload(fmt::format(
                ".lfsconfig: lfs.url {:?} is not an http(s) URL with a host and without credentials{}",
                redact_url(*lfsconfig_url), policy.allow_http ? "" : " (http:// needs options.allow_http)")));
        // Credentials only when the clone URL's origin is the .lfsconfig's.
        auto clone_origin = origin_of(clone_url);
        const bool same = clone_origin && clone_origin == origin_of(*lfsconfig_url);
        return LfsServer{without_trailing_slash(*lfsconfig_url), LfsUrlSource::lfsconfig, same};
    }
    if (!derived)
        return fail(derived.error());
    // An ssh or git:// remote's derived https server is another origin than
    // the clone URL: the https token (if any) is the repository's own, so it goes.
    return LfsServer{*derived, LfsUrlSource::derived, true};
}

} // namespace snapshotter::lfs
