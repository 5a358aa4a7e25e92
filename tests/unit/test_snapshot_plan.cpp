// snapshot_plan(): every kind, the previous snapshot's role (none, parent,
// set aside for a broken chain or a shallow one), the ledger before and
// after the ancestry answers, and what the engines fetch; no git, no storage.
#include "snapshotter/snapshot/snapshot_plan.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <random>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

const std::vector<std::string> k_patterns{"refs/heads/*", "refs/tags/*"};

std::string oid(char c, std::size_t length = 40) {
    return std::string(length, c);
}

git::HeadState on_main() {
    return {git::HeadKind::symbolic, "refs/heads/main"};
}

Listing listing(git::RefMap refs, git::HeadState head = on_main(), std::string format = "sha1") {
    return {std::move(refs), {}, std::move(head), std::move(format)};
}

BundleInfo bundle(const std::string& id, std::uint64_t size) {
    return {id, "repos/app/bundles/" + id + ".bundle", size, std::string(64, '0'), {}};
}

// The previous snapshot "s1": `refs`, HEAD on main, one full bundle of 1000 bytes.
Manifest previous_with(git::RefMap refs) {
    Manifest m;
    m.snapshot_id = "s1";
    m.repository = "app";
    m.object_format = "sha1";
    m.kind = SnapshotKind::full;
    m.refs = std::move(refs);
    set_head(m, on_main());
    m.ref_patterns = k_patterns;
    m.bundles = {bundle("s0", 1000)};
    m.preserved = {{"s0/refs/heads/old", oid('9')}};
    return m;
}

const git::RefMap k_main_a{{"refs/heads/main", {oid('a'), ""}}};

// The plan for `now` after `previous` (nullopt: none) with `options`.
SnapshotPlan plan(const Listing& now, const std::optional<Manifest>& previous,
                  const job::Options& options = {}, ChainState chain = ChainState::intact,
                  const std::vector<std::string>& patterns = k_patterns) {
    return snapshot_plan({.listing = now,
                          .previous = previous,
                          .chain = chain,
                          .patterns = patterns,
                          .options = options,
                          .snapshot_id = "s2"});
}

} // namespace

TEST(SnapshotKind, NamesRoundTripAndUnknownNamesAreRefused) {
    for (auto kind :
         {SnapshotKind::full, SnapshotKind::incremental, SnapshotKind::empty, SnapshotKind::unchanged})
        EXPECT_EQ(parse_snapshot_kind(to_string(kind)), kind);
    EXPECT_EQ(to_string(SnapshotKind::incremental), "incremental");
    EXPECT_EQ(nlohmann::json(SnapshotKind::unchanged), "unchanged");
    EXPECT_FALSE(parse_snapshot_kind("Full"));
    for (auto change : {RefChangeKind::created, RefChangeKind::fast_forward, RefChangeKind::rewritten,
                        RefChangeKind::updated, RefChangeKind::deleted})
        EXPECT_EQ(parse_ref_change(to_string(change)), change);
    EXPECT_EQ(nlohmann::json(RefChangeKind::fast_forward), "fast_forward");
    EXPECT_FALSE(parse_ref_change("moved"));
}

TEST(SnapshotPlan, FirstSnapshotIsFullWithoutParentOrLedger) {
    auto p = plan(listing(k_main_a), std::nullopt);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    EXPECT_EQ(p.previous, PreviousRole::none);
    EXPECT_FALSE(p.parent);
    EXPECT_TRUE(p.ledger.changes.empty());
    EXPECT_TRUE(p.ledger.preserved.empty());
    EXPECT_TRUE(p.moved.empty());
    EXPECT_EQ(p.fetch.patterns, k_patterns);
    EXPECT_TRUE(p.fetch.changed.empty());
    EXPECT_TRUE(p.fetch.bases.empty());
    EXPECT_TRUE(needs_fetch(p.kind));
}

TEST(SnapshotPlan, EmptyRepositoryIsEmptyAndFetchesNothing) {
    for (auto head : {git::HeadState{git::HeadKind::unborn, "refs/heads/main"}, git::HeadState{}}) {
        auto p = plan(listing({}, head), std::nullopt);
        EXPECT_EQ(p.kind, SnapshotKind::empty);
        EXPECT_FALSE(needs_fetch(p.kind));
        EXPECT_TRUE(p.fetch.patterns.empty());
        EXPECT_TRUE(p.ledger.changes.empty());
    }
}

