#include "snapshotter/git/transport.hpp"

#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>

namespace snapshotter::git {

std::string shell_single_quote(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

Result<std::unique_ptr<Connection>> connect(const TransportOptions& options) {
    if (!options.password.empty())
        register_secret(options.password);
    auto url = parse_git_url(options.url, options.policy);
    if (!url)
        return fail(url.error().with_context(fmt::format("repository URL {}", redact_url(options.url))));
    switch (url->transport) {
    case Transport::file:
        return connect_local(*url, options);
    case Transport::git:
        return connect_daemon(*url, options);
    case Transport::ssh:
        return connect_ssh(*url, options);
    case Transport::http:
    case Transport::https:
        return connect_http(*url, options);
    }
    return fail(Error::internal("unknown transport"));
}

} // namespace snapshotter::git
