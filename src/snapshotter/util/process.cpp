#include "snapshotter/util/process.hpp"

#include "snapshotter/util/fs.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace snapshotter {
namespace {

struct Pipe {
    int read = -1;
    int write = -1;
    ~Pipe() { close_both(); }
    void close_read() {
        if (read >= 0)
            ::close(read);
        read = -1;
    }
    void close_write() {
        if (write >= 0)
            ::close(write);
        write = -1;
    }
    void close_both() {
        close_read();
        close_write();
    }
};

Status make_pipe(Pipe& p) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return fail(Error::internal(fmt::format("pipe: {}", errno_text(errno))));
    p.read = fds[0];
    p.write = fds[1];
    return {};
}

// Reap `pid`, blocking; returns the raw wait status.
int reap(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

std::atomic<bool> g_abort{false};

} // namespace

void set_nonblocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// write() to a pipe whose reader may be gone, without SIGPIPE ending the
// process: the signal is blocked in this thread for the call and, when the
// write raised it, consumed. The caller sees EPIPE instead.
ssize_t write_no_sigpipe(int fd, const void* data, std::size_t size) {
    sigset_t pipe_set, old_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    ssize_t n = ::write(fd, data, size);
    int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        timespec zero{};
        while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    errno = err;
    return n;
}

void abort_all_processes() {
    g_abort.store(true);
}
bool processes_aborted() {
    return g_abort.load();
}

std::optional<std::filesystem::path> find_in_path(std::string_view name) {
    if (name.find('/') != std::string_view::npos)
        return std::filesystem::path(name);
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!dirs.empty()) {
        auto colon = dirs.find(':');
        std::string_view dir = dirs.substr(0, colon);
        dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
        if (dir.empty())
            continue;
        std::filesystem::path candidate = std::filesystem::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return std::nullopt;
}

std::string tail_lines(std::string_view text, std::size_t max_lines) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto nl = text.find_first_of("\r\n");
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        if (!line.empty())
            lines.push_back(line);
    }
    std::string out;
    std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
    for (std::size_t i = first; i < lines.size(); ++i) {
        if (!out.empty())
            out += "; ";
        std::string_view line = lines[i];
        if (line.size() <= k_max_tail_line) {
            out += line;
            continue;
        }
        // Cut at a character boundary: never inside a UTF-8 sequence.
        std::size_t cut = k_max_tail_line;
        while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xc0) == 0x80)
            --cut;
        out += line.substr(0, cut);
        out += fmt::format("... ({} bytes)", line.size());
    }
    return out;
}

