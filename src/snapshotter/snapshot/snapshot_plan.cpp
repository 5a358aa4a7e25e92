#include "snapshotter/snapshot/snapshot_plan.hpp"

#include <algorithm>
#include <cstdint>

namespace snapshotter::snapshot {
namespace {

// Whether the next snapshot after `previous` may be an incremental one.
bool chain_allows_incremental(const Manifest& previous, const job::Options& options,
                              const std::string& format) {
    if (previous.bundles.empty() || previous.object_format != format)
        return false;
    if (static_cast<int>(previous.bundles.size()) >= options.full_every)
        return false;
    std::uint64_t incrementals = 0;
    for (std::size_t i = 1; i < previous.bundles.size(); ++i)
        incrementals += previous.bundles[i].size;
    return static_cast<double>(incrementals) <=
           options.full_size_ratio * static_cast<double>(previous.bundles[0].size);
}

// Whether `previous` records `head` exactly as a manifest of it would (its
// target, its state, and its oid when detached).
bool same_head(const Manifest& previous, const git::HeadState& head) {
    return previous.head == named_head(head) && previous.head_kind == head.kind &&
           previous.head_oid == (head.kind == git::HeadKind::detached ? head.target : "");
}

// What the previous snapshot is to this one.
PreviousRole role_of(const PlanInput& input) {
    if (!input.previous)
        return PreviousRole::none;
    if (input.chain == ChainState::broken)
        return PreviousRole::chain_broken;
    // A shallow chain continues only while options.allow_shallow does: without
    // it a full snapshot fetches again, and refuses the upstream if it is still shallow.
    if (!input.previous->shallow.empty() && !input.options.allow_shallow)
        return PreviousRole::shallow_denied;
    return PreviousRole::parent;
}

SnapshotKind kind_of(const PlanInput& input, const Manifest* parent) {
    const auto& listing = input.listing;
    if (parent != nullptr && parent->refs == listing.selected && same_head(*parent, listing.head) &&
        parent->object_format == listing.object_format && parent->ref_patterns == input.patterns)
        return SnapshotKind::unchanged;
    if (listing.selected.empty())
        return SnapshotKind::empty;
    if (parent != nullptr && input.chain == ChainState::intact &&
        chain_allows_incremental(*parent, input.options, listing.object_format))
        return SnapshotKind::incremental;
    return SnapshotKind::full;
}

std::vector<std::string> fetch_patterns(const PlanInput& input) {
    const auto& listing = input.listing;
    std::vector<std::string> patterns;
    if (listing.refused.empty()) {
        for (const auto& p : input.patterns)
            if (p.ends_with('*') || listing.selected.contains(p))
                patterns.push_back(p);
    } else {
        for (const auto& [name, target] : listing.selected)
            patterns.push_back(name);
    }
    return patterns;
}

} // namespace

bool needs_fetch(SnapshotKind kind) {
    return kind == SnapshotKind::full || kind == SnapshotKind::incremental;
}

SnapshotPlan snapshot_plan(const PlanInput& input) {
    SnapshotPlan plan;
    plan.snapshot_id = input.snapshot_id;
    plan.previous = role_of(input);
    const Manifest* parent = plan.previous == PreviousRole::parent ? &*input.previous : nullptr;
    plan.kind = kind_of(input, parent);
    if (needs_fetch(plan.kind))
        plan.fetch.patterns = fetch_patterns(input);
    if (parent == nullptr)
        return plan;
    plan.parent = parent->snapshot_id;
    plan.ledger.preserved = parent->preserved;
    if (plan.kind == SnapshotKind::unchanged)
        return plan;

    // The ledger. An empty snapshot records its deletions without keeping the
    // old tips; a full or incremental one keeps every old tip that is no
    // longer reachable from its ref (all but fast-forwards, answered later).
    const auto& current = input.listing.selected;
    const bool keeps_tips = plan.kind != SnapshotKind::empty;
    auto& ledger = plan.ledger;
    for (const auto& [name, target] : current) {
        auto it = parent->refs.find(name);
        if (it == parent->refs.end()) {
            ledger.changes[name] = {RefChangeKind::created, "", target.oid};
            plan.fetch.changed.push_back(name);
            continue;
        }
        if (it->second.oid == target.oid)
            continue;
        ledger.changes[name] = {RefChangeKind::updated, it->second.oid, target.oid};
        ledger.preserved[input.snapshot_id + "/" + name] = it->second.oid;
        plan.moved.push_back(name);
        plan.fetch.changed.push_back(name);
    }
    for (const auto& [name, target] : parent->refs)
        if (!current.contains(name)) {
            ledger.changes[name] = {RefChangeKind::deleted, target.oid, ""};
            ++ledger.deleted;
            if (keeps_tips)
                ledger.preserved[input.snapshot_id + "/" + name] = target.oid;
        }
    if (plan.kind == SnapshotKind::incremental)
        for (const auto& [name, target] : parent->refs)
            plan.fetch.bases.push_back(target.peeled.empty() ? target.oid : target.peeled);
    else
        plan.fetch.changed.clear();
    return plan;
}

namespace {

// A ref's commit: its peeled object when it has one.
std::string peeled_tip(const git::RefTarget& target) {
    return target.peeled.empty() ? target.oid : target.peeled;
}

} // namespace

AncestryAnswers ancestry_from_pack(const SnapshotPlan& plan, const git::RefMap& previous,
                                   const git::RefMap& current, const PackCommits& commits,
                                   const std::map<std::string, std::set<std::string>>& older) {
    AncestryAnswers answers;
    for (const auto& name : plan.moved) {
        auto was = previous.find(name);
        auto now = current.find(name);
        if (was == previous.end() || now == current.end())
            continue;
        const std::string old_tip = peeled_tip(was->second);
        // Walk the pack's commits from the new tip; `outside` collects where the walk leaves the pack.
        std::set<std::string> seen, outside;
        std::vector<std::string> todo{peeled_tip(now->second)};
        bool reached = false;
        while (!todo.empty() && !reached) {
            std::string oid = std::move(todo.back());
            todo.pop_back();
            if (!seen.insert(oid).second)
                continue;
            if (oid == old_tip) {
                reached = true;
                break;
            }
            auto it = commits.find(oid);
            if (it == commits.end()) {
                outside.insert(oid);
                continue;
            }
            for (const auto& parent : it->second)
                todo.push_back(parent);
        }
        if (reached) {
            answers[name] = true;
            continue;
        }
        auto known = older.find(old_tip);
        const bool all_behind = std::all_of(outside.begin(), outside.end(), [&](const std::string& oid) {
            return known != older.end() && known->second.contains(oid);
        });
        if (all_behind)
            answers[name] = false;
    }
    return answers;
}

Ledger ledger_of(const SnapshotPlan& plan, const AncestryAnswers& answers) {
    Ledger ledger = plan.ledger;
    for (const auto& name : plan.moved) {
        auto answer = answers.find(name);
        if (answer == answers.end() || !answer->second) {
            ++ledger.updated;
            continue;
        }
        auto& change = ledger.changes.at(name);
        if (*answer->second) {
            change.change = RefChangeKind::fast_forward;
            ledger.preserved.erase(plan.snapshot_id + "/" + name);
        } else {
            change.change = RefChangeKind::rewritten;
            ++ledger.rewritten;
        }
    }
    return ledger;
}

} // namespace snapshotter::snapshot
