#include "snapshotter/git/environment.hpp"

#include <cstdlib>
#include <fmt/format.h>

namespace snapshotter::git {
namespace {

// NAME=value of the caller's `name`, when set.
void pass_through(std::vector<std::string>& env, std::string_view name) {
    if (const char* value = std::getenv(std::string(name).c_str()))
        env.push_back(fmt::format("{}={}", name, value));
}

} // namespace

std::vector<std::string> isolated_environment(Home home, const std::filesystem::path& private_home) {
    std::vector<std::string> env;
    for (auto name : k_passthrough)
        pass_through(env, name);
    env.emplace_back("LC_ALL=C");
    env.emplace_back("LANG=C");
    env.emplace_back("GIT_CONFIG_NOSYSTEM=1");
    env.emplace_back("GIT_TERMINAL_PROMPT=0");
    switch (home) {
    case Home::private_home:
        env.push_back("HOME=" + private_home.string());
        env.push_back("XDG_CONFIG_HOME=" + (private_home / ".config").string());
        env.push_back("GIT_CONFIG_GLOBAL=" + (private_home / "gitconfig").string());
        break;
    case Home::none:
        env.emplace_back("HOME=/nonexistent");
        env.emplace_back("GIT_CONFIG_GLOBAL=/dev/null");
        break;
    case Home::user:
        for (auto name : {"HOME", "USER", "LOGNAME"})
            pass_through(env, name);
        env.emplace_back("GIT_CONFIG_GLOBAL=/dev/null");
        break;
    }
    return env;
}

} // namespace snapshotter::git
