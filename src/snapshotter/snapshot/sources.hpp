// The start of a snapshot job: the payload's sources expanded into
// repositories (source/discover.hpp), names checked for collisions, and the
// repositories that left a source since its last run reported as gone.
#pragma once

#include "snapshotter/snapshot/actions.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

struct SourcesExpansion {
    std::vector<job::Repository> repositories;       // the payload's own first, then each source's
    nlohmann::json report = nlohmann::json::array(); // one entry per source
    std::vector<std::string> gone; // names a source listed last run and no longer lists (kept, never pruned)
    std::size_t failed = 0;        // sources that failed (their repositories are not snapshotted)
    std::optional<Error> first_error;
};

// Every repository of `ctx.job`: its explicit ones, then what each source
// discovers. A source that fails (auth, rate limit, collision, cap) is
// reported and left out; the others go on. Writes each source's listing
// to storage unless `ctx.dry_run`.
SourcesExpansion expand_sources(const Context& ctx);

} // namespace snapshotter::snapshot
