// How one repository of a snapshot job ended: the closed set of its result
// entry's "status" values.
#pragma once

#include <string_view>

namespace snapshotter::snapshot {

enum class RepositoryStatus {
    ok,        // a snapshot was committed
    unchanged, // nothing changed since the previous snapshot
    failed,    // every attempt failed
    skipped,   // never run: the job stopped first, or a rerun found it done
};

// The name printed in results: "ok", "unchanged", "failed", "skipped".
constexpr std::string_view status_name(RepositoryStatus status) {
    switch (status) {
    case RepositoryStatus::ok:
        return "ok";
    case RepositoryStatus::unchanged:
        return "unchanged";
    case RepositoryStatus::failed:
        return "failed";
    case RepositoryStatus::skipped:
        return "skipped";
    }
    return "failed";
}

} // namespace snapshotter::snapshot