TEST(SnapshotPlan, NothingMovedIsUnchangedOnTheParentsChain) {
    auto previous = previous_with(k_main_a);
    auto p = plan(listing(k_main_a), previous);
    EXPECT_EQ(p.kind, SnapshotKind::unchanged);
    EXPECT_FALSE(needs_fetch(p.kind));
    EXPECT_EQ(p.previous, PreviousRole::parent);
    EXPECT_EQ(p.parent, "s1");
    EXPECT_TRUE(p.ledger.changes.empty());
    EXPECT_EQ(p.ledger.preserved, previous.preserved);
    EXPECT_TRUE(p.fetch.patterns.empty());
}

TEST(SnapshotPlan, UnchangedWinsOverALongChainAndAnEmptyRepository) {
    job::Options options;
    options.full_every = 1;
    auto previous = previous_with(k_main_a);
    EXPECT_EQ(plan(listing(k_main_a), previous, options).kind, SnapshotKind::unchanged);
    auto empty = previous_with({});
    empty.bundles.clear();
    set_head(empty, {git::HeadKind::unborn, "refs/heads/main"});
    EXPECT_EQ(plan(listing({}, {git::HeadKind::unborn, "refs/heads/main"}), empty).kind,
              SnapshotKind::unchanged);
}

TEST(SnapshotPlan, AnyHeadDifferenceMeansChanged) {
    const std::vector<git::HeadState> heads{
        on_main(),
        {git::HeadKind::symbolic, "refs/heads/dev"},
        {git::HeadKind::unborn, "refs/heads/main"},
        {git::HeadKind::detached, oid('a')},
        {git::HeadKind::detached, oid('b')},
        {},
    };
    for (const auto& before : heads)
        for (const auto& after : heads) {
            auto previous = previous_with(k_main_a);
            set_head(previous, before);
            auto p = plan(listing(k_main_a, after), previous);
            EXPECT_EQ(p.kind, before == after ? SnapshotKind::unchanged : SnapshotKind::incremental)
                << git::head_kind_name(before.kind) << " " << before.target << " -> "
                << git::head_kind_name(after.kind) << " " << after.target;
            // HEAD alone moves no ref.
            EXPECT_TRUE(p.ledger.changes.empty());
        }
}

TEST(SnapshotPlan, AManifestWhoseHeadFieldsDisagreeIsNotUnchanged) {
    // A symbolic HEAD that also carries an oid is not what a snapshot of that HEAD records.
    auto previous = previous_with(k_main_a);
    previous.head_oid = oid('a');
    EXPECT_EQ(plan(listing(k_main_a), previous).kind, SnapshotKind::incremental);
}

TEST(SnapshotPlan, OtherRefPatternsMeanChanged) {
    auto previous = previous_with(k_main_a);
    const std::vector<std::string> heads_only{"refs/heads/*"};
    auto p = plan(listing(k_main_a), previous, {}, ChainState::intact, heads_only);
    EXPECT_EQ(p.kind, SnapshotKind::incremental);
    EXPECT_TRUE(p.fetch.changed.empty());
    EXPECT_EQ(p.fetch.patterns, heads_only);
}

TEST(SnapshotPlan, AMovedRefIsAskedAboutAndUpdatedUntilAnswered) {
    auto previous =
        previous_with({{"refs/heads/main", {oid('a'), ""}}, {"refs/tags/v1", {oid('c'), oid('a')}}});
    auto now = listing({{"refs/heads/main", {oid('b'), ""}}, {"refs/tags/v1", {oid('c'), oid('a')}}});
    auto p = plan(now, previous);
    EXPECT_EQ(p.kind, SnapshotKind::incremental);
    EXPECT_EQ(p.moved, std::vector<std::string>{"refs/heads/main"});
    ASSERT_EQ(p.ledger.changes.size(), 1U);
    EXPECT_EQ(p.ledger.changes.at("refs/heads/main"),
              (RefChange{RefChangeKind::updated, oid('a'), oid('b')}));
    EXPECT_EQ(p.ledger.preserved.at("s2/refs/heads/main"), oid('a'));
    EXPECT_EQ(p.ledger.preserved.at("s0/refs/heads/old"), oid('9'));
    EXPECT_EQ(p.fetch.changed, std::vector<std::string>{"refs/heads/main"});
    // The bases are the parent's tips peeled: the tag's commit, not the tag.
    EXPECT_EQ(p.fetch.bases, (std::vector<std::string>{oid('a'), oid('a')}));

    // Without answers the ledger stays as planned.
    EXPECT_EQ(ledger_of(p, {}).changes, p.ledger.changes);
    EXPECT_EQ(ledger_of(p, {{"refs/heads/main", std::nullopt}}).preserved, p.ledger.preserved);

    auto forward = ledger_of(p, {{"refs/heads/main", true}});
    EXPECT_EQ(forward.changes.at("refs/heads/main").change, RefChangeKind::fast_forward);
    EXPECT_FALSE(forward.preserved.contains("s2/refs/heads/main"));
    EXPECT_EQ(forward.rewritten, 0);

    auto rewritten = ledger_of(p, {{"refs/heads/main", false}});
    EXPECT_EQ(rewritten.changes.at("refs/heads/main").change, RefChangeKind::rewritten);
    EXPECT_EQ(rewritten.preserved.at("s2/refs/heads/main"), oid('a'));
    EXPECT_EQ(rewritten.rewritten, 1);
    EXPECT_EQ(rewritten.deleted, 0);
}

