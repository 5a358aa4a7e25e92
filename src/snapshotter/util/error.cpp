#include "snapshotter/util/error.hpp"

#include <cerrno>

namespace snapshotter {

std::string_view error_kind_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Usage:
        return "UsageError";
    case ErrorKind::Payload:
        return "PayloadError";
    case ErrorKind::Git:
        return "GitError";
    case ErrorKind::Storage:
        return "StorageError";
    case ErrorKind::Integrity:
        return "IntegrityError";
    case ErrorKind::NotFound:
        return "NotFound";
    case ErrorKind::Conflict:
        return "Conflict";
    case ErrorKind::Timeout:
        return "Timeout";
    case ErrorKind::Interrupted:
        return "Interrupted";
    case ErrorKind::Internal:
        return "InternalError";
    }
    return "InternalError";
}

bool is_transient(Cause cause) {
    switch (cause) {
    case Cause::network:
    case Cause::reset:
    case Cause::timeout:
    case Cause::http_5xx:
    case Cause::http_429:
        return true;
    case Cause::unspecified:
    case Cause::refused:
    case Cause::not_v2:
    case Cause::protocol:
        return false;
    }
    return false;
}

std::string_view cause_name(Cause cause) {
    switch (cause) {
    case Cause::unspecified:
        return "unspecified";
    case Cause::network:
        return "network";
    case Cause::reset:
        return "reset";
    case Cause::timeout:
        return "timeout";
    case Cause::http_5xx:
        return "http_5xx";
    case Cause::http_429:
        return "http_429";
    case Cause::refused:
        return "refused";
    case Cause::not_v2:
        return "not_v2";
    case Cause::protocol:
        return "protocol";
    }
    return "unspecified";
}

namespace {

// Higher wins in strongest().
int rank(Cause cause) {
    if (cause == Cause::refused)
        return 3;
    if (is_transient(cause))
        return 2;
    if (cause == Cause::not_v2 || cause == Cause::protocol)
        return 1;
    return 0;
}

} // namespace

Cause strongest(Cause a, Cause b) {
    return rank(b) > rank(a) ? b : a;
}

Cause cause_of_errno(int error) {
    switch (error) {
    case ECONNREFUSED:
        return Cause::network;
    case ECONNRESET:
        return Cause::reset;
    case ETIMEDOUT:
        return Cause::timeout;
    default:
        return Cause::unspecified;
    }
}

} // namespace snapshotter
