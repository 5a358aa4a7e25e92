#include "snapshotter/git/bundle_revs.hpp"

#include <algorithm>
#include <set>

namespace snapshotter::git {

Result<IncrementalRevs> incremental_bundle_revs(const GitApi& git, CatFileSession& objects,
                                                const std::filesystem::path& repo,
                                                const std::vector<BundleTip>& tips,
                                                const std::vector<std::string>& excluded,
                                                std::chrono::milliseconds timeout) {
    IncrementalRevs out;
    // The object each tip stands for in the walk: a tag's peeled object (the
    // walk peels a tag whose peeled object is not given itself).
    auto walked = [](const BundleTip& tip) -> const std::string& {
        return tip.peeled.empty() ? tip.oid : tip.peeled;
    };
    std::vector<std::string> heads;
    heads.reserve(tips.size());
    for (const auto& tip : tips)
        heads.push_back(walked(tip));
    auto walk = git.bundle_boundary(repo, heads, excluded, timeout);
    if (!walk)
        return fail(walk.error());
    // The types of the tips the walk does not show: old commits, or not commits.
    std::vector<std::string> unshown;
    for (const auto& head : heads)
        if (!walk->new_tips.contains(head))
            unshown.push_back(head);
    std::sort(unshown.begin(), unshown.end());
    unshown.erase(std::unique(unshown.begin(), unshown.end()), unshown.end());
    auto types = object_types(objects, unshown);
    if (!types)
        return fail(types.error());
    auto type_of = [&](const std::string& oid) -> std::string_view {
        auto it = types->find(oid);
        return it == types->end() ? std::string_view{} : std::string_view{it->second};
    };

    out.new_objects = walk->any_new;
    std::set<std::string> negatives(walk->prerequisites.begin(), walk->prerequisites.end());
    std::vector<std::string> peeled_old; // old commits of tag tips, in the tips' order
    for (const auto& tip : tips) {
        const auto& head = walked(tip);
        if (walk->new_tips.contains(head)) {
            out.revs.push_back(tip.name);
            continue;
        }
        const auto type = type_of(head);
        if (type == "commit" && head == tip.oid)
            continue; // an old commit: no ref listed, no object
        if (type == "tag") {
            // A tag whose peeled object is unknown: git's own input.
            out.revs.clear();
            for (const auto& t : tips)
                out.revs.push_back(t.name);
            for (const auto& oid : excluded)
                out.revs.push_back("^" + oid);
            out.new_objects = true;
            return out;
        }
        // A tag (its object is new), or a tree or blob: listed, and its object packed.
        out.revs.push_back(tip.name);
        out.new_objects = true;
        if (type == "commit" && negatives.insert(head).second)
            peeled_old.push_back(head);
    }
    for (const auto& oid : walk->prerequisites)
        out.revs.push_back("^" + oid);
    for (const auto& oid : peeled_old)
        out.revs.push_back("^" + oid);
    return out;
}

} // namespace snapshotter::git
