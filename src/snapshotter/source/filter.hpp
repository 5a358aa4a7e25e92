// The filters of a source, as one pure function: which listed repositories
// a source keeps, and what each filter removed (the dry run reports it).
#pragma once

#include "snapshotter/job/job.hpp"
#include "snapshotter/source/forge.hpp"

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::source {

// The filters, in the order they apply.
inline constexpr std::array<std::string_view, 7> k_filters = {"include",    "exclude", "archived",    "forks",
                                                              "visibility", "topics",  "pushed_since"};

struct FilterResult {
    std::vector<RemoteRepository> kept;
    // For each filter of k_filters (same index), the full names it removed.
    std::array<std::vector<std::string>, k_filters.size()> removed;
};

// Apply `source`'s filters to `listed`, in the order of k_filters:
// include and exclude globs on the full name, archived, forks, visibility
// ("private" keeps private and internal), topics (any one of them),
// pushed_since (a repository whose forge gives no time is kept).
FilterResult apply_filters(const job::Source& source, std::vector<RemoteRepository> listed);

// The same filters on one more page of a listing: what `listed` keeps is
// appended to `out.kept`, what it removes to `out.removed` (discovery
// filters each page as it arrives, so no page is held after it is read).
void filter_into(const job::Source& source, std::vector<RemoteRepository> listed, FilterResult& out);

// True when glob `pattern` matches `text`, ignoring ASCII case: `*` matches
// any run of characters except '/', `**` any run including '/', `?` one
// character except '/', `[abc]`, `[a-z]` and `[!abc]` one character of (not
// of) a set; every other character matches itself.
bool glob_match(std::string_view pattern, std::string_view text);

} // namespace snapshotter::source
