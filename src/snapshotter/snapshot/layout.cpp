#include "snapshotter/snapshot/layout.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace snapshotter::snapshot::layout {

std::string repo_key(std::string_view name) {
    std::string out;
    for (unsigned char c : name) {
        if (std::isalnum(c) || c == '.' || c == '_' || c == '-')
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::optional<std::string> repo_name(std::string_view key) {
    std::string out;
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (key[i] != '%') {
            out.push_back(key[i]);
            continue;
        }
        if (i + 2 >= key.size() || !std::isxdigit(static_cast<unsigned char>(key[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(key[i + 2])))
            return std::nullopt;
        out.push_back(static_cast<char>(std::stoi(std::string(key.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
    }
    return out;
}

std::string source_listing_key(std::string_view source_key) {
    return fmt::format("sources/{}.json", source_key);
}

std::string repos_prefix() {
    return "repos/";
}

std::string repo_prefix(std::string_view name) {
    return fmt::format("{}{}/", repos_prefix(), repo_key(name));
}

std::string bundles_prefix(std::string_view name) {
    return repo_prefix(name) + "bundles/";
}

std::string manifests_prefix(std::string_view name) {
    return repo_prefix(name) + "manifests/";
}

std::string manifest_key(std::string_view name, std::string_view id) {
    return fmt::format("{}{}.json", manifests_prefix(name), id);
}

std::string bundle_key(std::string_view name, std::string_view id) {
    return fmt::format("{}{}.bundle", bundles_prefix(name), id);
}

std::string rebased_bundle_key(std::string_view name, std::string_view id, std::string_view tag) {
    return fmt::format("repos/{}/bundles/{}.rebased-{}.bundle", repo_key(name), id, tag);
}

std::string prune_pending_key(std::string_view name) {
    return fmt::format("repos/{}/prune-pending.json", repo_key(name));
}

std::string latest_key(std::string_view name) {
    return repo_prefix(name) + "latest.json";
}

bool is_lfs_oid(std::string_view oid) {
    return oid.size() == 64 && std::all_of(oid.begin(), oid.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string lfs_prefix(std::string_view name) {
    return repo_prefix(name) + "lfs/";
}

std::string lfs_object_key(std::string_view name, std::string_view oid) {
    return fmt::format("{}{}/{}/{}", lfs_prefix(name), oid.substr(0, 2), oid.substr(2, 2), oid);
}

std::string lfs_set_key(std::string_view name, std::string_view sha256) {
    return fmt::format("{}sets/{}.json", lfs_prefix(name), sha256);
}

std::optional<std::string> lfs_oid_of_key(std::string_view key, std::string_view name) {
    const std::string prefix = lfs_prefix(name);
    if (!key.starts_with(prefix))
        return std::nullopt;
    std::string_view rest = key.substr(prefix.size());
    // "aa/bb/<64 hex>"
    if (rest.size() != 6 + 64 || rest[2] != '/' || rest[5] != '/')
        return std::nullopt;
    std::string_view oid = rest.substr(6);
    if (!is_lfs_oid(oid) || rest.substr(0, 2) != oid.substr(0, 2) || rest.substr(3, 2) != oid.substr(2, 2))
        return std::nullopt;
    return std::string(oid);
}

std::optional<std::string> repository_of_key(std::string_view key) {
    if (!key.starts_with(repos_prefix()))
        return std::nullopt;
    std::string_view rest = key.substr(repos_prefix().size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0)
        return std::nullopt;
    return repo_name(rest.substr(0, slash));
}

std::optional<std::string> snapshot_id_of_manifest_key(std::string_view key) {
    auto slash = key.rfind('/');
    if (slash == std::string_view::npos || !key.ends_with(".json"))
        return std::nullopt;
    std::string_view dir = key.substr(0, slash);
    if (!dir.ends_with("/manifests"))
        return std::nullopt;
    return std::string(key.substr(slash + 1, key.size() - slash - 1 - 5));
}

namespace {

// One object name as this layout makes them: snapshot ids, ".bundle",
// ".json", ".rebased-<hex>": [A-Za-z0-9._-], never "." first.
bool is_object_segment(std::string_view segment) {
    if (segment.empty() || segment.front() == '.')
        return false;
    for (unsigned char c : segment)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    return true;
}

std::string_view area_name(Area area) {
    switch (area) {
    case Area::bundles:
        return "bundles";
    case Area::lfs:
        return "lfs";
    case Area::manifests:
        break;
    }
    return "manifests";
}

// An LFS key of `name`: an object key or a set key, exactly.
bool is_lfs_key(std::string_view key, std::string_view name) {
    if (lfs_oid_of_key(key, name))
        return true;
    const std::string sets = lfs_prefix(name) + "sets/";
    if (!key.starts_with(sets) || !key.ends_with(".json"))
        return false;
    return is_lfs_oid(key.substr(sets.size(), key.size() - sets.size() - 5));
}

} // namespace

bool is_canonical_repo_key(std::string_view segment) {
    if (segment.empty() || segment == "." || segment == "..")
        return false;
    auto name = repo_name(segment);
    return name && !name->empty() && repo_key(*name) == segment;
}

bool is_within(std::string_view key, std::string_view name, Area area) {
    const std::string segment = repo_key(name);
    if (!is_canonical_repo_key(segment))
        return false;
    if (area == Area::lfs)
        return is_lfs_key(key, name);
    const std::string prefix = area == Area::bundles ? bundles_prefix(name) : manifests_prefix(name);
    return key.starts_with(prefix) && is_object_segment(key.substr(prefix.size()));
}

Status check_within(std::string_view key, std::string_view name, Area area, std::string_view source) {
    if (is_within(key, name, area))
        return {};
    return fail(Error::integrity(fmt::format("{}: key {:?} is not under {}{} of repository {}; refusing it",
                                             source, key, repo_prefix(name), area_name(area), name)));
}

} // namespace snapshotter::snapshot::layout