Result<pid_t> spawn_in_new_group(const std::filesystem::path& program, const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, const std::filesystem::path& cwd,
                                 int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_fd >= 0)
        posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    else
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
    if (!cwd.empty())
        posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t default_signals;
    sigemptyset(&default_signals);
    sigaddset(&default_signals, SIGPIPE);
    sigaddset(&default_signals, SIGINT);
    sigaddset(&default_signals, SIGTERM);
    sigset_t no_signals;
    sigemptyset(&no_signals);
    posix_spawnattr_setsigdefault(&attr, &default_signals);
    posix_spawnattr_setsigmask(&attr, &no_signals);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> c_argv;
    for (const auto& a : argv)
        c_argv.push_back(const_cast<char*>(a.c_str()));
    c_argv.push_back(nullptr);
    std::vector<char*> c_env;
    for (const auto& e : env)
        c_env.push_back(const_cast<char*>(e.c_str()));
    c_env.push_back(nullptr);

    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, c_argv.data(), c_env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return fail(
            Error::internal(fmt::format("cannot start {}: {}", argv.empty() ? "" : argv[0], errno_text(rc))));
    return pid;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    if (argv.empty())
        return fail(Error::internal("run_process: empty argv"));
    if (g_abort.load())
        return fail(Error::interrupted(fmt::format("{} not started: the job is stopping", argv[0])));
    auto program = find_in_path(argv[0]);
    if (!program)
        return fail(Error::internal(fmt::format("{} not found in PATH", argv[0])));

    Pipe out_pipe, err_pipe, in_pipe;
    if (auto s = make_pipe(out_pipe); !s)
        return fail(s.error());
    if (auto s = make_pipe(err_pipe); !s)
        return fail(s.error());
    if (options.stdin_data)
        if (auto s = make_pipe(in_pipe); !s)
            return fail(s.error());

    auto spawned = spawn_in_new_group(*program, argv, options.env, options.cwd,
                                      options.stdin_data ? in_pipe.read : -1, out_pipe.write, err_pipe.write);
    if (!spawned)
        return fail(spawned.error());
    const pid_t pid = *spawned;

    out_pipe.close_write();
    err_pipe.close_write();
    in_pipe.close_read();
    set_nonblocking(out_pipe.read);
    set_nonblocking(err_pipe.read);
    if (in_pipe.write >= 0)
        set_nonblocking(in_pipe.write);

    ProcessResult result;
    std::optional<Error> failure;
    std::size_t stdin_offset = 0;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::array<char, 65536> buffer{};
    if (options.stdin_data && options.stdin_data->empty())
        in_pipe.close_write();

    auto kill_group = [&] { ::kill(-pid, SIGKILL); };

    while (out_pipe.read >= 0 || err_pipe.read >= 0) {
        auto now = std::chrono::steady_clock::now();
        if (g_abort.load()) {
            failure = Error::interrupted(fmt::format("{} stopped: the job is stopping", argv[0]));
            kill_group();
            break;
        }
        if (now >= deadline) {
            failure = Error::timeout(
                fmt::format("{} did not finish within {} s", argv[0],
                            std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count()));
            kill_group();
            break;
        }
        std::array<pollfd, 3> fds{};
        nfds_t count = 0;
        int out_index = -1, err_index = -1, in_index = -1;
        if (out_pipe.read >= 0) {
            out_index = static_cast<int>(count);
            fds[count++] = {out_pipe.read, POLLIN, 0};
        }
        if (err_pipe.read >= 0) {
            err_index = static_cast<int>(count);
            fds[count++] = {err_pipe.read, POLLIN, 0};
        }
        if (in_pipe.write >= 0) {
            in_index = static_cast<int>(count);
            fds[count++] = {in_pipe.write, POLLOUT, 0};
        }
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        int ready = ::poll(fds.data(), count, static_cast<int>(std::min<long long>(wait_ms + 1, 200)));
        if (ready < 0 && errno != EINTR) {
            failure = Error::internal(fmt::format("poll: {}", errno_text(errno)));
            kill_group();
            break;
        }
        if (ready <= 0)
            continue;
        if (in_index >= 0 && (fds[in_index].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const std::string& data = *options.stdin_data;
            ssize_t n =
                write_no_sigpipe(in_pipe.write, data.data() + stdin_offset, data.size() - stdin_offset);
            if (n > 0)
                stdin_offset += static_cast<std::size_t>(n);
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_offset == data.size())
                in_pipe.close_write();
        }
        if (err_index >= 0 && (fds[err_index].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::read(err_pipe.read, buffer.data(), buffer.size());
            if (n > 0) {
                result.err.append(buffer.data(), static_cast<std::size_t>(n));
                if (result.err.size() > options.max_stderr * 2)
                    result.err.erase(0, result.err.size() - options.max_stderr);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                err_pipe.close_read();
            }
        }
        if (out_index >= 0 && (fds[out_index].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::read(out_pipe.read, buffer.data(), buffer.size());
            if (n > 0) {
                auto chunk = std::as_bytes(std::span<const char>(buffer.data(), static_cast<std::size_t>(n)));
                if (options.on_stdout) {
                    if (auto s = options.on_stdout(chunk); !s) {
                        failure = s.error();
                        kill_group();
                        break;
                    }
                } else {
                    result.out.append(buffer.data(), static_cast<std::size_t>(n));
                    if (result.out.size() > options.max_stdout) {
                        failure = Error::internal(
                            fmt::format("{} printed more than {} bytes", argv[0], options.max_stdout));
                        kill_group();
                        break;
                    }
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                out_pipe.close_read();
            }
        }
    }
    in_pipe.close_write();
    out_pipe.close_read();
    err_pipe.close_read();
    int status = reap(pid);
    // Descendants that outlived the child (a helper git spawned) go too.
    ::kill(-pid, SIGKILL);
    if (result.err.size() > options.max_stderr)
        result.err.erase(0, result.err.size() - options.max_stderr);
    if (failure)
        return fail(*failure);
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    return result;
}

} // namespace snapshotter
