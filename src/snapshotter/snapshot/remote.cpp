#include "snapshotter/snapshot/remote.hpp"

#include "snapshotter/util/redact.hpp"

#include <algorithm>

namespace snapshotter::snapshot {

RemoteAccess remote_access(const job::Repository& repo, const job::Options& options,
                           git::CapabilityMemo* capabilities) {
    git::Remote remote{repo.url, {options.allow_http, options.allow_file}, "", "", {}};
    remote.redirects = options.http.follow_redirects;
    remote.ssh.known_hosts = options.ssh.known_hosts;
    remote.ssh.host_key_policy = options.ssh.host_key_policy == job::HostKeyPolicy::accept_new
                                     ? git::HostKeyPolicy::accept_new
                                     : git::HostKeyPolicy::strict;
    if (repo.credentials) {
        remote.username = repo.credentials->username;
        if (!repo.credentials->token_env.empty()) {
            remote.password = job::process_env(repo.credentials->token_env).value_or("");
            register_secret(remote.password);
        }
        if (!repo.credentials->ssh_key_env.empty()) {
            remote.ssh.private_key = job::process_env(repo.credentials->ssh_key_env).value_or("");
            register_secret(remote.ssh.private_key);
            // Each line on its own too, in case a tool quotes one.
            for (std::string_view rest = remote.ssh.private_key; !rest.empty();) {
                auto line = rest.substr(0, rest.find('\n'));
                if (line.size() >= 16 && !line.starts_with("-----"))
                    register_secret(line);
                rest.remove_prefix(std::min(rest.size(), line.size() + 1));
            }
        }
    }
    git::TransportOptions transport;
    transport.url = remote.url;
    transport.policy = remote.policy;
    transport.username = remote.username;
    transport.password = remote.password;
    transport.ssh = remote.ssh;
    transport.redirects = remote.redirects;
    transport.capabilities = capabilities;
    return {std::move(remote), std::move(transport)};
}

} // namespace snapshotter::snapshot
