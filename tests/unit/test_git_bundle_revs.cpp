// incremental_bundle_revs() against git's own bundle: in a repository with
// merges, after a night of every kind of ref change, the bundle made from the
// chosen revisions must have the prerequisites, the refs and the packed
// objects of `git bundle create <changed refs> --not <every old tip>`.
#include "git_sandbox.hpp"
#include "snapshotter/git/bundle_revs.hpp"
#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/cat_file.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <set>
#include <sstream>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

namespace {

// A repository with history, merges and many old tips, and a night of changes.
struct Night {
    fs::path repo;
    fs::path before;                // a mirror of the repository before the night
    std::vector<std::string> bases; // every tip before the night, peeled to commits
    RefMap after;                   // the refs after the night
    std::vector<BundleTip> changed; // the refs the night changed or added, with their peeled objects
};

std::string commit_file(Sandbox& box, const fs::path& repo, const std::string& file, const std::string& text,
                        const std::string& message) {
    Sandbox::write(repo / file, text);
    box.git(repo, {"add", file});
    box.git(repo, {"commit", "--quiet", "-m", message});
    return box.git(repo, {"rev-parse", "HEAD"});
}

Night make_night(Sandbox& box, const Git& git) {
    Night n;
    n.repo = box.make_upstream("repo");
    const auto& repo = n.repo;
    // History with merges: a side branch merged into main, then more commits.
    box.git(repo, {"checkout", "--quiet", "-b", "side", "main"});
    commit_file(box, repo, "side.txt", "side 1\n", "side 1");
    commit_file(box, repo, "side.txt", "side 2\n", "side 2");
    box.git(repo, {"checkout", "--quiet", "main"});
    commit_file(box, repo, "main.txt", "main 3\n", "main 3");
    box.git(repo, {"merge", "--quiet", "--no-ff", "-m", "merge side", "side"});
    for (int i = 4; i < 9; ++i)
        commit_file(box, repo, "main.txt", "main " + std::to_string(i) + "\n", "main " + std::to_string(i));
    // Many old tips: pull refs, each a commit of its own on an older commit of main.
    const auto mains = box.git(repo, {"rev-list", "--first-parent", "main"});
    std::vector<std::string> main_commits;
    std::istringstream lines(mains);
    for (std::string line; std::getline(lines, line);)
        main_commits.push_back(line);
    for (int k = 0; k < 40; ++k) {
        box.git(repo, {"checkout", "--quiet", "--detach",
                       main_commits[static_cast<std::size_t>(k) % main_commits.size()]});
        auto oid = commit_file(box, repo, "pull.txt", "pull " + std::to_string(k) + "\n",
                               "pull " + std::to_string(k));
        box.git(repo, {"update-ref", "refs/pull/" + std::to_string(k) + "/head", oid});
    }
    box.git(repo, {"checkout", "--quiet", "main"});
    box.git(repo, {"branch", "reset-me", "main"});
    box.git(repo, {"branch", "mover", "main"});
    box.git(repo, {"branch", "doomed", "feature"});
    box.git(repo, {"tag", "-a", "-m", "old release", "v2.0", "main~2"});

    n.before = box.dir() / "before.git";
    box.git(box.dir(), {"clone", "--quiet", "--mirror", repo.string(), n.before.string()});
    auto before = git.local_refs(repo);
    EXPECT_TRUE(before);
    std::set<std::string> bases;
    for (const auto& [name, target] : *before)
        bases.insert(target.peeled.empty() ? target.oid : target.peeled);
    n.bases.assign(bases.begin(), bases.end());

    // The night. New commits on main: one merges an old pull commit (a
    // parent among the old commits that is no tip of main), one brings back
    // a file only an old pull ref's tree holds.
    commit_file(box, repo, "night.txt", "night 1\n", "night 1");
    box.git(repo, {"merge", "--quiet", "--no-ff", "-m", "merge pull 3", "refs/pull/3/head"});
    commit_file(box, repo, "pull.txt", "pull 7\n", "night 2: pull 7's file again");
    // A branch reset to an old commit, and one moved onto an ancestor of its tip.
    box.git(repo, {"branch", "-f", "reset-me", "main~6"});
    box.git(repo, {"branch", "-f", "mover", box.git(repo, {"rev-parse", "mover~1"})});
    // New refs and tags on old commits, and tags on new ones.
    box.git(repo, {"branch", "new-on-old", main_commits[4]});
    box.git(repo, {"tag", "light-old", main_commits[2]});
    box.git(repo, {"tag", "-a", "-m", "annotated on an old commit", "annotated-old", main_commits[5]});
    box.git(repo, {"tag", "-a", "-m", "annotated on a new commit", "annotated-new", "main"});
    // ... and on old commits no new commit reaches (not below the boundary).
    box.git(repo, {"branch", "on-old-pull", "refs/pull/11/head"});
    box.git(repo,
            {"tag", "-a", "-m", "annotated on an old pull commit", "annotated-old-pull", "refs/pull/9/head"});
    box.git(repo, {"tag", "-a", "-m", "a tag of a tag", "tag-of-tag", "annotated-old"});
    // An old pull ref moved onto new work, another onto an old commit.
    box.git(repo, {"checkout", "--quiet", "--detach", "refs/pull/5/head"});
    box.git(repo, {"update-ref", "refs/pull/5/head",
                   commit_file(box, repo, "pull.txt", "pull 5 again\n", "pull 5b")});
    box.git(repo, {"update-ref", "refs/pull/6/head", main_commits[1]});
    // A deleted ref.
    box.git(repo, {"branch", "--quiet", "-D", "doomed"});
    // A new root: history of its own.
    box.git(repo, {"checkout", "--quiet", "--orphan", "root"});
    box.git(repo, {"rm", "--quiet", "-rf", "--cached", "."});
    commit_file(box, repo, "root.txt", "root 1\n", "root 1");
    commit_file(box, repo, "root.txt", "root 2\n", "root 2");
    box.git(repo, {"checkout", "--quiet", "--force", "main"});
    // Refs to a tree: a new one and an old one.
    box.git(repo, {"update-ref", "refs/tags/tree-new", box.git(repo, {"rev-parse", "main^{tree}"})});
    box.git(repo,
            {"update-ref", "refs/tags/tree-old", box.git(repo, {"rev-parse", main_commits[3] + "^{tree}"})});

    auto after = git.local_refs(repo);
    EXPECT_TRUE(after);
    n.after = *after;
    for (const auto& [name, target] : n.after)
        if (auto it = before->find(name); it == before->end() || it->second != target)
            n.changed.push_back({name, target.oid, target.peeled});
    return n;
}

std::string bundle_of(const Git& git, const fs::path& repo, const std::vector<std::string>& revs) {
    std::string out;
    auto s = git.bundle_create(
        repo, revs,
        [&](std::span<const std::byte> chunk) -> Status {
            out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            return {};
        },
        k_timeout);
    EXPECT_TRUE(s) << s.error().message;
    return out;
}

// The objects a bundle's (thin) pack holds: unbundled by git into a
// repository that borrows `repo`'s objects for the prerequisites and delta
// bases, the bases git appends to complete a thin pack (--fix-thin) left
// out by their offset.
std::set<std::string> packed_objects(Sandbox& box, const fs::path& repo, const std::string& bundle,
                                     const std::string& name) {
    auto parsed = parse_bundle_header(bundle);
    EXPECT_TRUE(parsed);
    if (!parsed || bundle.size() < parsed->size + 32)
        return {};
    std::uint32_t count = 0; // the pack header's object count
    for (std::size_t i = 8; i < 12; ++i)
        count = (count << 8) | static_cast<unsigned char>(bundle[parsed->size + i]);
    const auto path = box.dir() / (name + ".bundle");
    Sandbox::write(path, bundle);
    const auto scratch = box.dir() / ("unbundled-" + name + ".git");
    box.git(box.dir(), {"init", "--quiet", "--bare", scratch.string()});
    Sandbox::write(scratch / "objects" / "info" / "alternates", (repo / ".git" / "objects").string() + "\n");
    box.git(scratch, {"bundle", "unbundle", path.string()});
    std::vector<std::pair<std::uint64_t, std::string>> by_offset;
    for (const auto& entry : fs::directory_iterator(scratch / "objects" / "pack")) {
        if (entry.path().extension() != ".idx")
            continue;
        std::istringstream lines(box.git(scratch, {"verify-pack", "-v", entry.path().string()}));
        for (std::string line; std::getline(lines, line);) {
            std::istringstream fields(line);
            std::string oid, type;
            std::uint64_t size = 0, in_pack = 0, offset = 0;
            if (fields >> oid >> type >> size >> in_pack >> offset && is_object_id(oid))
                by_offset.emplace_back(offset, oid);
        }
    }
    std::sort(by_offset.begin(), by_offset.end());
    EXPECT_GE(by_offset.size(), count) << name;
    std::set<std::string> out;
    for (std::size_t i = 0; i < std::min<std::size_t>(count, by_offset.size()); ++i)
        out.insert(by_offset[i].second);
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Our bundle and git's, made from `tips` over `bases` in `repo`, hold the
// same header and objects; returns our revisions.
IncrementalRevs expect_same_bundle(Sandbox& box, const Git& git, const fs::path& repo,
                                   const std::vector<BundleTip>& tips, const std::vector<std::string>& bases,
                                   const std::string& name) {
    auto session = CatFileSession::start(git, repo, k_timeout);
    EXPECT_TRUE(session);
    auto chosen = incremental_bundle_revs(git, *session, repo, tips, bases, k_timeout);
    EXPECT_TRUE(chosen) << chosen.error().message;
    EXPECT_TRUE(session->finish());
    if (!chosen)
        return {};
    // git's: every changed ref, every old tip a negative (what the cli engine gave it before).
    std::vector<std::string> theirs_revs;
    for (const auto& tip : tips)
        theirs_revs.push_back(tip.name);
    for (const auto& oid : bases)
        theirs_revs.push_back("^" + oid);
    const auto theirs = bundle_of(git, repo, theirs_revs);
    const auto ours = bundle_of(git, repo, chosen->revs);
    auto their_header = parse_bundle_header(theirs);
    auto our_header = parse_bundle_header(ours);
    EXPECT_TRUE(their_header && our_header);
    if (!their_header || !our_header)
        return *chosen;
    EXPECT_EQ(our_header->header.refs, their_header->header.refs) << name;
    EXPECT_EQ(sorted(our_header->header.prerequisites), sorted(their_header->header.prerequisites)) << name;
    EXPECT_EQ(packed_objects(box, repo, ours, name + "-ours"),
              packed_objects(box, repo, theirs, name + "-theirs"))
        << name;
    EXPECT_LE(ours.size() - our_header->size, theirs.size() - their_header->size)
        << name << ": a larger pack";
    return *chosen;
}

std::vector<std::string> negatives_of(const std::vector<std::string>& revs) {
    std::vector<std::string> out;
    for (const auto& r : revs)
        if (r.starts_with('^'))
            out.push_back(r.substr(1));
    return out;
}

} // namespace

TEST(IncrementalBundleRevs, GiveGitsOwnBundleFromTheBoundaryAlone) {
    Sandbox box;
    auto git = make_git();
    auto night = make_night(box, git);
    ASSERT_GE(night.bases.size(), 40u);
    ASSERT_GE(night.changed.size(), 12u);
    auto chosen = expect_same_bundle(box, git, night.repo, night.changed, night.bases, "night");
    EXPECT_TRUE(chosen.new_objects);
    // Of the 40-odd old tips, the negatives are the boundary and the old
    // commit the annotated tag on an old commit peels to.
    const auto negatives = negatives_of(chosen.revs);
    EXPECT_LE(negatives.size(), 6u);
    EXPECT_LT(negatives.size() * 5, night.bases.size());
    const auto pull3 = box.git(night.before, {"rev-parse", "refs/pull/3/head"});
    EXPECT_NE(std::find(negatives.begin(), negatives.end(), pull3), negatives.end())
        << "the merged old pull commit is a prerequisite";
    // Refs on old commits are left out (git lists none of them); tags on old
    // commits, trees and new work are listed.
    const auto& revs = chosen.revs;
    auto listed = [&](const std::string& name) {
        return std::find(revs.begin(), revs.end(), name) != revs.end();
    };
    for (const auto* name : {"refs/heads/reset-me", "refs/heads/mover", "refs/heads/new-on-old",
                             "refs/tags/light-old", "refs/pull/6/head"})
        EXPECT_FALSE(listed(name)) << name;
    for (const auto* name :
         {"refs/heads/main", "refs/heads/root", "refs/tags/annotated-old", "refs/tags/annotated-new",
          "refs/tags/tag-of-tag", "refs/tags/tree-new", "refs/tags/tree-old", "refs/pull/5/head"})
        EXPECT_TRUE(listed(name)) << name;

    // The bundle applies on top of the mirror of the night before.
    const auto path = box.dir() / "ours.bundle";
    Sandbox::write(path, bundle_of(git, night.repo, chosen.revs));
    box.git(night.before, {"bundle", "verify", "--quiet", path.string()});
    ASSERT_TRUE(git.fetch_bundle(night.before, path, k_timeout));
    for (const auto& tip : night.changed) {
        if (listed(tip.name)) {
            EXPECT_EQ(box.git(night.before, {"rev-parse", tip.name}), tip.oid) << tip.name;
        }
    }
    EXPECT_TRUE(git.fsck(night.before, k_timeout));
}

TEST(IncrementalBundleRevs, ATagWhosePeeledObjectIsUnknownTakesEveryOldTip) {
    Sandbox box;
    auto git = make_git();
    auto night = make_night(box, git);
    // The annotated tag on an old commit, its peeled object not given (as a
    // detached HEAD's object is), among the other changes.
    std::vector<BundleTip> tips;
    for (auto tip : night.changed) {
        if (tip.name == "refs/tags/annotated-old")
            tip.peeled.clear();
        tips.push_back(tip);
    }
    auto chosen = expect_same_bundle(box, git, night.repo, tips, night.bases, "unknown-peel");
    EXPECT_EQ(sorted(negatives_of(chosen.revs)), night.bases);
    EXPECT_TRUE(chosen.new_objects);
}

TEST(IncrementalBundleRevs, OnlyOldCommitsNeedNoBundle) {
    Sandbox box;
    auto git = make_git();
    auto night = make_night(box, git);
    std::vector<BundleTip> old;
    for (const auto& tip : night.changed)
        if (tip.name == "refs/heads/reset-me" || tip.name == "refs/heads/mover" ||
            tip.name == "refs/pull/6/head" || tip.name == "refs/tags/light-old")
            old.push_back(tip);
    ASSERT_EQ(old.size(), 4u);
    auto session = CatFileSession::start(git, night.repo, k_timeout);
    ASSERT_TRUE(session);
    auto chosen = incremental_bundle_revs(git, *session, night.repo, old, night.bases, k_timeout);
    ASSERT_TRUE(chosen) << chosen.error().message;
    EXPECT_FALSE(chosen->new_objects);
    EXPECT_TRUE(chosen->revs.empty());
    // A new commit among them: a bundle of it alone, over its boundary.
    old.push_back({"refs/heads/root", night.after.at("refs/heads/root").oid, ""});
    chosen = incremental_bundle_revs(git, *session, night.repo, old, night.bases, k_timeout);
    ASSERT_TRUE(chosen);
    EXPECT_TRUE(chosen->new_objects);
    EXPECT_EQ(chosen->revs, std::vector<std::string>{"refs/heads/root"}); // a new root: no boundary
    EXPECT_TRUE(session->finish());
}

TEST(IncrementalBundleRevs, AFailedWalkFailsWithGit) {
    Sandbox box;
    auto git = make_git();
    auto repo = box.make_upstream();
    auto session = CatFileSession::start(git, repo, k_timeout);
    ASSERT_TRUE(session);
    const auto main_oid = box.git(repo, {"rev-parse", "main"});
    auto chosen = incremental_bundle_revs(git, *session, repo, {{"refs/heads/main", main_oid, ""}},
                                          {std::string(40, '4')}, k_timeout);
    ASSERT_FALSE(chosen);
    EXPECT_EQ(chosen.error().kind, ErrorKind::Git);
}
