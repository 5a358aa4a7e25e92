#include "snapshotter/snapshot/chain_haves.hpp"

#include <gtest/gtest.h>

using namespace snapshotter::snapshot;

namespace {

// A linear history c0 <- c1 <- ... <- c<n-1> (c0 a root), as a scan would record it.
FirstParents line(int n, const std::string& prefix = "c") {
    FirstParents parents;
    for (int i = 0; i < n; ++i)
        parents[prefix + std::to_string(i)] = i == 0 ? std::string{} : prefix + std::to_string(i - 1);
    return parents;
}

} // namespace

TEST(SpacedAncestors, PicksOneTwoFourEightStepsBack) {
    auto found = spaced_ancestors({"c100"}, line(101), 4);
    EXPECT_EQ(found.commits, (std::vector<std::string>{"c99", "c98", "c96", "c92"}));
    EXPECT_EQ(found.by_tip.at("c100"), (std::set<std::string>{"c99", "c98", "c96", "c92"}));
    EXPECT_TRUE(found.complete);
}

TEST(SpacedAncestors, StopsAtARootAndIsCompleteThere) {
    auto found = spaced_ancestors({"c5"}, line(6));
    EXPECT_EQ(found.commits, (std::vector<std::string>{"c4", "c3", "c1"}));
    EXPECT_TRUE(found.complete);
}

TEST(SpacedAncestors, AWalkLeavingTheKnownHistoryIsIncomplete) {
    auto parents = line(10);
    parents.erase("c3"); // in an older bundle
    auto found = spaced_ancestors({"c9"}, parents);
    EXPECT_EQ(found.commits, (std::vector<std::string>{"c8", "c7", "c5"}));
    EXPECT_FALSE(found.complete);
    // A tip the scan never saw gives nothing, and is incomplete.
    auto unknown = spaced_ancestors({"zz"}, parents);
    EXPECT_TRUE(unknown.commits.empty());
    EXPECT_FALSE(unknown.complete);
}

TEST(SpacedAncestors, SharedHistoryIsOfferedOnce) {
    auto parents = line(20);
    parents["x"] = "c19";
    auto found = spaced_ancestors({"c19", "x"}, parents, 3);
    EXPECT_EQ(found.commits, (std::vector<std::string>{"c18", "c17", "c15", "c19", "c16"}));
    EXPECT_EQ(found.by_tip.at("x"), (std::set<std::string>{"c19", "c18", "c16"}));
}
