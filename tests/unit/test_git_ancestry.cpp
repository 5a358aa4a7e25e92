// git::ancestry() against `git merge-base --is-ancestor` (GitApi::is_ancestor)
// on every pair of a small history with merges, an orphan branch, commit
// dates out of order, annotated tags, a tree and a missing object.
#include "git_sandbox.hpp"
#include "snapshotter/git/ancestry.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

namespace {

// A history for the questions: main with a merge of a side branch, a second
// root (an orphan branch merged later), committer dates that go backwards on
// one branch, and an annotated tag on an older commit.
fs::path make_history(Sandbox& box, const std::string& format) {
    fs::path repo = box.dir() / ("history-" + format);
    fs::create_directories(repo);
    box.git(repo, {"init", "--quiet", "--bare", "--object-format=" + format});
    std::string stream;
    int mark = 0;
    auto commit = [&](const std::string& ref, long long date, const std::vector<int>& parents) {
        ++mark;
        const std::string msg = "c" + std::to_string(mark) + "\n";
        stream += "commit " + ref + "\nmark :" + std::to_string(mark) + "\ncommitter T <t@example.com> " +
                  std::to_string(date) + " +0000\ndata " + std::to_string(msg.size()) + "\n" + msg;
        for (std::size_t i = 0; i < parents.size(); ++i)
            stream += (i == 0 ? "from :" : "merge :") + std::to_string(parents[i]) + "\n";
        stream += "M 644 inline f" + std::to_string(mark) + "\ndata 2\n" + std::to_string(mark % 10) + "\n\n";
        return mark;
    };
    const int a1 = commit("refs/heads/main", 1000, {});
    const int a2 = commit("refs/heads/main", 2000, {a1});
    const int s1 = commit("refs/heads/side", 500, {a2}); // older than its parent: skewed
    const int s2 = commit("refs/heads/side", 400, {s1});
    const int a3 = commit("refs/heads/main", 3000, {a2});
    const int m1 = commit("refs/heads/main", 3500, {a3, s2});
    const int o1 = commit("refs/heads/orphan", 100, {}); // a second root
    const int o2 = commit("refs/heads/orphan", 4000, {o1});
    const int m2 = commit("refs/heads/main", 5000, {m1, o2});
    commit("refs/heads/main", 6000, {m2});
    commit("refs/heads/lone", 50, {}); // a root nothing else reaches
    stream += "tag v1\nfrom :" + std::to_string(a2) + "\ntagger T <t@example.com> 2100 +0000\ndata 3\nv1\n";
    ProcessOptions options;
    options.cwd = repo;
    options.stdin_data = stream;
    options.env = {"PATH=/usr/bin:/bin", "HOME=" + box.dir().string(), "GIT_CONFIG_NOSYSTEM=1"};
    auto r = run_process({"git", "fast-import", "--quiet"}, options);
    EXPECT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
    return repo;
}

void expect_as_merge_base(const std::string& format) {
    Sandbox box;
    auto repo = make_history(box, format);
    auto git = make_git();
    std::vector<std::string> oids;
    for (const auto& line : {box.git(repo, {"rev-list", "--all"}), box.git(repo, {"rev-parse", "v1"}),
                             box.git(repo, {"rev-parse", "main^{tree}"})})
        for (std::size_t at = 0; at < line.size();) {
            auto nl = line.find('\n', at);
            oids.push_back(line.substr(at, nl - at));
            at = nl == std::string::npos ? line.size() : nl + 1;
        }
    oids.push_back(std::string(oids.front().size(), '7')); // missing
    ASSERT_EQ(oids.size(), 14u);
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& a : oids)
        for (const auto& d : oids)
            pairs.emplace_back(a, d);
    auto answers = ancestry(git, repo, pairs, k_timeout);
    ASSERT_TRUE(answers) << answers.error().message;
    ASSERT_EQ(answers->size(), pairs.size());
    int yes = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        auto expected = git.is_ancestor(repo, pairs[i].first, pairs[i].second);
        ASSERT_TRUE(expected);
        EXPECT_EQ((*answers)[i], *expected) << pairs[i].first << " -> " << pairs[i].second;
        yes += *expected ? 1 : 0;
    }
    EXPECT_GT(yes, 40); // the history has both answers in numbers
    EXPECT_LT(yes, 150);
}

} // namespace

TEST(GitAncestry, AnswersAsMergeBaseForEveryPairSha1) {
    expect_as_merge_base("sha1");
}

TEST(GitAncestry, AnswersAsMergeBaseForEveryPairSha256) {
    expect_as_merge_base("sha256");
}

TEST(GitAncestry, NoPairsStartNoGitAndBadIdsAreRefused) {
    Sandbox box;
    auto repo = make_history(box, "sha1");
    auto git = make_git();
    auto none = ancestry(git, repo, {}, k_timeout);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    auto bad = ancestry(git, repo, {{"main\nHEAD", std::string(40, 'a')}}, k_timeout);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::Git);
}
