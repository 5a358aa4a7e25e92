// git::CatFileSession against a repository made with the real git binary, in
// both of its modes (`--batch-command --buffer`, and `--batch` with
// `--batch-check` as git before 2.36 needs), including a child that dies or
// stops answering mid-session.
#include "git_sandbox.hpp"
#include "snapshotter/git/cat_file.hpp"

#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/types.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

namespace {

// The pids of the `git cat-file` children working in `repo`.
std::vector<pid_t> cat_file_children(const fs::path& repo) {
    std::vector<pid_t> pids;
    std::error_code ec;
    const auto want = fs::canonical(repo, ec);
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream in(entry.path() / "cmdline", std::ios::binary);
        std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::error_code link_ec;
        if (cmdline.find(std::string("cat-file\0", 9)) != std::string::npos &&
            fs::read_symlink(entry.path() / "cwd", link_ec) == want)
            pids.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return pids;
}

class GitCatFile : public ::testing::TestWithParam<CatFileMode> {};

std::string mode_name(const ::testing::TestParamInfo<CatFileMode>& info) {
    return info.param == CatFileMode::batch_command ? "BatchCommand" : "Separate";
}

} // namespace

TEST(GitCatFileVersion, BatchCommandFromGit236) {
    EXPECT_TRUE(has_batch_command("2.36.0"));
    EXPECT_TRUE(has_batch_command("2.39.5"));
    EXPECT_TRUE(has_batch_command("2.43.0.windows.1"));
    EXPECT_TRUE(has_batch_command("3.0"));
    EXPECT_FALSE(has_batch_command("2.35.8"));
    EXPECT_FALSE(has_batch_command("2.20.1"));
    EXPECT_FALSE(has_batch_command("1.9"));
    EXPECT_FALSE(has_batch_command("unknown"));
    EXPECT_FALSE(has_batch_command(""));
}

TEST_P(GitCatFile, ReadsObjectsInTurnKeepingOnlyWhatIsAskedFor) {
    Sandbox box;
    auto upstream = box.make_upstream();
    const std::string big(200'000, 'x');
    Sandbox::write(upstream / "big.txt", big);
    box.git(upstream, {"add", "big.txt"});
    box.git(upstream, {"commit", "--quiet", "-m", "big"});
    auto git = make_git();
    auto session = CatFileSession::start(git, upstream, k_timeout, GetParam());
    ASSERT_TRUE(session) << session.error().message;
    EXPECT_EQ(session->mode(), GetParam());

    // An oversize blob: its size told, only the first bytes kept, the rest read and dropped.
    auto large = session->read("main:big.txt", 10);
    ASSERT_TRUE(large) << large.error().message;
    ASSERT_TRUE(*large);
    EXPECT_EQ((*large)->type, "blob");
    EXPECT_EQ((*large)->size, big.size());
    EXPECT_EQ((*large)->content, std::string(10, 'x'));

    // The next answer is read in turn: a whole small blob, without the newline that ends it.
    auto readme = session->read("main:README", 1 << 20);
    ASSERT_TRUE(readme) << readme.error().message;
    ASSERT_TRUE(*readme);
    EXPECT_EQ((*readme)->content, "hello again\n");
    EXPECT_EQ((*readme)->size, 12u);

    // A commit by id; a path and an object that do not exist.
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    auto commit = session->read(head, 1 << 20);
    ASSERT_TRUE(commit && *commit);
    EXPECT_EQ((*commit)->type, "commit");
    EXPECT_TRUE((*commit)->content.starts_with("tree ")) << (*commit)->content;
    auto no_path = session->read("main:nothing-here", 100);
    ASSERT_TRUE(no_path);
    EXPECT_FALSE(*no_path);
    auto no_object = session->read(std::string(40, '5'), 100);
    ASSERT_TRUE(no_object);
    EXPECT_FALSE(*no_object);

    // Types and sizes without contents, after contents, in the same session.
    const std::string tag = box.git(upstream, {"rev-parse", "v1.0"});
    auto infos = session->info({head, std::string(40, '5'), tag, head + ":big.txt"});
    ASSERT_TRUE(infos) << infos.error().message;
    ASSERT_EQ(infos->size(), 4u);
    ASSERT_TRUE((*infos)[0] && (*infos)[2] && (*infos)[3]);
    EXPECT_EQ((*infos)[0]->type, "commit");
    EXPECT_FALSE((*infos)[1]);
    EXPECT_EQ((*infos)[2]->type, "tag");
    EXPECT_EQ((*infos)[3]->type, "blob");
    EXPECT_EQ((*infos)[3]->size, big.size());

    // A name of two lines would desynchronise the session, one over 1000
    // bytes would outgrow its answer line: both refused before git sees them.
    auto two_lines = session->read("main\nHEAD", 100);
    ASSERT_FALSE(two_lines);
    EXPECT_EQ(two_lines.error().kind, ErrorKind::Git);
    auto long_name = session->info({"main:" + std::string(1200, 'a')});
    ASSERT_FALSE(long_name);
    EXPECT_EQ(long_name.error().kind, ErrorKind::Git);
    EXPECT_TRUE(session->finish());
}

TEST_P(GitCatFile, AnswersManyQuestionsInOrderAcrossChunks) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    std::vector<std::string> commits;
    const std::string listed = box.git(upstream, {"rev-list", "--all"});
    for (std::size_t at = 0; at < listed.size();) {
        auto nl = listed.find('\n', at);
        commits.push_back(listed.substr(at, nl - at));
        at = nl == std::string::npos ? listed.size() : nl + 1;
    }
    ASSERT_GE(commits.size(), 3u);
    // 10,000 questions: far more than one chunk of either mode (a PIPE_BUF
    // of names, or 4096 names), every seventh a missing object.
    std::vector<std::string> names;
    for (std::size_t i = 0; i < 10'000; ++i)
        names.push_back(i % 7 == 3 ? std::string(40, 'e') : commits[i % commits.size()]);
    auto session = CatFileSession::start(git, upstream, k_timeout, GetParam());
    ASSERT_TRUE(session) << session.error().message;
    auto infos = session->info(names);
    ASSERT_TRUE(infos) << infos.error().message;
    ASSERT_EQ(infos->size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        ASSERT_EQ((*infos)[i].has_value(), i % 7 != 3) << i;
        if ((*infos)[i]) {
            EXPECT_EQ((*infos)[i]->type, "commit");
        }
    }
    auto contents = session->read_many(names, 5);
    ASSERT_TRUE(contents) << contents.error().message;
    ASSERT_EQ(contents->size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        ASSERT_EQ((*contents)[i].has_value(), i % 7 != 3) << i;
        if ((*contents)[i]) {
            EXPECT_EQ((*contents)[i]->content, "tree ");
        }
    }
    auto types = object_types(*session, {commits[0], std::string(40, 'e')});
    ASSERT_TRUE(types) << types.error().message;
    EXPECT_EQ(*types, (std::map<std::string, std::string>{{commits[0], "commit"}}));
    EXPECT_TRUE(session->finish());
}

TEST_P(GitCatFile, AChildKilledMidSessionFailsEveryLaterCallClearly) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto session = CatFileSession::start(git, upstream, k_timeout, GetParam());
    ASSERT_TRUE(session) << session.error().message;
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    ASSERT_TRUE(session->info({head})); // both children of the separate mode are running now
    auto first = session->read(head, 100);
    ASSERT_TRUE(first && *first);
    auto children = cat_file_children(upstream);
    ASSERT_FALSE(children.empty());
    for (auto pid : children)
        ::kill(pid, SIGKILL);
    auto after = session->read(head, 100);
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().kind, ErrorKind::Git) << after.error().message;
    EXPECT_NE(after.error().message.find("cat-file"), std::string::npos) << after.error().message;
    auto again = session->info({head});
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("failed earlier"), std::string::npos) << again.error().message;
    EXPECT_FALSE(session->finish());
}

