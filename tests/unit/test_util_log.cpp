#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"
#include "test_support.hpp"

#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

using namespace snapshotter;

namespace {

// What `body` writes to file descriptor 2.
std::string capture_stderr(const std::function<void()>& body) {
    auto dir = TempDir::create("test-log");
    EXPECT_TRUE(dir);
    const auto path = dir->path() / "stderr";
    int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(file, 0);
    std::fflush(stderr);
    int saved = ::dup(STDERR_FILENO);
    ::dup2(file, STDERR_FILENO);
    body();
    spdlog::default_logger()->flush();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(file);
    return read_file(path).value_or("<unreadable>");
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    EXPECT_EQ(start, text.size()) << "last line not terminated: " << text;
    return out;
}

} // namespace

TEST(Logging, UnknownLevelIsRefused) {
    EXPECT_FALSE(init_logging("loud", LogFormat::json));
    EXPECT_TRUE(init_logging("off", LogFormat::json));
}

TEST(Logging, JsonLinesAreRedactedAndStampedInUtc) {
    const std::string secret = "log-secret-7f3e9a";
    register_secret(secret);
    test::NonUtcZone zone; // "ts" must be UTC whatever the local zone
    auto before = Clock::now() - std::chrono::seconds{2};
    auto text = capture_stderr([&] {
        ASSERT_TRUE(init_logging("info", LogFormat::json));
        spdlog::debug("hidden below the level");
        spdlog::info("token {} in https://u:pw9876@h/r.git", secret);
        spdlog::warn("second \"quoted\" line\nwith a newline");
    });
    auto after = Clock::now() + std::chrono::seconds{2};
    auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), 2u) << text;
    EXPECT_EQ(text.find(secret), std::string::npos) << text;
    EXPECT_EQ(text.find("pw9876"), std::string::npos) << text;
    EXPECT_EQ(text.find("hidden"), std::string::npos) << text;

    auto first = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(first.at("level"), "info");
    EXPECT_EQ(first.at("msg"), "token *** in https://u:***@h/r.git");
    auto ts = parse_rfc3339(first.at("ts").get<std::string>());
    ASSERT_TRUE(ts) << first.at("ts");
    EXPECT_GE(*ts, std::chrono::floor<std::chrono::seconds>(before));
    EXPECT_LE(*ts, after);

    auto second = nlohmann::json::parse(lines[1]);
    EXPECT_EQ(second.at("level"), "warning");
    EXPECT_EQ(second.at("msg"), "second \"quoted\" line\nwith a newline");
}

TEST(Logging, TextLinesWhenAsked) {
    auto text = capture_stderr([] {
        ASSERT_TRUE(init_logging("info", LogFormat::text));
        spdlog::info("plain message");
    });
    auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), 1u) << text;
    EXPECT_TRUE(lines[0].ends_with("plain message")) << lines[0];
    EXPECT_NE(lines[0].find("info"), std::string::npos) << lines[0];
    EXPECT_FALSE(lines[0].starts_with("{")) << lines[0];
    EXPECT_FALSE(stderr_is_interactive()); // stderr is a file here
}

TEST(Logging, TextLinesEscapeControlCharacters) {
    // A name planted in storage must not forge a second line or reach the terminal as an escape.
    auto text = capture_stderr([] {
        ASSERT_TRUE(init_logging("info", LogFormat::text));
        spdlog::info("repo a\n12:00:00 error forged line \x1b]0;title\x07 done");
    });
    auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), 1u) << text;
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
    EXPECT_NE(lines[0].find("repo a\\n12:00:00 error forged line \\u001b]0;title\\u0007 done"),
              std::string::npos)
        << lines[0];
}

TEST(Logging, RawStderrWriters) {
    auto text = capture_stderr([] { write_stderr_line("{\"_aws\":{}}"); });
    EXPECT_EQ(text, "{\"_aws\":{}}\n");
}

TEST(Logging, StatusLineIsClearedBeforeALogLineAndDrawnAgainAfterIt) {
    auto text = capture_stderr([] {
        ASSERT_TRUE(init_logging("info", LogFormat::json));
        set_status_line("1/2 repositories");
        spdlog::info("a log line");
        write_stderr_line("{\"_aws\":{}}");
        set_status_line("2/2 repositories");
        clear_status_line();
        clear_status_line(); // nothing shown: writes nothing
        spdlog::info("after");
    });
    auto first = text.find("\r1/2 repositories\x1b[K\r\x1b[K{");
    EXPECT_EQ(first, 0u) << text;
    auto log_end = text.find("\n");
    ASSERT_NE(log_end, std::string::npos);
    const std::string redrawn = "1/2 repositories\r\x1b[K{\"_aws\"";
    EXPECT_EQ(text.substr(log_end + 1, redrawn.size()), redrawn) << text;
    EXPECT_NE(text.find("{\"_aws\":{}}\n1/2 repositories\r2/2 repositories\x1b[K\r\x1b[K{"),
              std::string::npos)
        << text;
    // Once cleared, log lines are plain again.
    EXPECT_NE(text.find("\r\x1b[K{\"level\":\"info\",\"msg\":\"after\""), std::string::npos) << text;
    EXPECT_TRUE(text.ends_with("}\n")) << text;
}

TEST(Logging, WarningIsALevelName) {
    // The level logs print is a level --log-level accepts.
    EXPECT_TRUE(init_logging("warning", LogFormat::json));
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
}
