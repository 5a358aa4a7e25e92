// Opening files below a directory without ever following a symbolic link:
// what the file:// backend uses so that a symlink planted inside the storage
// tree (a `bundles/` entry, a `manifests/` directory) cannot send a read, a
// write, a rename or a delete outside it. openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) where the kernel has it (Linux 5.6+), else openat()
// with O_NOFOLLOW one component at a time from the directory's descriptor.
#pragma once

#include <expected>
#include <string_view>
#include <sys/types.h>

namespace snapshotter {

// A file descriptor closed on destruction.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();
    [[nodiscard]] int get() const { return m_fd; }
    // Give up ownership; the caller closes the descriptor.
    int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    explicit operator bool() const { return m_fd >= 0; }

  private:
    int m_fd = -1;
};

// The errno of a failed open; ELOOP whenever a symbolic link is in the way.
using FdResult = std::expected<UniqueFd, int>;

// Open `rel` ('/'-separated, relative, no "." or ".." segments) below the
// directory `dir_fd` with open(2) `flags` (O_CLOEXEC is added), refusing
// with ELOOP to pass through or open a symbolic link.
FdResult open_beneath(int dir_fd, std::string_view rel, int flags, mode_t mode = 0);

// Open the directory `rel` below `dir_fd` as open_beneath() does, creating
// the missing ones (mode 0777 before umask); with `durable`, the parent of
// each directory it creates is fsync'd so that the new entry survives a
// power failure. An empty `rel` is `dir_fd` itself (duplicated).
FdResult make_dirs_beneath(int dir_fd, std::string_view rel, bool durable);

// For tests: use only the per-component fallback, as on a kernel without
// openat2 (true), or openat2 where it exists (false, the default).
void force_openat2_fallback(bool fallback);

} // namespace snapshotter