TEST(SnapshotPlan, CreatedRefsAreFetchedAndNotPreserved) {
    auto previous = previous_with(k_main_a);
    auto p =
        plan(listing({{"refs/heads/main", {oid('a'), ""}}, {"refs/heads/topic", {oid('a'), ""}}}), previous);
    EXPECT_EQ(p.kind, SnapshotKind::incremental);
    EXPECT_EQ(p.ledger.changes.at("refs/heads/topic"), (RefChange{RefChangeKind::created, "", oid('a')}));
    EXPECT_TRUE(p.moved.empty());
    EXPECT_EQ(p.fetch.changed, std::vector<std::string>{"refs/heads/topic"});
    EXPECT_EQ(p.ledger.preserved, previous.preserved);
}

TEST(SnapshotPlan, DeletedRefsAreCountedAndTheirTipsPreserved) {
    auto previous = previous_with({{"refs/heads/main", {oid('a'), ""}}, {"refs/heads/gone", {oid('d'), ""}}});
    auto p = plan(listing(k_main_a), previous);
    EXPECT_EQ(p.kind, SnapshotKind::incremental);
    EXPECT_EQ(p.ledger.changes.at("refs/heads/gone"), (RefChange{RefChangeKind::deleted, oid('d'), ""}));
    EXPECT_EQ(p.ledger.deleted, 1);
    EXPECT_EQ(p.ledger.preserved.at("s2/refs/heads/gone"), oid('d'));
    // A refs-only change: nothing new to bundle.
    EXPECT_TRUE(p.fetch.changed.empty());
}

TEST(SnapshotPlan, EveryRefDeletedIsEmptyAndKeepsNoNewTips) {
    auto previous = previous_with({{"refs/heads/main", {oid('a'), ""}}, {"refs/tags/v1", {oid('c'), ""}}});
    auto p = plan(listing({}, {git::HeadKind::unborn, "refs/heads/main"}), previous);
    EXPECT_EQ(p.kind, SnapshotKind::empty);
    EXPECT_EQ(p.parent, "s1");
    EXPECT_EQ(p.ledger.deleted, 2);
    EXPECT_EQ(p.ledger.changes.size(), 2U);
    EXPECT_EQ(p.ledger.changes.at("refs/tags/v1").change, RefChangeKind::deleted);
    EXPECT_EQ(p.ledger.preserved, previous.preserved);
    EXPECT_EQ(ledger_of(p, {}).preserved, previous.preserved);
}

TEST(SnapshotPlan, TheChainGrowsUntilFullEvery) {
    job::Options options;
    options.full_every = 3;
    auto previous = previous_with(k_main_a);
    auto now = listing({{"refs/heads/main", {oid('b'), ""}}});
    previous.bundles = {bundle("s0", 1000), bundle("s1", 10)};
    EXPECT_EQ(plan(now, previous, options).kind, SnapshotKind::incremental);
    previous.bundles.push_back(bundle("s1b", 10));
    auto p = plan(now, previous, options);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    // A full snapshot after a parent still records how refs moved.
    EXPECT_EQ(p.parent, "s1");
    EXPECT_EQ(p.moved, std::vector<std::string>{"refs/heads/main"});
    EXPECT_TRUE(p.fetch.changed.empty());
    EXPECT_TRUE(p.fetch.bases.empty());
}

TEST(SnapshotPlan, TheChainGrowsWhileIncrementalsStayWithinTheSizeRatio) {
    job::Options options;
    options.full_size_ratio = 0.5;
    auto previous = previous_with(k_main_a);
    auto now = listing({{"refs/heads/main", {oid('b'), ""}}});
    previous.bundles = {bundle("s0", 1000), bundle("s1", 300), bundle("s1b", 200)};
    EXPECT_EQ(plan(now, previous, options).kind, SnapshotKind::incremental);
    previous.bundles.push_back(bundle("s1c", 1));
    EXPECT_EQ(plan(now, previous, options).kind, SnapshotKind::full);
}

