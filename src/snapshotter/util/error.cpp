#include "snapshotter/util/error.hpp"

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

} // namespace snapshotter
