// Which snapshot a person means: pure decisions over the ids a repository
// has, so that restore (and anything else that picks snapshots) reads them
// the same way and unit tests can cover them without storage.
#pragma once

#include "snapshotter/util/error.hpp"
#include "snapshotter/util/time.hpp"

#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// The newest of `ids` (snapshot ids, any order) created at or before
// `as_of`, or nullopt when every one is newer (ids that are not snapshot
// ids are ignored).
std::optional<std::string> newest_at_or_before(const std::vector<std::string>& ids, Clock::time_point as_of);

// The oldest of `ids` (snapshot ids, any order), or nullopt when none is a
// snapshot id.
std::optional<std::string> oldest_of(const std::vector<std::string>& ids);

// The one id of `ids` that starts with `prefix` (a whole id matches itself).
// NotFound when none does, naming `repository`; NotFound too when several do,
// listing up to five of them ("ambiguous").
Result<std::string> resolve_prefix(const std::vector<std::string>& ids, const std::string& prefix,
                                   const std::string& repository);

// NotFound `unknown repository "x"`, with ` (did you mean "y"?)` when one of
// `known` is near.
Error unknown_repository(const std::string& name, const std::vector<std::string>& known);

} // namespace snapshotter::snapshot
