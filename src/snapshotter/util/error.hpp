// Error values shared by every layer: a kind that maps to the documented
// "error" field of the JSON result, and a message that never holds a secret.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace snapshotter {

// The documented error kinds (docs/errors in README). Keep this list short.
enum class ErrorKind {
    Usage,       // the command line is wrong (unknown flag, missing value)
    Payload,     // the job payload is invalid (bad JSON, bad value, unknown key)
    Git,         // git or a git server failed (auth, network, missing repository)
    Storage,     // the storage backend failed (I/O, permissions, S3 errors)
    Integrity,   // stored data does not match its checksum or manifest
    NotFound,    // a requested snapshot, repository or object does not exist
    Conflict,    // an object that must not be overwritten already exists
    Timeout,     // an operation ran past its time limit
    Interrupted, // the job was stopped by a signal
    Internal,    // a bug: an invariant of snapshotter itself did not hold
};

// The stable name of `kind` as printed in results, e.g. "PayloadError".
std::string_view error_kind_name(ErrorKind kind);

// Why an operation failed, as far as what to do next depends on it. It is
// set where the failure is observed (a curl code, an HTTP status, an errno,
// a git subprocess's exit and stderr, a protocol check) and carried through
// every layer; no decision reads it back from the message.
enum class Cause {
    unspecified, // nothing more is known; not worth a retry
    // Transient: the same request may succeed when tried again.
    network,  // the server could not be reached (refused, name lookup, TLS handshake)
    reset,    // the connection was reset or ended before the answer was complete
    timeout,  // the network or the server was too slow, as the transport reported it
    http_5xx, // the server failed (HTTP 5xx)
    http_429, // the server asked to slow down (HTTP 429)
    // Permanent.
    refused,  // the server refused: authentication, permission, not found, disabled
    not_v2,   // the server does not speak git protocol v2
    protocol, // the server broke the git protocol
};

// True for the causes worth another attempt (network .. http_429).
bool is_transient(Cause cause);

// The stable name of `cause`, e.g. "http_5xx" (for logs and tests).
std::string_view cause_name(Cause cause);

// The cause of a failure whose message is made of parts observed apart (an
// error and the stderr of the process behind it): a refusal wins, then a
// transient cause, then a protocol one, the way one message with both
// would be judged.
Cause strongest(Cause a, Cause b);

// The cause of a socket or pipe call failing with `error` (an errno value):
// ECONNREFUSED network, ECONNRESET reset, ETIMEDOUT timeout, else unspecified.
Cause cause_of_errno(int error);

struct Error {
    ErrorKind kind = ErrorKind::Internal;
    std::string message;
    Cause cause = Cause::unspecified;

    static Error payload(std::string m) { return {ErrorKind::Payload, std::move(m)}; }
    static Error git(std::string m, Cause cause = Cause::unspecified) {
        return {ErrorKind::Git, std::move(m), cause};
    }
    static Error storage(std::string m) { return {ErrorKind::Storage, std::move(m)}; }
    static Error integrity(std::string m) { return {ErrorKind::Integrity, std::move(m)}; }
    static Error not_found(std::string m) { return {ErrorKind::NotFound, std::move(m)}; }
    static Error conflict(std::string m) { return {ErrorKind::Conflict, std::move(m)}; }
    static Error timeout(std::string m) { return {ErrorKind::Timeout, std::move(m)}; }
    static Error interrupted(std::string m) { return {ErrorKind::Interrupted, std::move(m)}; }
    static Error internal(std::string m) { return {ErrorKind::Internal, std::move(m)}; }

    // A copy of this error whose message is prefixed by `context` and ": ".
    [[nodiscard]] Error with_context(std::string_view context) const {
        return {kind, std::string(context) + ": " + message, cause};
    }

    // Whether another attempt may succeed (is_transient(cause)).
    [[nodiscard]] bool transient() const { return is_transient(cause); }
};

template <typename T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Shorthand for `return std::unexpected(error)`.
inline std::unexpected<Error> fail(Error error) {
    return std::unexpected<Error>(std::move(error));
}

} // namespace snapshotter
