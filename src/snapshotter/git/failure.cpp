#include "snapshotter/git/failure.hpp"

#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>
#include <utility>

namespace snapshotter::git {
namespace {

// git's, curl's (inside git) and ssh's words for a permanent refusal.
constexpr std::string_view k_refused[] = {
    "Authentication failed",
    "returned error: 401",
    "returned error: 403",
    "returned error: 404",
    "returned error: 451",
    "not found",
    "does not appear to be a git repository",
    "access denied",
    "Access denied",
    "has been disabled",
    "is disabled",
    "Repository disabled",
    "could not read Username",
    "Permission denied",
};

// The system's words for a local write that failed (a full cache_dir): not
// worth a retry, whatever git says after it (index-pack dying of it makes
// fetch-pack report "invalid index-pack output", a transient marker below).
constexpr std::string_view k_local_write_failed[] = {
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
};

// Their words for a failure worth retrying, with its cause; the first that
// matches decides, so HTTP statuses come before curl's "RPC failed" that
// carries them. Every marker but the two TLS library function names
// (SSL_read, gnutls_handshake) holds a space, which a URL (git's messages
// quote it) never does, so a repository's name cannot decide; at worst a
// repository named after one of those two is retried before it fails.
constexpr std::pair<std::string_view, Cause> k_transient[] = {
    {"returned error: 5", Cause::http_5xx},
    {"returned error: 429", Cause::http_429},
    {"Connection reset", Cause::reset},
    {"connection reset", Cause::reset},
    {"Connection refused", Cause::network},
    {"timed out", Cause::timeout},
    {"Timed out", Cause::timeout},
    {"RPC failed", Cause::reset},
    {"early EOF", Cause::reset},
    {"unexpected disconnect", Cause::reset},
    {"hung up unexpectedly", Cause::reset},
    {"Operation too slow", Cause::timeout},
    {"Could not resolve host", Cause::network},
    {"transfer closed", Cause::reset},
    {"Empty reply from server", Cause::reset},
    {"Recv failure", Cause::reset},
    {"Send failure", Cause::reset},
    {"SSL_read", Cause::reset},
    {"gnutls_handshake", Cause::network},
    {"unable to access", Cause::network},
    {"the remote end hung up", Cause::reset},
    {"fetch-pack: invalid index-pack output", Cause::reset},
};

// git's word for a server that broke the protocol.
constexpr std::string_view k_protocol_error = "protocol error";

bool holds(std::string_view text, std::string_view marker) {
    return text.find(marker) != std::string_view::npos;
}

} // namespace

Cause classify_git_stderr(std::string_view text) {
    for (auto marker : k_refused)
        if (holds(text, marker))
            return Cause::refused;
    for (auto marker : k_local_write_failed)
        if (holds(text, marker))
            return Cause::unspecified;
    for (const auto& [marker, cause] : k_transient)
        if (holds(text, marker))
            return cause;
    if (holds(text, k_protocol_error))
        return Cause::protocol;
    return Cause::unspecified;
}

Error git_failure(std::string_view what, std::string_view stderr_text) {
    std::string detail = tail_lines(redact(stderr_text));
    return Error::git(fmt::format("{}: {}", what, detail), classify_git_stderr(detail));
}

} // namespace snapshotter::git
