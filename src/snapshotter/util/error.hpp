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

struct Error {
    ErrorKind kind = ErrorKind::Internal;
    std::string message;

    static Error payload(std::string m) { return {ErrorKind::Payload, std::move(m)}; }
    static Error git(std::string m) { return {ErrorKind::Git, std::move(m)}; }
    static Error storage(std::string m) { return {ErrorKind::Storage, std::move(m)}; }
    static Error integrity(std::string m) { return {ErrorKind::Integrity, std::move(m)}; }
    static Error not_found(std::string m) { return {ErrorKind::NotFound, std::move(m)}; }
    static Error conflict(std::string m) { return {ErrorKind::Conflict, std::move(m)}; }
    static Error timeout(std::string m) { return {ErrorKind::Timeout, std::move(m)}; }
    static Error interrupted(std::string m) { return {ErrorKind::Interrupted, std::move(m)}; }
    static Error internal(std::string m) { return {ErrorKind::Internal, std::move(m)}; }

    // A copy of this error whose message is prefixed by `context` and ": ".
    [[nodiscard]] Error with_context(std::string_view context) const {
        return {kind, std::string(context) + ": " + message};
    }
};

template <typename T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Shorthand for `return std::unexpected(error)`.
inline std::unexpected<Error> fail(Error error) {
    return std::unexpected<Error>(std::move(error));
}

} // namespace snapshotter
