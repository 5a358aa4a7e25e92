#include "snapshotter/util/beneath.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace snapshotter {
namespace {

// Cleared once the kernel says ENOSYS (or a test forces the fallback).
std::atomic<bool> g_have_openat2{true};

#ifdef SYS_openat2
int sys_openat2(int dir_fd, const char* path, int flags, mode_t mode) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long rc;
    do {
        rc = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
    } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
    return static_cast<int>(rc);
}
#endif

// openat() of one segment, never following it; a symlink is ELOOP even
// where O_DIRECTORY would make the kernel say ENOTDIR.
int open_component(int dir_fd, const std::string& name, int flags, mode_t mode) {
    int fd;
    do {
        fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ENOTDIR) {
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            errno = ELOOP;
        else
            errno = ENOTDIR;
    }
    return fd;
}

// The per-component walk: every directory on the way opened with O_NOFOLLOW.
FdResult open_by_components(int dir_fd, std::string_view rel, int flags, mode_t mode) {
    UniqueFd current;
    int at = dir_fd;
    for (;;) {
        auto slash = rel.find('/');
        std::string name(rel.substr(0, slash));
        if (name.empty() || name == "." || name == "..")
            return std::unexpected(EINVAL);
        if (slash == std::string_view::npos) {
            int fd = open_component(at, name, flags, mode);
            if (fd < 0)
                return std::unexpected(errno);
            UniqueFd file(fd);
            // O_PATH | O_NOFOLLOW opens a symlink itself: refuse it as openat2 does.
            struct stat st {};
            if ((flags & O_PATH) != 0 && ::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
                return std::unexpected(ELOOP);
            return file;
        }
        int fd = open_component(at, name, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
            return std::unexpected(errno);
        current = UniqueFd(fd);
        at = current.get();
        rel = rel.substr(slash + 1);
    }
}

} // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (m_fd >= 0)
        ::close(m_fd);
}

void force_openat2_fallback(bool fallback) {
    g_have_openat2 = !fallback;
}

FdResult open_beneath(int dir_fd, std::string_view rel, int flags, mode_t mode) {
    if (rel.empty() || rel.front() == '/')
        return std::unexpected(EINVAL);
#ifdef SYS_openat2
    if (g_have_openat2) {
        const std::string path(rel);
        int fd = sys_openat2(dir_fd, path.c_str(), flags | O_CLOEXEC, mode);
        if (fd >= 0)
            return UniqueFd(fd);
        int err = errno;
        // Seccomp filters of some container runtimes answer EPERM for a
        // syscall they do not know: treat it as absent too.
        if (err != ENOSYS && err != EPERM)
            return std::unexpected(err == EXDEV ? ELOOP : err);
        if (err == ENOSYS)
            g_have_openat2 = false;
    }
#endif
    return open_by_components(dir_fd, rel, flags, mode);
}

FdResult make_dirs_beneath(int dir_fd, std::string_view rel, bool durable) {
    int copy = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return std::unexpected(errno);
    UniqueFd current(copy);
    while (!rel.empty()) {
        auto slash = rel.find('/');
        std::string name(rel.substr(0, slash));
        if (name.empty() || name == "." || name == "..")
            return std::unexpected(EINVAL);
        int fd = open_component(current.get(), name, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0 && errno == ENOENT) {
            if (::mkdirat(current.get(), name.c_str(), 0777) != 0 && errno != EEXIST)
                return std::unexpected(errno);
            if (durable && ::fsync(current.get()) != 0 && errno != EINVAL)
                return std::unexpected(errno);
            fd = open_component(current.get(), name, O_RDONLY | O_DIRECTORY, 0);
        }
        if (fd < 0)
            return std::unexpected(errno);
        current = UniqueFd(fd);
        rel = slash == std::string_view::npos ? std::string_view{} : rel.substr(slash + 1);
    }
    return current;
}

} // namespace snapshotter