TEST(SnapshotPlan, AParentWithoutBundlesStartsAFullChain) {
    auto previous = previous_with({});
    previous.kind = SnapshotKind::empty;
    previous.bundles.clear();
    auto p = plan(listing(k_main_a), previous);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    EXPECT_EQ(p.parent, "s1");
    EXPECT_EQ(p.ledger.changes.at("refs/heads/main").change, RefChangeKind::created);
}

TEST(SnapshotPlan, AnotherObjectFormatStartsAFullChain) {
    auto previous = previous_with(k_main_a);
    auto now = listing({{"refs/heads/main", {oid('a', 64), ""}}}, on_main(), "sha256");
    auto p = plan(now, previous);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    EXPECT_EQ(p.moved, std::vector<std::string>{"refs/heads/main"});
    // The same refs in another format are not unchanged either.
    auto same_refs = listing(k_main_a, on_main(), "sha256");
    EXPECT_EQ(plan(same_refs, previous).kind, SnapshotKind::full);
}

TEST(SnapshotPlan, ABrokenChainIsSetAsideEvenWhenNothingMoved) {
    auto previous = previous_with(k_main_a);
    auto p = plan(listing(k_main_a), previous, {}, ChainState::broken);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    EXPECT_EQ(p.previous, PreviousRole::chain_broken);
    EXPECT_FALSE(p.parent);
    EXPECT_TRUE(p.ledger.changes.empty());
    EXPECT_TRUE(p.ledger.preserved.empty());
    EXPECT_EQ(plan(listing({}), previous, {}, ChainState::broken).kind, SnapshotKind::empty);
}

TEST(SnapshotPlan, AnUnreplayableChainIsAParentThatCannotGrow) {
    auto previous = previous_with(k_main_a);
    auto p = plan(listing({{"refs/heads/main", {oid('b'), ""}}}), previous, {}, ChainState::unreplayable);
    EXPECT_EQ(p.kind, SnapshotKind::full);
    EXPECT_EQ(p.previous, PreviousRole::parent);
    EXPECT_EQ(p.parent, "s1");
    EXPECT_EQ(p.moved, std::vector<std::string>{"refs/heads/main"});
}

TEST(SnapshotPlan, AShallowParentContinuesOnlyWhileShallowIsAllowed) {
    auto previous = previous_with(k_main_a);
    previous.shallow = {oid('5')};
    auto denied = plan(listing(k_main_a), previous);
    EXPECT_EQ(denied.kind, SnapshotKind::full);
    EXPECT_EQ(denied.previous, PreviousRole::shallow_denied);
    EXPECT_FALSE(denied.parent);

    job::Options shallow_ok;
    shallow_ok.allow_shallow = true;
    auto allowed = plan(listing(k_main_a), previous, shallow_ok);
    EXPECT_EQ(allowed.kind, SnapshotKind::unchanged);
    EXPECT_EQ(allowed.previous, PreviousRole::parent);
    EXPECT_EQ(plan(listing({{"refs/heads/main", {oid('b'), ""}}}), previous, shallow_ok).kind,
              SnapshotKind::incremental);
    // A broken chain is set aside first.
    EXPECT_EQ(plan(listing(k_main_a), previous, {}, ChainState::broken).previous, PreviousRole::chain_broken);
}

TEST(SnapshotPlan, FetchPatternsKeepWildcardsAndListedNames) {
    const std::vector<std::string> patterns{"refs/heads/*", "refs/heads/main", "refs/heads/missing",
                                            "refs/notes/commits"};
    auto p = plan(listing(k_main_a), std::nullopt, {}, ChainState::intact, patterns);
    EXPECT_EQ(p.fetch.patterns, (std::vector<std::string>{"refs/heads/*", "refs/heads/main"}));
}

TEST(SnapshotPlan, ARefusedNameMakesTheFetchAskForEverySelectedName) {
    auto now = listing({{"refs/heads/main", {oid('a'), ""}}, {"refs/tags/v1", {oid('b'), ""}}});
    now.refused = {{"refs/heads/bad\x7f", "control character"}};
    auto p = plan(now, std::nullopt);
    EXPECT_EQ(p.fetch.patterns, (std::vector<std::string>{"refs/heads/main", "refs/tags/v1"}));
}

