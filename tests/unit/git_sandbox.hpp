// A sandbox for unit tests of the git layer: repositories made with the real
// git binary in a temporary directory, isolated from the machine's config.
// No servers and no network: remotes are local paths.
#pragma once

#include "snapshotter/git/git.hpp"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::test_support {

using namespace std::chrono_literals;

inline constexpr auto k_timeout = std::chrono::milliseconds{60'000};

// Runs the real git for test setup, isolated from the machine's config.
class Sandbox {
  public:
    Sandbox() {
        auto dir = TempDir::create("test-git");
        EXPECT_TRUE(dir);
        m_dir.emplace(std::move(*dir));
    }
    [[nodiscard]] const fs::path& dir() const { return m_dir->path(); }

    // Run git with `args` in `cwd`; fails the test on a non-zero exit.
    std::string git(const fs::path& cwd, std::vector<std::string> args) {
        args.insert(args.begin(), "git");
        ProcessOptions options;
        const char* path = std::getenv("PATH");
        options.env = {std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin"),
                       "HOME=" + dir().string(),
                       "GIT_CONFIG_NOSYSTEM=1",
                       "GIT_CONFIG_GLOBAL=/dev/null",
                       "GIT_AUTHOR_NAME=Test",
                       "GIT_AUTHOR_EMAIL=test@example.com",
                       "GIT_COMMITTER_NAME=Test",
                       "GIT_COMMITTER_EMAIL=test@example.com",
                       "GIT_AUTHOR_DATE=2026-11-28T07:00:00Z",
                       "GIT_COMMITTER_DATE=2026-11-28T07:00:00Z"};
        options.cwd = cwd;
        options.timeout = 60s;
        auto r = run_process(args, options);
        EXPECT_TRUE(r) << r.error().message;
        if (!r)
            return {};
        EXPECT_EQ(r->exit_code, 0) << args[1] << ": " << r->err;
        while (!r->out.empty() && r->out.back() == '\n')
            r->out.pop_back();
        return r->out;
    }

    // A work tree at dir()/name with: main (2 commits), feature (1 more),
    // a lightweight tag, an annotated tag and HEAD on main.
    fs::path make_upstream(const std::string& name = "upstream", const std::string& format = "sha1") {
        fs::path repo = dir() / name;
        fs::create_directories(repo);
        git(repo, {"init", "--quiet", "--initial-branch=main", "--object-format=" + format});
        write(repo / "README", "hello\n");
        git(repo, {"add", "README"});
        git(repo, {"commit", "--quiet", "-m", "first"});
        git(repo, {"tag", "v0.1"});
        write(repo / "README", "hello again\n");
        git(repo, {"commit", "--quiet", "-am", "second"});
        git(repo, {"tag", "-a", "v1.0", "-m", "release 1.0"});
        git(repo, {"checkout", "--quiet", "-b", "feature"});
        write(repo / "feature.txt", "feature\n");
        git(repo, {"add", "feature.txt"});
        git(repo, {"commit", "--quiet", "-m", "feature"});
        git(repo, {"checkout", "--quiet", "main"});
        return repo;
    }

    static void write(const fs::path& path, std::string_view text) {
        std::ofstream(path, std::ios::binary) << text;
    }

  private:
    std::optional<TempDir> m_dir;
};

inline git::Git make_git() {
    auto git = git::Git::create();
    EXPECT_TRUE(git) << git.error().message;
    return std::move(*git);
}

} // namespace snapshotter::test_support
