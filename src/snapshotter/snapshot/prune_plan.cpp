#include "snapshotter/snapshot/prune_plan.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace snapshotter::snapshot {
namespace {

bool starts_with(const std::vector<BundleInfo>& chain, const std::vector<BundleInfo>& prefix) {
    return chain.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), chain.begin());
}

// For each chain of kept manifests, the rebase that would free its oldest
// kept point from bundles of dropped snapshots, if any.
std::vector<RebaseStep> plan_rebases(const std::vector<StoredSnapshot>& snapshots, const KeptSet& kept) {
    std::map<std::string, const StoredSnapshot*> oldest_by_base; // first bundle key -> oldest kept
    for (const auto& s : snapshots) {
        if (!kept.contains(s.id) || s.bundles.empty())
            continue;
        auto& oldest = oldest_by_base[s.bundles.front().key];
        if (oldest == nullptr || s.id < oldest->id)
            oldest = &s;
    }
    std::vector<RebaseStep> steps;
    for (const auto& [base, point] : oldest_by_base) {
        // A one-bundle prefix is already a full bundle of that state.
        bool needs = point->bundles.size() > 1 &&
                     std::any_of(point->bundles.begin(), point->bundles.end(),
                                 [&](const BundleInfo& b) { return !kept.contains(b.snapshot_id); });
        if (!needs)
            continue;
        RebaseStep step{point->id, point->bundles, {point->id}};
        for (const auto& s : snapshots)
            if (s.id != point->id && kept.contains(s.id) && starts_with(s.bundles, step.prefix))
                step.manifests.push_back(s.id);
        steps.push_back(std::move(step));
    }
    return steps;
}

} // namespace

std::vector<BundleInfo> rebased_chain(const std::vector<BundleInfo>& bundles, const RebaseStep& step,
                                      const BundleInfo& replacement) {
    if (!starts_with(bundles, step.prefix))
        return bundles;
    std::vector<BundleInfo> out{replacement};
    out.insert(out.end(), bundles.begin() + static_cast<std::ptrdiff_t>(step.prefix.size()), bundles.end());
    return out;
}

PrunePlan plan_prune(const std::vector<StoredSnapshot>& snapshots, KeptSet kept, Rebase rebase) {
    PrunePlan plan;
    plan.kept = std::move(kept);
    if (rebase == Rebase::yes)
        plan.rebases = plan_rebases(snapshots, plan.kept);

    // What the kept manifests list once the rebases are done.
    std::set<std::string> needed;
    for (const auto& s : snapshots) {
        if (!plan.kept.contains(s.id))
            continue;
        auto chain = s.bundles;
        for (const auto& step : plan.rebases)
            if (std::find(step.manifests.begin(), step.manifests.end(), s.id) != step.manifests.end())
                chain = rebased_chain(chain, step, BundleInfo{});
        for (const auto& b : chain)
            needed.insert(b.key);
    }

    // Dropped manifests, then every bundle no kept manifest needs.
    std::map<std::string, BundleInfo> unneeded, for_chain;
    auto consider = [&](const BundleInfo& b) {
        if (b.key.empty())
            return;
        if (!needed.contains(b.key))
            unneeded.emplace(b.key, b);
        else if (!plan.kept.contains(b.snapshot_id))
            for_chain.emplace(b.key, b);
    };
    for (const auto& s : snapshots) {
        for (const auto& b : s.bundles)
            consider(b);
        if (!plan.kept.contains(s.id)) {
            plan.drop.push_back(s.id);
            plan.bytes_freed += s.manifest_bytes;
        }
    }
    std::sort(plan.drop.begin(), plan.drop.end());
    for (auto& [key, b] : unneeded) {
        plan.bytes_freed += b.size;
        plan.delete_bundles.push_back(std::move(b));
    }
    for (auto& [key, b] : for_chain)
        plan.kept_for_chain.push_back(std::move(b));
    return plan;
}

} // namespace snapshotter::snapshot
