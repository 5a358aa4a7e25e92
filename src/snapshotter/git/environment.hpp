// The one isolated environment of every child process git/ starts: the git
// commands of Git (git.hpp) and the stream engine's transport children
// (`git upload-pack` for local paths, `ssh`; transport.hpp). The rules:
//
//  1. Nothing of the caller's environment is inherited except the variables
//     in k_passthrough: PATH and TMPDIR, the proxy variables, the CA
//     certificate locations, and SSH_AUTH_SOCK (an agent the operator set up).
//  2. LC_ALL=C and LANG=C: git's messages are in English, the language the
//     failure classification of its stderr reads (failure.hpp).
//  3. No system git config (GIT_CONFIG_NOSYSTEM=1), and as global config
//     only what `home` says (below); git never prompts (GIT_TERMINAL_PROMPT=0).
//  4. HOME, by what the child is:
//       - a git command: snapshotter's private HOME, whose `gitconfig` (no
//         hooks, no credential helper but snapshotter's, protocol v2) is the
//         only global config;
//       - `git upload-pack` of a local repository: HOME=/nonexistent and no
//         global config at all, so only the repository's own config is read
//         (and uploadpack.packObjectsHook, honoured only from protected
//         config, cannot be set);
//       - `ssh`: the user's HOME, USER and LOGNAME, which ssh and an
//         agent or ProxyCommand the operator configured may need; ssh reads no
//         git config, and the global one is /dev/null.
// What only one kind of child needs (the transport allow-list, credentials
// and GIT_SSH_COMMAND of a git command, GIT_PROTOCOL of a transport child)
// its caller appends.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

// Variables passed through to every child when set (rule 1).
inline constexpr std::string_view k_passthrough[] = {
    "PATH",          "TMPDIR",       "http_proxy",     "https_proxy",    "no_proxy",
    "HTTP_PROXY",    "HTTPS_PROXY",  "NO_PROXY",       "ALL_PROXY",      "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSH_AUTH_SOCK",
};

// Which HOME and global git config a child gets (rule 4).
enum class Home {
    private_home, // a git command: `private_home` and its gitconfig
    none,         // `git upload-pack` of a local repository: no HOME, no global config
    user,         // `ssh`: the user's HOME, USER and LOGNAME
};

// The isolated environment (as NAME=value entries) of a child of kind
// `home`; `private_home` is snapshotter's private HOME (used only with
// Home::private_home, which needs it).
std::vector<std::string> isolated_environment(Home home, const std::filesystem::path& private_home = {});

} // namespace snapshotter::git
