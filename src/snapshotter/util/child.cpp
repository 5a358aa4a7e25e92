#include "snapshotter/util/child.hpp"

#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/process.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace snapshotter {
namespace {

void close_fd(int& fd) {
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

} // namespace

Result<Child> Child::spawn(const std::vector<std::string>& argv, const ChildOptions& options) {
    if (argv.empty())
        return fail(Error::internal("Child::spawn: empty argv"));
    auto program = find_in_path(argv[0]);
    if (!program)
        return fail(Error::internal(fmt::format("{} not found in PATH", argv[0])));

    // [0] is our read end for stdout/stderr, our write end for stdin.
    int in_fds[2] = {-1, -1}, out_fds[2] = {-1, -1}, err_fds[2] = {-1, -1};
    auto close_pipes = [&] {
        for (int* p : {in_fds, out_fds, err_fds}) {
            close_fd(p[0]);
            close_fd(p[1]);
        }
    };
    if (::pipe2(in_fds, O_CLOEXEC) != 0 || ::pipe2(out_fds, O_CLOEXEC) != 0 ||
        ::pipe2(err_fds, O_CLOEXEC) != 0) {
        int e = errno;
        close_pipes();
        return fail(Error::internal(fmt::format("pipe: {}", errno_text(e))));
    }

    auto spawned =
        spawn_in_new_group(*program, argv, options.env, options.cwd, in_fds[0], out_fds[1], err_fds[1]);
    if (!spawned) {
        close_pipes();
        return fail(spawned.error());
    }
    const pid_t pid = *spawned;
    close_fd(in_fds[0]);
    close_fd(out_fds[1]);
    close_fd(err_fds[1]);

    Child child;
    child.m_name = argv[0];
    child.m_pid = pid;
    child.m_stdin = in_fds[1];
    child.m_stdout = out_fds[0];
    child.m_stderr = err_fds[0];
    child.m_timeout = options.timeout;
    child.m_deadline = std::chrono::steady_clock::now() + options.timeout;
    child.m_max_stderr = options.max_stderr;
    set_nonblocking(child.m_stdin);
    set_nonblocking(child.m_stdout);
    set_nonblocking(child.m_stderr);
    return child;
}

Child::Child(Child&& other) noexcept
    : m_name(std::move(other.m_name)), m_pid(other.m_pid), m_stdin(other.m_stdin), m_stdout(other.m_stdout),
      m_stderr(other.m_stderr), m_reaped(other.m_reaped), m_deadline(other.m_deadline),
      m_timeout(other.m_timeout), m_max_stderr(other.m_max_stderr), m_err(std::move(other.m_err)) {
    other.m_pid = -1;
    other.m_stdin = other.m_stdout = other.m_stderr = -1;
    other.m_reaped = true;
}

Child::~Child() {
    close_all();
    if (m_pid > 0 && !m_reaped) {
        kill_group();
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

void Child::close_all() {
    close_fd(m_stdin);
    close_fd(m_stdout);
    close_fd(m_stderr);
}

void Child::kill_group() {
    if (m_pid > 0)
        ::kill(-m_pid, SIGKILL);
}

void Child::drain_stderr() {
    std::array<char, 4096> buffer{};
    while (m_stderr >= 0) {
        ssize_t n = ::read(m_stderr, buffer.data(), buffer.size());
        if (n > 0) {
            m_err.append(buffer.data(), static_cast<std::size_t>(n));
            if (m_err.size() > m_max_stderr * 2)
                m_err.erase(0, m_err.size() - m_max_stderr);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close_fd(m_stderr);
        } else {
            break;
        }
    }
}

std::string Child::stderr_tail() const {
    if (m_err.size() <= m_max_stderr)
        return m_err;
    return m_err.substr(m_err.size() - m_max_stderr);
}

Result<bool> Child::wait_ready(int fd, short events) {
    while (true) {
        auto now = std::chrono::steady_clock::now();
        if (processes_aborted()) {
            kill_group();
            return fail(Error::interrupted(fmt::format("{} stopped: the job is stopping", m_name)));
        }
        if (now >= m_deadline) {
            kill_group();
            return fail(Error::timeout(
                fmt::format("{} did not finish within {} s", m_name,
                            std::chrono::duration_cast<std::chrono::seconds>(m_timeout).count())));
        }
        std::array<pollfd, 2> fds{};
        nfds_t count = 0;
        fds[count++] = {fd, events, 0};
        if (m_stderr >= 0)
            fds[count++] = {m_stderr, POLLIN, 0};
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - now).count();
        int ready = ::poll(fds.data(), count, static_cast<int>(std::min<long long>(wait_ms + 1, 200)));
        if (ready < 0 && errno != EINTR)
            return fail(Error::internal(fmt::format("poll: {}", errno_text(errno))));
        if (ready <= 0)
            continue;
        if (count > 1 && fds[1].revents != 0)
            drain_stderr();
        if (fds[0].revents != 0)
            return true;
    }
}

Status Child::write(std::span<const std::byte> data) {
    std::size_t offset = 0;
    while (offset < data.size()) {
        if (m_stdin < 0)
            return fail(Error::git(fmt::format("{} closed its input", m_name)));
        auto ready = wait_ready(m_stdin, POLLOUT);
        if (!ready)
            return fail(ready.error());
        ssize_t n = write_no_sigpipe(m_stdin, data.data() + offset, data.size() - offset);
        if (n > 0) {
            offset += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            close_fd(m_stdin);
            return fail(Error::git(fmt::format("{} closed its input: {}", m_name, errno_text(errno))));
        }
    }
    return {};
}

Result<std::size_t> Child::read(std::span<std::byte> buffer) {
    while (m_stdout >= 0) {
        ssize_t n = ::read(m_stdout, buffer.data(), buffer.size());
        if (n > 0)
            return static_cast<std::size_t>(n);
        if (n == 0) {
            close_fd(m_stdout);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return fail(Error::internal(fmt::format("read from {}: {}", m_name, errno_text(errno))));
        auto ready = wait_ready(m_stdout, POLLIN);
        if (!ready)
            return fail(ready.error());
    }
    return std::size_t{0};
}

void Child::close_stdin() {
    close_fd(m_stdin);
}

Result<ChildExit> Child::wait() {
    close_fd(m_stdin);
    close_fd(m_stdout);
    ChildExit out;
    if (m_pid <= 0 || m_reaped)
        return fail(Error::internal("Child::wait on a child that is gone"));
    int status = 0;
    // Poll for the exit so that the deadline still holds; keep draining stderr.
    while (true) {
        pid_t r = ::waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid)
            break;
        if (r < 0 && errno != EINTR)
            return fail(Error::internal(fmt::format("waitpid: {}", errno_text(errno))));
        if (std::chrono::steady_clock::now() >= m_deadline) {
            kill_group();
            while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
            }
            m_reaped = true;
            return fail(Error::timeout(fmt::format("{} did not exit in time", m_name)));
        }
        if (m_stderr >= 0) {
            pollfd fd{m_stderr, POLLIN, 0};
            if (::poll(&fd, 1, 20) > 0)
                drain_stderr();
        } else {
            ::usleep(10000);
        }
    }
    m_reaped = true;
    drain_stderr();
    close_fd(m_stderr);
    // Descendants that outlived the child go too.
    ::kill(-m_pid, SIGKILL);
    if (WIFEXITED(status))
        out.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        out.signal = WTERMSIG(status);
    out.err = stderr_tail();
    return out;
}

} // namespace snapshotter
