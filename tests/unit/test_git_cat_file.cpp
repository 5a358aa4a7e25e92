// git::CatFileBatch against a repository made with the real git binary.
#include "git_sandbox.hpp"
#include "snapshotter/git/cat_file.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

TEST(GitCatFile, ReadsObjectsInTurnKeepingOnlyWhatIsAskedFor) {
    Sandbox box;
    auto upstream = box.make_upstream();
    const std::string big(200'000, 'x');
    Sandbox::write(upstream / "big.txt", big);
    box.git(upstream, {"add", "big.txt"});
    box.git(upstream, {"commit", "--quiet", "-m", "big"});
    auto git = make_git();
    auto batch = CatFileBatch::start(git, upstream, k_timeout);
    ASSERT_TRUE(batch) << batch.error().message;

    // A large blob: its size told, only the first bytes kept, the rest read and dropped.
    auto large = batch->read("main:big.txt", 10);
    ASSERT_TRUE(large) << large.error().message;
    ASSERT_TRUE(*large);
    EXPECT_EQ((*large)->type, "blob");
    EXPECT_EQ((*large)->size, big.size());
    EXPECT_EQ((*large)->content, std::string(10, 'x'));

    // The next answer is read in turn: a whole small blob, without the newline that ends it.
    auto readme = batch->read("main:README", 1 << 20);
    ASSERT_TRUE(readme) << readme.error().message;
    ASSERT_TRUE(*readme);
    EXPECT_EQ((*readme)->content, "hello again\n");
    EXPECT_EQ((*readme)->size, 12u);

    // A commit by id; a path and an object that do not exist.
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    auto commit = batch->read(head, 1 << 20);
    ASSERT_TRUE(commit && *commit);
    EXPECT_EQ((*commit)->type, "commit");
    EXPECT_TRUE((*commit)->content.starts_with("tree ")) << (*commit)->content;
    auto no_path = batch->read("main:nothing-here", 100);
    ASSERT_TRUE(no_path);
    EXPECT_FALSE(*no_path);
    auto no_object = batch->read(std::string(40, '5'), 100);
    ASSERT_TRUE(no_object);
    EXPECT_FALSE(*no_object);

    // A name of two lines would desynchronise the session: refused.
    auto two_lines = batch->read("main\nHEAD", 100);
    ASSERT_FALSE(two_lines);
    EXPECT_EQ(two_lines.error().kind, ErrorKind::Git);
    EXPECT_TRUE(batch->finish());
}

TEST(GitCatFile, FileAtReadsABlobOfAtMostTheLimit) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    auto readme = git.file_at(upstream, head, "README", 100);
    ASSERT_TRUE(readme) << readme.error().message;
    EXPECT_EQ(*readme, std::optional<std::string>("hello again\n"));
    auto over = git.file_at(upstream, head, "README", 5);
    ASSERT_TRUE(over);
    EXPECT_FALSE(*over);
    auto absent = git.file_at(upstream, head, ".lfsconfig", 100);
    ASSERT_TRUE(absent);
    EXPECT_FALSE(*absent);
    auto bad_commit = git.file_at(upstream, std::string(40, '6'), "README", 100);
    ASSERT_TRUE(bad_commit);
    EXPECT_FALSE(*bad_commit);
}
