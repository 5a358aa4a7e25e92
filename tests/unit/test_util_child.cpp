#include "snapshotter/util/child.hpp"

#include <array>
#include <cstdlib>
#include <gtest/gtest.h>

using namespace snapshotter;

namespace {

std::vector<std::string> path_env() {
    const char* path = std::getenv("PATH");
    return {std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin")};
}

std::string read_all(Child& child) {
    std::string out;
    std::array<std::byte, 7> buffer{};
    while (true) {
        auto n = child.read(buffer);
        if (!n || *n == 0)
            break;
        out.append(reinterpret_cast<const char*>(buffer.data()), *n);
    }
    return out;
}

} // namespace

TEST(Child, TalksBothWaysAndReportsExit) {
    auto child = Child::spawn({"cat"}, {.env = path_env()});
    ASSERT_TRUE(child) << child.error().message;
    std::string hello = "hello\n";
    ASSERT_TRUE(child->write(std::as_bytes(std::span(hello.data(), hello.size()))));
    std::array<std::byte, 64> buffer{};
    auto n = child->read(buffer);
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), *n), "hello\n");
    child->close_stdin();
    EXPECT_EQ(read_all(*child), "");
    auto exit = child->wait();
    ASSERT_TRUE(exit);
    EXPECT_TRUE(exit->ok());
}

TEST(Child, CapturesStderrAndExitCode) {
    auto child = Child::spawn({"sh", "-c", "echo oops >&2; exit 3"}, {.env = path_env()});
    ASSERT_TRUE(child);
    EXPECT_EQ(read_all(*child), "");
    auto exit = child->wait();
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->exit_code, 3);
    EXPECT_EQ(exit->err, "oops\n");
}

TEST(Child, ReadTimesOutAndKillsTheGroup) {
    auto child =
        Child::spawn({"sleep", "30"}, {.env = path_env(), .timeout = std::chrono::milliseconds{200}});
    ASSERT_TRUE(child);
    std::array<std::byte, 16> buffer{};
    auto start = std::chrono::steady_clock::now();
    auto n = child->read(buffer);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().kind, ErrorKind::Timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{5});
}

TEST(Child, DestructorKillsARunningChild) {
    auto start = std::chrono::steady_clock::now();
    {
        auto child = Child::spawn({"sleep", "30"}, {.env = path_env()});
        ASSERT_TRUE(child);
        std::string ignored = "x";
        ASSERT_TRUE(child->write(std::as_bytes(std::span(ignored.data(), ignored.size()))));
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{5});
}

TEST(Child, MissingProgramFails) {
    auto child = Child::spawn({"no-such-program-snapshotter"}, {.env = path_env()});
    EXPECT_FALSE(child);
}

TEST(Child, WritingToAChildThatExitedIsAnErrorNotSigpipe) {
    auto child = Child::spawn({"true"}, {.env = path_env()});
    ASSERT_TRUE(child);
    EXPECT_EQ(read_all(*child), ""); // EOF: the child is gone
    std::string data(1 << 20, 'x');
    auto s = child->write(std::as_bytes(std::span(data.data(), data.size())));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Git);
    auto exit = child->wait();
    ASSERT_TRUE(exit);
    EXPECT_TRUE(exit->ok());
}
