// Running a child process the safe way: an argv vector (never a shell),
// posix_spawn, the child in its own process group, stdin from /dev/null or a
// pipe we feed, a timeout that kills the whole group, bounded capture of
// stderr, and stdout either captured or streamed to a callback.
#pragma once

#include "snapshotter/util/error.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

namespace snapshotter {

// Receives a chunk of the child's stdout; an error stops the child.
using OutputSink = std::function<Status(std::span<const std::byte>)>;

struct ProcessOptions {
    // Working directory of the child; empty means ours.
    std::filesystem::path cwd;
    // The complete environment of the child as "NAME=value" strings.
    std::vector<std::string> env;
    // Kill the process group when the child runs longer than this.
    std::chrono::milliseconds timeout = std::chrono::hours{1};
    // Bytes written to the child's stdin; without it stdin is /dev/null.
    std::optional<std::string> stdin_data;
    // Streams stdout here when set; otherwise stdout is captured.
    OutputSink on_stdout;
    // Captured stdout larger than this fails the run (never silently cut).
    std::size_t max_stdout = std::size_t{256} << 20;
    // Only the last `max_stderr` bytes of stderr are kept.
    std::size_t max_stderr = std::size_t{64} << 10;
};

struct ProcessResult {
    int exit_code = -1; // the exit status, or -1 when killed by a signal
    int signal = 0;     // the signal that ended the child, 0 if none
    std::string out;    // captured stdout (empty when streamed)
    std::string err;    // the tail of stderr
    [[nodiscard]] bool ok() const { return exit_code == 0; }
};

// Run `argv` (argv[0] looked up in PATH) and wait for it. Fails with Timeout
// when the deadline passes (the group is killed), with the sink's error when
// the sink fails, and with Internal when the process cannot be started. A
// non-zero exit is not an error here: callers read `exit_code`.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options);

// Start `program` as `argv` with exactly `env`, in its own process group,
// with stdin, stdout and stderr on the given descriptors (`stdin_fd` -1 means
// /dev/null), SIGPIPE, SIGINT and SIGTERM at their defaults and no signal
// blocked. The building block of run_process and Child.
Result<pid_t> spawn_in_new_group(const std::filesystem::path& program, const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, const std::filesystem::path& cwd,
                                 int stdin_fd, int stdout_fd, int stderr_fd);

// Make `fd` non-blocking.
void set_nonblocking(int fd);

// write(2) to a pipe whose reader may be gone, without SIGPIPE ending the
// process: SIGPIPE is blocked in this thread for the call and, when the write
// raised it, consumed; the caller sees EPIPE. Nothing process-wide changes.
ssize_t write_no_sigpipe(int fd, const void* data, std::size_t size);

// Kill every child that run_process is running or will start, making those
// calls fail with Interrupted (used when a job must stop now). Thread-safe
// and async-signal-safe.
void abort_all_processes();

// True once abort_all_processes() was called.
bool processes_aborted();

// Longest line tail_lines() keeps whole.
inline constexpr std::size_t k_max_tail_line = 300;

// The last `max_lines` non-empty lines of `text`, joined by "; ", for an
// error message. A line longer than k_max_tail_line bytes keeps its first
// k_max_tail_line bytes (cut at a UTF-8 character boundary) plus
// "... (N bytes)": a server can make git print a line of any length. Redact
// `text` before: a cut could split a secret redact() would then miss.
std::string tail_lines(std::string_view text, std::size_t max_lines = 3);

// Find `name` in the directories of the PATH environment variable.
std::optional<std::filesystem::path> find_in_path(std::string_view name);

} // namespace snapshotter
