#include "snapshotter/snapshot/selection.hpp"

#include "snapshotter/util/text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace snapshotter::snapshot {

std::optional<std::string> newest_at_or_before(const std::vector<std::string>& ids, Clock::time_point as_of) {
    std::optional<std::string> best;
    std::optional<Clock::time_point> best_time;
    for (const auto& id : ids) {
        auto t = snapshot_id_time(id);
        if (!t || *t > as_of)
            continue;
        if (!best_time || *t > *best_time || (*t == *best_time && id > *best)) {
            best = id;
            best_time = t;
        }
    }
    return best;
}

std::optional<std::string> oldest_of(const std::vector<std::string>& ids) {
    std::optional<std::string> best;
    for (const auto& id : ids)
        if (is_snapshot_id(id) && (!best || id < *best))
            best = id;
    return best;
}

Result<std::string> resolve_prefix(const std::vector<std::string>& ids, const std::string& prefix,
                                   const std::string& repository) {
    std::vector<std::string> matches;
    for (const auto& id : ids) {
        if (id == prefix)
            return id;
        if (id.starts_with(prefix))
            matches.push_back(id);
    }
    if (matches.size() == 1)
        return matches.front();
    if (matches.empty())
        return fail(
            Error::not_found(fmt::format("{}: no snapshot id starts with \"{}\"", repository, prefix)));
    std::vector<std::string> shown(matches.begin(),
                                   matches.begin() +
                                       static_cast<std::ptrdiff_t>(std::min<std::size_t>(5, matches.size())));
    return fail(Error::not_found(fmt::format("{}: \"{}\" is ambiguous: {} snapshots start with it ({}{})",
                                             repository, prefix, matches.size(), fmt::join(shown, ", "),
                                             matches.size() > shown.size() ? ", ..." : "")));
}

Error unknown_repository(const std::string& name, const std::vector<std::string>& known) {
    auto near = nearest_name(name, known, std::max<std::size_t>(3, name.size() / 3));
    return Error::not_found(fmt::format("unknown repository \"{}\"{}", name,
                                        near ? fmt::format(" (did you mean \"{}\"?)", *near) : ""));
}

} // namespace snapshotter::snapshot