TEST_P(GitCatFile, AChildThatStopsAnsweringTimesOut) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto session = CatFileSession::start(git, upstream, std::chrono::milliseconds{3000}, GetParam());
    ASSERT_TRUE(session) << session.error().message;
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    ASSERT_TRUE(session->read(head, 100));
    for (auto pid : cat_file_children(upstream))
        ::kill(pid, SIGSTOP);
    const auto started = std::chrono::steady_clock::now();
    auto stuck = session->read(head, 100);
    ASSERT_FALSE(stuck);
    EXPECT_EQ(stuck.error().kind, ErrorKind::Timeout) << stuck.error().message;
    EXPECT_NE(stuck.error().message.find("cat-file"), std::string::npos) << stuck.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{15});
}

INSTANTIATE_TEST_SUITE_P(Modes, GitCatFile,
                         ::testing::Values(CatFileMode::batch_command, CatFileMode::separate), mode_name);

TEST(GitCatFileBlobAt, ReadsABlobOfAtMostTheLimit) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto session = CatFileSession::start(git, upstream, k_timeout);
    ASSERT_TRUE(session) << session.error().message;
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    auto readme = blob_at(*session, head, "README", 100);
    ASSERT_TRUE(readme) << readme.error().message;
    EXPECT_EQ(*readme, std::optional<std::string>("hello again\n"));
    auto over = blob_at(*session, head, "README", 5);
    ASSERT_TRUE(over);
    EXPECT_FALSE(*over);
    auto absent = blob_at(*session, head, ".lfsconfig", 100);
    ASSERT_TRUE(absent);
    EXPECT_FALSE(*absent);
    auto bad_commit = blob_at(*session, std::string(40, '6'), "README", 100);
    ASSERT_TRUE(bad_commit);
    EXPECT_FALSE(*bad_commit);
    auto a_tree = blob_at(*session, head, "", 100); // "<commit>:" names the root tree
    ASSERT_TRUE(a_tree) << a_tree.error().message;
    EXPECT_FALSE(*a_tree);
    EXPECT_TRUE(session->finish());
}
