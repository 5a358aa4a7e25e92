#include "snapshotter/snapshot/exactness.hpp"

#include "snapshotter/git/refname.hpp"
#include "snapshotter/util/text.hpp"

#include <fmt/format.h>

namespace snapshotter::snapshot {
namespace {

std::string short_oid(const std::string& oid) {
    return oid.substr(0, 12);
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines)
        out += (out.empty() ? "" : "; ") + line;
    return out;
}

} // namespace

std::vector<std::string> ref_differences(const git::RefMap& listed, const git::RefMap& recorded,
                                         std::size_t max) {
    std::vector<std::string> out;
    std::size_t total = 0;
    auto note = [&](std::string line) {
        if (++total <= max)
            out.push_back(std::move(line));
    };
    for (const auto& [name, target] : listed) {
        auto it = recorded.find(name);
        if (it == recorded.end())
            note(fmt::format("missing {}", git::refname_excerpt(name)));
        else if (it->second.oid != target.oid)
            note(fmt::format("{}: listed {}, recorded {}", git::refname_excerpt(name), short_oid(target.oid),
                             short_oid(it->second.oid)));
    }
    for (const auto& [name, target] : recorded)
        if (!listed.contains(name))
            note(fmt::format("unexpected {}", git::refname_excerpt(name)));
    if (total > max)
        out.push_back(fmt::format("and {} more", total - max));
    return out;
}

Status check_recorded_refs(std::string_view repository, const git::RefMap& listed,
                           const git::RefMap& recorded) {
    auto differences = ref_differences(listed, recorded);
    if (differences.empty())
        return {};
    return fail(Error::git(fmt::format(
        "{}: the snapshot would not be exact: {} refs were listed and selected, {} would be recorded ({}); "
        "the refs changed during the snapshot or git dropped some; nothing was committed",
        repository, listed.size(), recorded.size(), joined(differences))));
}

namespace {

std::string describe_head(const git::HeadState& head) {
    switch (head.kind) {
    case git::HeadKind::symbolic:
        return fmt::format("symbolic to {}", git::refname_excerpt(head.target));
    case git::HeadKind::unborn:
        return fmt::format("unborn on {}", git::refname_excerpt(head.target));
    case git::HeadKind::detached:
        return fmt::format("detached at {}", short_oid(head.target));
    case git::HeadKind::absent:
        break;
    }
    return "absent";
}

} // namespace

std::string head_difference(const git::HeadState& listed, const git::HeadState& recorded) {
    if (listed == recorded)
        return {};
    return fmt::format("HEAD: listed {}, recorded {}", describe_head(listed), describe_head(recorded));
}

Status check_recorded_head(std::string_view repository, const git::HeadState& listed,
                           const git::HeadState& recorded) {
    auto difference = head_difference(listed, recorded);
    if (difference.empty())
        return {};
    return fail(Error::git(fmt::format("{}: the snapshot would not be exact: {}; HEAD changed during the "
                                       "snapshot; nothing was committed",
                                       repository, difference)));
}

Status check_bundle_header(std::string_view repository, const git::BundleHeader& header,
                           const git::RefMap& refs, HeaderScope scope) {
    git::RefMap listed;
    for (const auto& [oid, name] : header.refs)
        if (!name.starts_with("refs/snapshotter/"))
            listed[name] = {oid, ""};
    std::vector<std::string> problems;
    for (const auto& [name, target] : listed) {
        auto it = refs.find(name);
        if (it == refs.end())
            problems.push_back(fmt::format("unexpected {}", git::refname_excerpt(name)));
        else if (it->second.oid != target.oid)
            problems.push_back(fmt::format("{}: bundle {}, manifest {}", git::refname_excerpt(name),
                                           short_oid(target.oid), short_oid(it->second.oid)));
    }
    if (scope == HeaderScope::every_ref)
        for (const auto& [name, target] : refs)
            if (!listed.contains(name))
                problems.push_back(fmt::format("missing {}", git::refname_excerpt(name)));
    if (problems.empty())
        return {};
    const auto count = problems.size();
    if (count > 5) {
        problems.resize(5);
        problems.push_back(fmt::format("and {} more", count - 5));
    }
    return fail(Error::git(fmt::format("{}: the bundle does not list the refs of the manifest ({}); "
                                       "nothing was committed",
                                       repository, joined(problems))));
}

nlohmann::json refused_json(const std::map<std::string, std::string>& refused) {
    auto out = nlohmann::json::array();
    for (const auto& [name, reason] : refused)
        out.push_back({{"name", printable(git::refname_excerpt(name))}, {"reason", reason}});
    return out;
}

} // namespace snapshotter::snapshot
