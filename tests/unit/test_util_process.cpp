#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

using namespace snapshotter;
using namespace std::chrono_literals;

namespace {

// Options with a usable PATH (the child gets exactly `env`, nothing else).
ProcessOptions base_options() {
    ProcessOptions options;
    const char* path = std::getenv("PATH");
    options.env = {std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin")};
    options.timeout = 30s;
    return options;
}

ProcessResult run_ok(const std::vector<std::string>& argv, const ProcessOptions& options = base_options()) {
    auto result = run_process(argv, options);
    EXPECT_TRUE(result) << argv[0] << ": " << (result ? "" : result.error().message);
    return result.value_or(ProcessResult{});
}

// True while `pid` exists and is not a zombie.
bool is_running(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat)
        return false;
    std::string line;
    std::getline(stat, line);
    auto close_paren = line.rfind(')');
    return close_paren != std::string::npos && close_paren + 2 < line.size() && line[close_paren + 2] != 'Z';
}

} // namespace

TEST(RunProcess, ExitCodes) {
    auto ok = run_ok({"true"});
    EXPECT_EQ(ok.exit_code, 0);
    EXPECT_TRUE(ok.ok());
    auto three = run_ok({"sh", "-c", "exit 3"});
    EXPECT_EQ(three.exit_code, 3);
    EXPECT_FALSE(three.ok());
    EXPECT_EQ(three.signal, 0);
}

TEST(RunProcess, KilledBySignal) {
    auto killed = run_ok({"sh", "-c", "kill -TERM $$"});
    EXPECT_EQ(killed.signal, SIGTERM);
    EXPECT_EQ(killed.exit_code, -1);
    EXPECT_FALSE(killed.ok());
}

TEST(RunProcess, CapturesStdoutAndStderrSeparately) {
    auto r = run_ok({"sh", "-c", "printf out; printf err >&2"});
    EXPECT_EQ(r.out, "out");
    EXPECT_EQ(r.err, "err");
}

TEST(RunProcess, StreamsStdoutToSink) {
    auto options = base_options();
    std::size_t total = 0;
    std::size_t calls = 0;
    bool all_zero = true;
    options.on_stdout = [&](std::span<const std::byte> chunk) -> Status {
        total += chunk.size();
        ++calls;
        for (auto b : chunk)
            all_zero = all_zero && b == std::byte{0};
        return {};
    };
    auto r = run_ok({"head", "-c", "1000000", "/dev/zero"}, options);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(total, 1'000'000u);
    EXPECT_GT(calls, 1u);
    EXPECT_TRUE(all_zero);
    EXPECT_TRUE(r.out.empty());
}

TEST(RunProcess, SinkErrorStopsTheChild) {
    auto options = base_options();
    options.on_stdout = [](std::span<const std::byte>) -> Status {
        return fail(Error::storage("disk full"));
    };
    auto start = std::chrono::steady_clock::now();
    auto r = run_process({"yes"}, options); // would print forever
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Storage);
    EXPECT_EQ(r.error().message, "disk full");
    EXPECT_LT(took, 5s);
}

TEST(RunProcess, FeedsStdinData) {
    auto options = base_options();
    std::string data(3'000'000, 'a'); // larger than a pipe buffer
    for (std::size_t i = 0; i < data.size(); i += 1000)
        data[i] = '\n';
    options.stdin_data = data;
    auto r = run_ok({"cat"}, options);
    EXPECT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data);
}

TEST(RunProcess, EmptyStdinDataGivesEof) {
    auto options = base_options();
    options.stdin_data = "";
    auto r = run_ok({"cat"}, options);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.exit_code, 0);
}

TEST(RunProcess, StdinIsDevNullByDefault) {
    auto r = run_ok({"sh", "-c", "cat; readlink /proc/self/fd/0"});
    EXPECT_EQ(r.out, "/dev/null\n");
}

TEST(RunProcess, StdinNotReadByTheChildDoesNotKillUs) {
    // The child exits without reading; writing to its stdin must not raise
    // SIGPIPE in the caller (tests do not ignore SIGPIPE).
    auto options = base_options();
    options.stdin_data = std::string(4'000'000, 'x');
    auto r = run_ok({"sh", "-c", "exec 0<&-; exit 7"}, options);
    EXPECT_EQ(r.exit_code, 7);
}

TEST(RunProcess, StderrTailIsBounded) {
    auto options = base_options();
    options.max_stderr = 100;
    auto r =
        run_ok({"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i >&2; i=$((i+1)); done"}, options);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_LE(r.err.size(), 100u);
    EXPECT_GE(r.err.size(), 90u);
    EXPECT_TRUE(r.err.ends_with("line2999\n")) << r.err;
}

TEST(RunProcess, CapturedStdoutLimitFails) {
    auto options = base_options();
    options.max_stdout = 1000;
    auto r = run_process({"head", "-c", "100000", "/dev/zero"}, options);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("more than 1000 bytes"), std::string::npos) << r.error().message;
}

