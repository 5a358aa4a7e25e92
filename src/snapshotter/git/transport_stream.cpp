// Stateful transports: one full-duplex byte stream (a child's pipes or a TCP
// socket) carries the advertisement and every request and response in turn.
#include "snapshotter/git/environment.hpp"
#include "snapshotter/git/failure.hpp"
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/child.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace snapshotter::git {
namespace {

constexpr std::size_t k_read_chunk = std::size_t{64} * 1024;

// A full-duplex byte stream with a deadline.
class ByteStream {
  public:
    virtual ~ByteStream() = default;
    virtual Status write(std::span<const std::byte> data) = 0;
    // Up to `buffer.size()` bytes; 0 at end of stream.
    virtual Result<std::size_t> read(std::span<std::byte> buffer) = 0;
    // Tell the other side we will send nothing more, then check how it ended.
    virtual Status finish() = 0;
    // Whatever the other side said on its error channel, redacted (may be empty).
    virtual std::string diagnostics() = 0;
};

class ChildStream final : public ByteStream {
  public:
    explicit ChildStream(Child child, std::optional<TempDir> private_dir = std::nullopt)
        : m_private_dir(std::move(private_dir)), m_child(std::move(child)) {}
    Status write(std::span<const std::byte> data) override { return m_child.write(data); }
    Result<std::size_t> read(std::span<std::byte> buffer) override { return m_child.read(buffer); }
    Status finish() override {
        m_child.close_stdin();
        auto exit = m_child.wait();
        if (!exit)
            return fail(exit.error());
        if (!exit->ok()) {
            // Where a transport child's failure is judged (git/failure.hpp).
            std::string detail = tail_lines(redact(exit->err));
            return fail(Error::git(fmt::format("{} exited with {}: {}", m_child.name(),
                                               exit->signal != 0 ? fmt::format("signal {}", exit->signal)
                                                                 : std::to_string(exit->exit_code),
                                               detail),
                                   classify_git_stderr(detail)));
        }
        return {};
    }
    std::string diagnostics() override { return tail_lines(redact(m_child.stderr_tail())); }

  private:
    std::optional<TempDir> m_private_dir; // key files; removed after the child is gone
    Child m_child;
};

class SocketStream final : public ByteStream {
  public:
    SocketStream(int fd, std::chrono::steady_clock::time_point deadline, std::string name)
        : m_fd(fd), m_deadline(deadline), m_name(std::move(name)) {}
    ~SocketStream() override {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    SocketStream(const SocketStream&) = delete;
    SocketStream& operator=(const SocketStream&) = delete;

    Status write(std::span<const std::byte> data) override {
        std::size_t offset = 0;
        while (offset < data.size()) {
            if (auto s = wait_ready(POLLOUT); !s)
                return s;
            ssize_t n = ::send(m_fd, data.data() + offset, data.size() - offset, MSG_NOSIGNAL);
            if (n > 0)
                offset += static_cast<std::size_t>(n);
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                return fail(Error::git(fmt::format("send to {}: {}", m_name, errno_text(errno)),
                                       cause_of_errno(errno)));
        }
        return {};
    }
    Result<std::size_t> read(std::span<std::byte> buffer) override {
        while (true) {
            ssize_t n = ::recv(m_fd, buffer.data(), buffer.size(), 0);
            if (n > 0)
                acknowledge_now();
            if (n >= 0)
                return static_cast<std::size_t>(n);
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return fail(Error::git(fmt::format("receive from {}: {}", m_name, errno_text(errno)),
                                       cause_of_errno(errno)));
            if (auto s = wait_ready(POLLIN); !s)
                return fail(s.error());
        }
    }
    Status finish() override {
        ::shutdown(m_fd, SHUT_WR);
        return {};
    }
    std::string diagnostics() override { return {}; }

    Status wait_ready(short events) {
        while (true) {
            auto now = std::chrono::steady_clock::now();
            if (processes_aborted())
                return fail(Error::interrupted(fmt::format("{}: stopped, the job is stopping", m_name)));
            if (now >= m_deadline)
                return fail(Error::timeout(fmt::format("{} did not answer in time", m_name)));
            pollfd fd{m_fd, events, 0};
            auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - now).count();
            int ready = ::poll(&fd, 1, static_cast<int>(std::min<long long>(wait_ms + 1, 200)));
            if (ready < 0 && errno != EINTR)
                return fail(Error::internal(fmt::format("poll: {}", errno_text(errno))));
            if (ready > 0)
                return {};
        }
    }

  private:
    // Acknowledge what arrived at once rather than up to 40 ms later. In a
    // request-response exchange Linux delays ACKs; `upload-pack` writes its
    // answers in several small writes with no TCP_NODELAY, and Nagle on its
    // side holds each write until the one before is acknowledged: a 40 ms
    // stall in an ls-refs of more than one write (271 refs: 48 ms -> 5 ms)
    // and between "packfile" and the pack (strace of a cold snapshot: 40.6
    // ms). Linux leaves quick-ack mode on its own, so it is asked for after
    // every read; best effort (not every stream socket has it).
    void acknowledge_now() const {
#ifdef TCP_QUICKACK
        int on = 1;
        (void)::setsockopt(m_fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#endif
    }

    int m_fd;
    std::chrono::steady_clock::time_point m_deadline;
    std::string m_name;
};

// The protocol over a ByteStream: requests are written, responses read until
// the handler says they are complete.
class StreamConnection final : public Connection {
  public:
    StreamConnection(std::unique_ptr<ByteStream> stream, std::string description)
        : m_stream(std::move(stream)), m_description(std::move(description)) {}

    Status read_advertisement(const ResponseHandler& handler) override { return read_response(handler); }

    Status request(std::string_view body, const ResponseHandler& handler) override {
        if (m_closed)
            return fail(Error::internal("request on a closed connection"));
        if (auto s = m_stream->write(std::as_bytes(std::span<const char>(body.data(), body.size()))); !s)
            return fail(with_diagnostics(s.error()));
        return read_response(handler);
    }

    Status close() override {
        if (m_closed)
            return {};
        m_closed = true;
        // A flush where a command would start ends a v2 session politely.
        std::string flush;
        append_flush(flush);
        (void)m_stream->write(std::as_bytes(std::span<const char>(flush.data(), flush.size())));
        if (auto s = m_stream->finish(); !s)
            return fail(s.error().with_context(m_description));
        return {};
    }

    [[nodiscard]] std::string describe() const override { return m_description; }

  private:
    Status read_response(const ResponseHandler& handler) {
        std::array<std::byte, k_read_chunk> buffer{};
        while (true) {
            auto n = m_stream->read(buffer);
            if (!n)
                return fail(with_diagnostics(n.error()));
            if (*n == 0) {
                // The server hung up mid-response: its stderr says why.
                m_closed = true;
                auto finished = m_stream->finish();
                std::string why = m_stream->diagnostics();
                if (!finished)
                    return fail(finished.error().with_context(m_description));
                return fail(Error::git(fmt::format("{}: the server closed the connection early{}{}",
                                                   m_description, why.empty() ? "" : ": ", why),
                                       strongest(Cause::reset, classify_git_stderr(why))));
            }
            auto done = handler(std::span<const std::byte>(buffer.data(), *n));
            if (!done)
                return fail(done.error());
            if (*done)
                return {};
        }
    }

    Error with_diagnostics(const Error& e) {
        std::string why = m_stream->diagnostics();
        Error out = e.with_context(m_description);
        if (!why.empty()) {
            out.message += fmt::format(" ({})", why);
            out.cause = strongest(out.cause, classify_git_stderr(why));
        }
        return out;
    }

    std::unique_ptr<ByteStream> m_stream;
    std::string m_description;
    bool m_closed = false;
};

// The environment of a transport child (environment.hpp), asking for protocol v2.
std::vector<std::string> child_environment(Home home) {
    auto env = isolated_environment(home);
    env.emplace_back("GIT_PROTOCOL=version=2");
    return env;
}

} // namespace

Result<std::unique_ptr<Connection>> connect_local(const GitUrl& url, const TransportOptions& options) {
    // Only the repository's own config is read (no system or global config),
    // so uploadpack.packObjectsHook, honoured only from protected config, cannot be set.
    std::vector<std::string> argv{"git", "-c", "safe.directory=*", "upload-pack", "--", url.path};
    auto child = Child::spawn(argv, {.env = child_environment(Home::none), .timeout = options.timeout});
    if (!child)
        return fail(child.error());
    return std::make_unique<StreamConnection>(std::make_unique<ChildStream>(std::move(*child)),
                                              fmt::format("git upload-pack {}", url.path));
}

Result<std::vector<std::string>> ssh_arguments(const SshSettings& settings, const fs::path& dir) {
    std::vector<std::string> args;
    if (!settings.private_key.empty()) {
        fs::path key = dir / "id";
        std::string text = settings.private_key;
        if (!text.ends_with('\n'))
            text += '\n'; // ssh refuses a key without its final newline
        if (auto s = write_private_file(key, text); !s)
            return fail(s.error());
        args.insert(args.end(), {"-i", key.string(), "-o", "IdentitiesOnly=yes"});
    }
    // ssh reads and (accept_new) writes only this file, never the user's
    // ~/.ssh/known_hosts: what it learns lasts one connection.
    fs::path known = dir / "known_hosts";
    if (auto s = write_private_file(known, settings.known_hosts); !s)
        return fail(s.error());
    args.insert(args.end(), {"-o", "UserKnownHostsFile=" + known.string()});
    if (!settings.known_hosts.empty())
        args.insert(args.end(), {"-o", "GlobalKnownHostsFile=/dev/null"});
    switch (settings.host_key_policy) {
    case HostKeyPolicy::strict:
        args.insert(args.end(), {"-o", "StrictHostKeyChecking=yes"});
        break;
    case HostKeyPolicy::accept_new:
        args.insert(args.end(), {"-o", "StrictHostKeyChecking=accept-new"});
        break;
    case HostKeyPolicy::insecure:
        args.insert(args.end(), {"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"});
        break;
    }
    return args;
}

Result<std::unique_ptr<Connection>> connect_ssh(const GitUrl& url, const TransportOptions& options) {
    if (url.host.starts_with('-') || url.user.starts_with('-'))
        return fail(Error::payload("ssh host or user must not start with '-'"));
    if (!options.ssh.private_key.empty())
        register_secret(options.ssh.private_key);
    auto private_dir = TempDir::create("ssh");
    if (!private_dir)
        return fail(private_dir.error());
    auto implied = ssh_arguments(options.ssh, private_dir->path());
    if (!implied)
        return fail(implied.error());
    std::vector<std::string> argv{"ssh", "-o", "BatchMode=yes", "-o", "SendEnv=GIT_PROTOCOL"};
    argv.insert(argv.end(), implied->begin(), implied->end());
    argv.insert(argv.end(), options.ssh_options.begin(), options.ssh_options.end());
    if (!url.port.empty()) {
        argv.emplace_back("-p");
        argv.push_back(url.port);
    }
    std::string user = url.user.empty() ? options.username : url.user;
    argv.emplace_back("--");
    std::string host = bare_host(url);
    argv.push_back(user.empty() ? host : user + "@" + host);
    argv.push_back("git-upload-pack " + shell_single_quote(url.path));
    auto child = Child::spawn(argv, {.env = child_environment(Home::user), .timeout = options.timeout});
    if (!child)
        return fail(child.error());
    return std::make_unique<StreamConnection>(
        std::make_unique<ChildStream>(std::move(*child), std::optional<TempDir>(std::move(*private_dir))),
        fmt::format("ssh {}:{}", url.host, url.path));
}

Result<std::unique_ptr<Connection>> connect_daemon(const GitUrl& url, const TransportOptions& options) {
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::string port = url.port.empty() ? "9418" : url.port;
    std::string name = fmt::format("git://{}:{}{}", url.host, port, url.path);
    std::string host = bare_host(url);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return fail(Error::git(fmt::format("{}: cannot resolve host: {}", name, ::gai_strerror(rc))));
    std::string last_error = "no address";
    int last_errno = 0;
    int fd = -1;
    for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            last_error = errno_text(last_errno);
            continue;
        }
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(wait_ms.count(), 0))) > 0 ? 0 : -1;
            int so_error = rc == 0 ? 0 : ETIMEDOUT;
            socklen_t len = sizeof so_error;
            if (rc == 0)
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
            rc = so_error == 0 ? 0 : -1;
            errno = so_error;
        }
        if (rc != 0) {
            last_errno = errno;
            last_error = errno_text(last_errno);
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd < 0)
        return fail(
            Error::git(fmt::format("{}: cannot connect: {}", name, last_error), cause_of_errno(last_errno)));

    auto stream = std::make_unique<SocketStream>(fd, deadline, name);
    // git-upload-pack <path>\0host=<host>[:port]\0\0version=2\0 (gitprotocol-pack, gitprotocol-v2).
    std::string host_param = url.port.empty() ? url.host : url.host + ":" + url.port;
    std::string line = "git-upload-pack " + url.path;
    line += '\0';
    line += "host=" + host_param;
    line += '\0';
    line += '\0';
    line += "version=2";
    line += '\0';
    std::string wire;
    if (auto s = append_pkt(wire, line); !s)
        return fail(s.error());
    if (auto s = stream->write(std::as_bytes(std::span<const char>(wire.data(), wire.size()))); !s)
        return fail(s.error());
    return std::make_unique<StreamConnection>(std::move(stream), name);
}

} // namespace snapshotter::git