// Random histories: the ledger applied to the parent's refs gives the
// listing, the questions are exactly the moved refs, and the kind follows
// the rules in the header.
TEST(SnapshotPlan, TheLedgerReplaysTheParentIntoTheListing) {
    std::mt19937 rng(13);
    auto random_refs = [&] {
        git::RefMap refs;
        for (int i = 0; i < 6; ++i)
            if (rng() % 2 == 0)
                refs[fmt::format("refs/heads/b{}", i)] = {oid(static_cast<char>('a' + rng() % 3)), ""};
        return refs;
    };
    for (int round = 0; round < 500; ++round) {
        auto previous = previous_with(random_refs());
        auto now = listing(random_refs());
        auto p = plan(now, previous);
        auto replayed = previous.refs;
        for (const auto& [name, change] : p.ledger.changes) {
            if (change.change == RefChangeKind::deleted)
                replayed.erase(name);
            else
                replayed[name] = {change.new_oid, ""};
        }
        EXPECT_EQ(replayed, now.selected);
        std::vector<std::string> moved;
        for (const auto& [name, target] : now.selected)
            if (previous.refs.contains(name) && previous.refs.at(name).oid != target.oid)
                moved.push_back(name);
        EXPECT_EQ(p.moved, moved);
        const auto expected = now.selected == previous.refs ? SnapshotKind::unchanged
                              : now.selected.empty()        ? SnapshotKind::empty
                                                            : SnapshotKind::incremental;
        EXPECT_EQ(p.kind, expected);
        // Answering every question false rewrites each moved ref and keeps its old tip.
        AncestryAnswers no;
        for (const auto& name : p.moved)
            no[name] = false;
        auto settled = ledger_of(p, no);
        EXPECT_EQ(settled.rewritten, static_cast<int>(moved.size()));
        for (const auto& name : moved)
            EXPECT_EQ(settled.preserved.at("s2/" + name), previous.refs.at(name).oid);
    }
}

TEST(SnapshotPlan, ThePacksCommitsAnswerWhatTheyShow) {
    // Previous: main at a, dev at d, tag v1 (tag object c) on a. Now every one moved.
    auto previous = previous_with({{"refs/heads/main", {oid('a'), ""}},
                                   {"refs/heads/dev", {oid('d'), ""}},
                                   {"refs/heads/orphan", {oid('o'), ""}},
                                   {"refs/tags/v1", {oid('c'), oid('a')}}});
    auto now = listing({{"refs/heads/main", {oid('b'), ""}},
                        {"refs/heads/dev", {oid('e'), ""}},
                        {"refs/heads/orphan", {oid('r'), ""}},
                        {"refs/tags/v1", {oid('t'), oid('f')}}});
    auto p = plan(now, previous);
    ASSERT_EQ(p.moved.size(), 4U);
    // b -> 1 -> a (a merge with 2, whose parent 3 is outside): fast-forward.
    // e -> x (outside, the chain's commit): a reset onto an old commit, unknown.
    // r -> s (root): a whole new history in the pack: rewritten.
    // the tag's commit f -> a: the peeled tips fast-forward.
    PackCommits commits{{oid('b'), {oid('1')}}, {oid('1'), {oid('2'), oid('a')}}, {oid('2'), {oid('3')}},
                        {oid('e'), {oid('x')}}, {oid('r'), {oid('s')}},           {oid('s'), {}},
                        {oid('f'), {oid('a')}}};
    auto answers = ancestry_from_pack(p, previous.refs, now.selected, commits);
    EXPECT_EQ(answers.at("refs/heads/main"), std::optional<bool>(true));
    EXPECT_FALSE(answers.contains("refs/heads/dev"));
    EXPECT_EQ(answers.at("refs/heads/orphan"), std::optional<bool>(false));
    EXPECT_EQ(answers.at("refs/tags/v1"), std::optional<bool>(true));
    auto ledger = ledger_of(p, answers);
    EXPECT_EQ(ledger.rewritten, 1);
    EXPECT_EQ(ledger.updated, 1);
    EXPECT_EQ(ledger.changes.at("refs/heads/dev").change, RefChangeKind::updated);

    // With x known to be a proper ancestor of d, the reset is certain to be a rewrite.
    auto known = ancestry_from_pack(p, previous.refs, now.selected, commits, {{oid('d'), {oid('x')}}});
    EXPECT_EQ(known.at("refs/heads/dev"), std::optional<bool>(false));
    // A pack without commits (refs-only) knows nothing.
    EXPECT_TRUE(ancestry_from_pack(p, previous.refs, now.selected, {}).size() == 0);
}
