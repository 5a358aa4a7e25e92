// Byte transports of the git protocol v2 client: a connection carries the
// server's capability advertisement and then one request/response exchange
// per command. Local paths and file:// spawn `git upload-pack`, git:// is a
// TCP connection, ssh spawns `ssh`, and http(s) is smart HTTP through
// libcurl. Every transport streams: responses are handed over as they arrive.
#pragma once

#include "snapshotter/util/error.hpp"
#include "snapshotter/util/url.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

class CapabilityMemo; // git/protocol.hpp

// Redirects one http(s) request may follow.
inline constexpr int k_max_http_redirects = 10;

// Receives response bytes as they arrive; returns true once it has seen the
// whole response (the transport then stops reading), false for more.
using ResponseHandler = std::function<Result<bool>(std::span<const std::byte>)>;

// How ssh treats the server's host key.
enum class HostKeyPolicy {
    strict,     // only keys in `SshSettings::known_hosts` (or the user's known_hosts when empty)
    accept_new, // trust a host seen for the first time, refuse a changed key
    insecure,   // accept any key (tests only)
};

// ssh credentials and host-key checking.
struct SshSettings {
    std::string private_key; // key text; written to a 0600 file in a private directory for the connection
    std::string known_hosts; // known_hosts lines; when set, the only file ssh consults
    HostKeyPolicy host_key_policy = HostKeyPolicy::strict;
};

// Where and how to connect.
struct TransportOptions {
    std::string url;                      // as in the payload; never holds a password
    TransportPolicy policy;               // transports allowed besides https, ssh, git
    std::string username;                 // basic auth for http(s), login for ssh when the URL has none
    std::string password;                 // token or password for http(s); empty when anonymous
    SshSettings ssh;                      // key and host-key policy for ssh
    std::vector<std::string> ssh_options; // further `ssh` arguments, appended after those `ssh` implies
    RedirectPolicy redirects = RedirectPolicy::same_origin;       // which http(s) redirects are followed
    std::chrono::milliseconds timeout = std::chrono::minutes{30}; // for the whole connection
    // Smart-HTTP capabilities shared by a job's connections (git/protocol.hpp), which it must
    // outlive; null: every connection reads the server's advertisement first.
    CapabilityMemo* capabilities = nullptr;
};

// One conversation with an upload-pack server.
class Connection {
  public:
    virtual ~Connection() = default;
    // Stream the server's capability advertisement (the first response) into `handler`.
    virtual Status read_advertisement(const ResponseHandler& handler) = 0;
    // Send one complete command request (pkt-lines ending in a flush) and
    // stream its response into `handler`.
    virtual Status request(std::string_view body, const ResponseHandler& handler) = 0;
    // End the conversation; fails when the server side reported an error.
    virtual Status close() = 0;
    // The remote, safe to print.
    [[nodiscard]] virtual std::string describe() const = 0;
    // True when every request stands alone (smart HTTP): the server needs no
    // read_advertisement() first, so a client that knows its capabilities may
    // send a command at once (CapabilityMemo). False for the others, whose
    // server speaks first.
    [[nodiscard]] virtual bool stateless() const { return false; }
    // True when the last advertisement came from the origin of the configured
    // URL (a redirect may have led to another); always true but for http(s).
    [[nodiscard]] virtual bool advertised_by_origin() const { return true; }
};

// Open a connection to `options.url` with the transport its scheme selects;
// fails with Payload for a URL the policy refuses, with Git when the server
// cannot be reached.
Result<std::unique_ptr<Connection>> connect(const TransportOptions& options);

// Local path or file://: `git upload-pack <path>` with GIT_PROTOCOL=version=2.
Result<std::unique_ptr<Connection>> connect_local(const GitUrl& url, const TransportOptions& options);
// git://host[:port]/path over TCP (port 9418 by default).
Result<std::unique_ptr<Connection>> connect_daemon(const GitUrl& url, const TransportOptions& options);
// ssh: `ssh [options] [-p port] -- [user@]host "git-upload-pack '<path>'"` with GIT_PROTOCOL=version=2;
// the key and known_hosts of `options.ssh` live in a private directory removed with the connection.
Result<std::unique_ptr<Connection>> connect_ssh(const GitUrl& url, const TransportOptions& options);
// http(s): smart HTTP (GET info/refs, then one POST per command) through libcurl.
// Credentials go only to the origin of `options.url`; redirects are followed
// (at most k_max_http_redirects) as `options.redirects` says, and a refused one
// is a Git error naming it; later requests go where the advertisement's
// redirects led; stateless(): a POST may come first, with no GET before it.
// Response headers past k_max_response_header_bytes end the request with a
// Git error.
Result<std::unique_ptr<Connection>> connect_http(const GitUrl& url, const TransportOptions& options);

// `text` quoted for a POSIX shell inside single quotes (the remote side of ssh
// runs a shell; this is the only quoting snapshotter ever does).
std::string shell_single_quote(std::string_view text);

// The `ssh` arguments that `settings` imply, given the private directory
// `dir` where the key and known_hosts files are written (0600); fails with
// Internal when they cannot be written.
Result<std::vector<std::string>> ssh_arguments(const SshSettings& settings, const std::filesystem::path& dir);

} // namespace snapshotter::git
