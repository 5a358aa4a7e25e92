// Test helper: throwaway git repositories built with the real git CLI, with
// an environment that ignores the machine's and the user's configuration.
#pragma once

#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/process.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace snapshotter::testing {

// The environment every test git runs with.
inline std::vector<std::string> git_test_env(const fs::path& home) {
    const char* path = std::getenv("PATH");
    return {
        std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin"),
        "HOME=" + home.string(),
        "GIT_CONFIG_NOSYSTEM=1",
        "GIT_AUTHOR_NAME=Test",
        "GIT_AUTHOR_EMAIL=test@example.com",
        "GIT_COMMITTER_NAME=Test",
        "GIT_COMMITTER_EMAIL=test@example.com",
        "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z",
    };
}

// Run `git args...` in `cwd`; returns stdout, or fails the test (and returns "") on error.
inline std::string git_ok(const fs::path& home, const fs::path& cwd, std::vector<std::string> args,
                          std::optional<std::string> stdin_data = std::nullopt) {
    args.insert(args.begin(), {"git", "-c", "init.defaultBranch=main", "-c", "safe.directory=*"});
    ProcessOptions options{.cwd = cwd, .env = git_test_env(home), .stdin_data = std::move(stdin_data)};
    auto r = run_process(args, options);
    if (!r) {
        ADD_FAILURE() << r.error().message;
        return {};
    }
    if (!r->ok()) {
        std::string joined;
        for (const auto& a : args)
            joined += a + " ";
        ADD_FAILURE() << joined << "exited " << r->exit_code << ": " << r->err;
    }
    return r->out;
}

// Exit code of `git args...` in `cwd` (stderr ignored).
inline int git_exit(const fs::path& home, const fs::path& cwd, std::vector<std::string> args) {
    args.insert(args.begin(), {"git", "-c", "safe.directory=*"});
    auto r = run_process(args, ProcessOptions{.cwd = cwd, .env = git_test_env(home)});
    return r ? r->exit_code : -1;
}

} // namespace snapshotter::testing