TEST(RunProcess, TimeoutKillsTheWholeProcessGroupQuickly) {
    auto options = base_options();
    options.timeout = 300ms;
    std::string printed;
    options.on_stdout = [&](std::span<const std::byte> chunk) -> Status {
        printed.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return {};
    };
    auto start = std::chrono::steady_clock::now();
    auto r = run_process({"sh", "-c", "sleep 100 & echo $!; sleep 100"}, options);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Timeout);
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 5s);
    ASSERT_FALSE(printed.empty());
    pid_t grandchild = std::stoi(printed);
    ASSERT_GT(grandchild, 1);
    // The background sleep was in the child's group: it must be gone soon.
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (is_running(grandchild) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(is_running(grandchild)) << "grandchild " << grandchild << " survived the timeout";
}

TEST(RunProcess, ChildRunsInItsOwnProcessGroup) {
    auto r = run_ok({"sh", "-c", "cut -d' ' -f5 /proc/$$/stat; echo $$"});
    auto nl = r.out.find('\n');
    ASSERT_NE(nl, std::string::npos) << r.out;
    EXPECT_EQ(r.out.substr(0, nl), r.out.substr(nl + 1, r.out.size() - nl - 2)) << r.out;
    EXPECT_NE(std::stoi(r.out), ::getpgrp());
}

TEST(RunProcess, ArgvIsPassedLiterallyNeverThroughAShell) {
    auto r = run_ok({"printf", "%s|", "a b", "'q'", "\"dq\"", "$HOME", "*", ";", "x && y", "`id`", "$(id)"});
    EXPECT_EQ(r.out, "a b|'q'|\"dq\"|$HOME|*|;|x && y|`id`|$(id)|");
}

TEST(RunProcess, EnvironmentIsExactlyTheGivenOne) {
    ProcessOptions options;
    options.env = {"FOO=bar baz", "EMPTY="};
    auto r = run_ok({"env"}, options);
    EXPECT_EQ(r.out, "FOO=bar baz\nEMPTY=\n");
}

TEST(RunProcess, WorkingDirectory) {
    auto dir = TempDir::create("cwd");
    ASSERT_TRUE(dir);
    auto options = base_options();
    options.cwd = dir->path();
    auto r = run_ok({"pwd", "-P"}, options);
    EXPECT_EQ(r.out, fs::canonical(dir->path()).string() + "\n");
}

TEST(RunProcess, MissingProgramIsAnError) {
    auto r = run_process({"snapshotter-no-such-program-x"}, base_options());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Internal);
    EXPECT_NE(r.error().message.find("not found"), std::string::npos);
    EXPECT_FALSE(run_process({}, base_options()));
}

TEST(TailLines, KeepsTheLastNonEmptyLines) {
    EXPECT_EQ(tail_lines("a\nb\n\nc  \nd\n", 3), "b; c; d");
    EXPECT_EQ(tail_lines("one\r\ntwo\r\n", 3), "one; two");
    EXPECT_EQ(tail_lines("", 3), "");
    EXPECT_EQ(tail_lines("x\ny\nz", 1), "z");
    EXPECT_EQ(tail_lines("fatal: repository not found\n"), "fatal: repository not found");
}

TEST(FindInPath, FindsAndMisses) {
    auto sh = find_in_path("sh");
    ASSERT_TRUE(sh);
    EXPECT_TRUE(sh->is_absolute());
    EXPECT_EQ(sh->filename(), "sh");
    EXPECT_FALSE(find_in_path("snapshotter-no-such-program-x"));
    EXPECT_EQ(find_in_path("./relative/x"), fs::path("./relative/x"));
}

// abort_all_processes() is one-way and process-wide: each test runs it in a
// forked child (a death test) so that the other tests keep working.
TEST(AbortAllProcesses, NotAbortedUnlessAsked) {
    EXPECT_FALSE(processes_aborted());
}

TEST(AbortAllProcesses, StopsARunningChildAndRefusesNewOnes) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            std::thread stopper([] {
                std::this_thread::sleep_for(200ms);
                abort_all_processes();
            });
            auto start = std::chrono::steady_clock::now();
            auto running = run_process({"sleep", "100"}, base_options());
            auto took = std::chrono::steady_clock::now() - start;
            stopper.join();
            auto later = run_process({"true"}, base_options());
            bool ok = !running && running.error().kind == ErrorKind::Interrupted && took < 5s &&
                      processes_aborted() && !later && later.error().kind == ErrorKind::Interrupted;
            std::_Exit(ok ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(TailLines, CutsLongLinesAtACharacterBoundary) {
    const std::string long_line = "remote error: " + std::string(70000, 'a');
    EXPECT_EQ(tail_lines("fatal: x\n" + long_line + "\n"),
              "fatal: x; " + long_line.substr(0, k_max_tail_line) + "... (70014 bytes)");
    // "é" is two bytes; a cut between them would leave invalid UTF-8.
    std::string accents = "x";
    for (int i = 0; i < 400; ++i)
        accents += "\xc3\xa9";
    const std::string out = tail_lines(accents);
    EXPECT_EQ(out, accents.substr(0, k_max_tail_line - 1) + "... (801 bytes)");
    const std::string exact(k_max_tail_line, 'b');
    EXPECT_EQ(tail_lines(exact), exact);
}
