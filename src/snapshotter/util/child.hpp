// A long-lived child process we talk to in both directions (git upload-pack,
// ssh): argv vector (never a shell), posix_spawn, its own process group,
// stdin and stdout both pipes of ours, stderr captured with a bound, one
// deadline for everything, and the whole group killed on destruction.
#pragma once

#include "snapshotter/util/error.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

namespace snapshotter {

struct ChildOptions {
    // Working directory of the child; empty means ours.
    std::filesystem::path cwd;
    // The complete environment of the child as "NAME=value" strings.
    std::vector<std::string> env;
    // Every read and write fails with Timeout, and the group is killed, once
    // this much time has passed since spawn.
    std::chrono::milliseconds timeout = std::chrono::hours{1};
    // Only the last `max_stderr` bytes of stderr are kept.
    std::size_t max_stderr = std::size_t{64} << 10;
};

// How a child ended.
struct ChildExit {
    int exit_code = -1; // the exit status, or -1 when killed by a signal
    int signal = 0;     // the signal that ended the child, 0 if none
    std::string err;    // the tail of stderr
    [[nodiscard]] bool ok() const { return exit_code == 0; }
};

class Child {
  public:
    // Start `argv` (argv[0] looked up in PATH); fails with Internal when it
    // cannot be started.
    static Result<Child> spawn(const std::vector<std::string>& argv, const ChildOptions& options);
    Child(Child&& other) noexcept;
    Child& operator=(Child&&) = delete;
    // Kill the process group if still running and reap the child.
    ~Child();

    // Write all of `data` to the child's stdin, draining stderr meanwhile;
    // fails with Git when the child closed its stdin, Timeout at the deadline.
    Status write(std::span<const std::byte> data);
    // Read up to `buffer.size()` bytes of the child's stdout; 0 means EOF.
    // Fails with Timeout at the deadline.
    Result<std::size_t> read(std::span<std::byte> buffer);
    // Close the child's stdin (it sees EOF).
    void close_stdin();
    // Close our ends, wait for the child until the deadline (then kill it)
    // and report how it ended.
    Result<ChildExit> wait();
    // The stderr captured so far (its last `max_stderr` bytes).
    [[nodiscard]] std::string stderr_tail() const;
    // The program name, for messages.
    [[nodiscard]] const std::string& name() const { return m_name; }

  private:
    Child() = default;
    // Poll stderr and `fd` for `events` until `fd` is ready; false on timeout.
    Result<bool> wait_ready(int fd, short events);
    void drain_stderr();
    void kill_group();
    void close_all();

    std::string m_name;
    pid_t m_pid = -1;
    int m_stdin = -1;
    int m_stdout = -1;
    int m_stderr = -1;
    bool m_reaped = false;
    std::chrono::steady_clock::time_point m_deadline;
    std::chrono::milliseconds m_timeout{0};
    std::size_t m_max_stderr = 0;
    std::string m_err;
};

} // namespace snapshotter
