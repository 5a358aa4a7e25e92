// The one isolated environment of git/'s children (git/environment.hpp).
#include "snapshotter/git/environment.hpp"

#include <algorithm>
#include <cstdlib>
#include <gtest/gtest.h>
#include <optional>
#include <string>
#include <vector>

using namespace snapshotter::git;

namespace {

// The value of `name` in `env`, or nothing.
std::optional<std::string> value_of(const std::vector<std::string>& env, std::string_view name) {
    std::optional<std::string> found;
    for (const auto& entry : env)
        if (entry.starts_with(std::string(name) + "=")) {
            EXPECT_FALSE(found) << name << " is set twice";
            found = entry.substr(name.size() + 1);
        }
    return found;
}

// Sets variables for one test and restores them after.
class ScopedEnv {
  public:
    void set(const char* name, const char* value) {
        const char* old = std::getenv(name);
        m_saved.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
        ::setenv(name, value, 1);
    }
    ~ScopedEnv() {
        for (auto it = m_saved.rbegin(); it != m_saved.rend(); ++it) {
            if (it->second)
                ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else
                ::unsetenv(it->first.c_str());
        }
    }

  private:
    std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

} // namespace

TEST(IsolatedEnvironment, CommonRules) {
    ScopedEnv scoped;
    scoped.set("https_proxy", "http://proxy:3128");
    scoped.set("GIT_DIR", "/elsewhere");            // never inherited
    scoped.set("GIT_CONFIG_PARAMETERS", "'a.b=c'"); // never inherited
    scoped.set("LANG", "de_DE.UTF-8");
    for (auto home : {Home::private_home, Home::none, Home::user}) {
        auto env = isolated_environment(home, "/tmp/private");
        EXPECT_EQ(value_of(env, "https_proxy"), "http://proxy:3128");
        EXPECT_EQ(value_of(env, "PATH"), std::getenv("PATH"));
        EXPECT_FALSE(value_of(env, "GIT_DIR"));
        EXPECT_FALSE(value_of(env, "GIT_CONFIG_PARAMETERS"));
        EXPECT_EQ(value_of(env, "LC_ALL"), "C");
        EXPECT_EQ(value_of(env, "LANG"), "C");
        EXPECT_EQ(value_of(env, "GIT_CONFIG_NOSYSTEM"), "1");
        EXPECT_EQ(value_of(env, "GIT_TERMINAL_PROMPT"), "0");
    }
}

TEST(IsolatedEnvironment, HomeByKindOfChild) {
    ScopedEnv scoped;
    scoped.set("HOME", "/home/operator");
    scoped.set("USER", "operator");

    auto git = isolated_environment(Home::private_home, "/tmp/private");
    EXPECT_EQ(value_of(git, "HOME"), "/tmp/private");
    EXPECT_EQ(value_of(git, "GIT_CONFIG_GLOBAL"), "/tmp/private/gitconfig");
    EXPECT_EQ(value_of(git, "XDG_CONFIG_HOME"), "/tmp/private/.config");
    EXPECT_FALSE(value_of(git, "USER"));

    auto upload_pack = isolated_environment(Home::none);
    EXPECT_EQ(value_of(upload_pack, "HOME"), "/nonexistent");
    EXPECT_EQ(value_of(upload_pack, "GIT_CONFIG_GLOBAL"), "/dev/null");
    EXPECT_FALSE(value_of(upload_pack, "USER"));

    auto ssh = isolated_environment(Home::user);
    EXPECT_EQ(value_of(ssh, "HOME"), "/home/operator");
    EXPECT_EQ(value_of(ssh, "USER"), "operator");
    EXPECT_EQ(value_of(ssh, "GIT_CONFIG_GLOBAL"), "/dev/null");
}
