// File helpers: atomic publication (temp file, fsync, rename), scratch
// directories that clean up after themselves, small whole-file reads.
#pragma once

#include "snapshotter/util/beneath.hpp"
#include "snapshotter/util/error.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter {

namespace fs = std::filesystem;

// Whether publishing may replace an existing file or object.
enum class Overwrite { no, yes };

// How far publishing a file goes before it returns.
enum class Durability {
    // fsync of the file before the rename and of the directory after it (and
    // of the parents of directories created for it): once published, the
    // file survives a power failure.
    durable,
    // The rename alone: atomic for every reader, but a power failure may lose
    // or revert it. For scratch files and for pointers readers treat as hints.
    atomic_only,
};

// A file written under a temporary name beside `path` and published by
// commit() (fsync, then rename, then fsync of the directory). Destroyed
// without commit(), it removes the temporary file: nothing half-written is
// ever visible under `path`.
class AtomicFile {
  public:
    // Create the temporary file; parent directories are created as needed.
    static Result<AtomicFile> create(const fs::path& path);
    // Create the temporary file beside `name` in the open directory `dir`
    // (taken over): creating, renaming, fsyncing and unlinking all go
    // through `dir`, never through a path that a symlink could redirect.
    // `display` (the final file's path) is for messages only.
    static Result<AtomicFile> create_in(UniqueFd dir, const std::string& name, const fs::path& display);
    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&&) = delete;
    ~AtomicFile();

    // Append `data`.
    Status write(std::span<const std::byte> data);
    Status write(std::string_view data);
    // Flush and publish under the final path; with Overwrite::no, fails with
    // Conflict when the path exists (the check and the rename are one step).
    Status commit(Overwrite overwrite, Durability durability = Durability::durable);
    // Bytes written so far.
    [[nodiscard]] std::size_t size() const { return m_size; }

  private:
    AtomicFile(fs::path path, fs::path temp, int fd, std::vector<fs::path> new_entries)
        : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(fd), m_new_entries(std::move(new_entries)) {}
    void discard();

    fs::path m_path;
    fs::path m_temp;
    int m_fd = -1;
    std::size_t m_size = 0;
    // create_in(): the directory, and the final and temporary names in it.
    UniqueFd m_dir;
    std::string m_name;
    std::string m_temp_name;
    // Directories that gained an entry when create() made the missing
    // parents of `m_path`: a durable commit() fsyncs them too.
    std::vector<fs::path> m_new_entries;
};

// Prefix of the temporary files AtomicFile creates (gc finds leftovers by it).
inline constexpr std::string_view k_temp_prefix = ".tmp-snapshotter-";

// Write `data` to `path` atomically.
Status write_file_atomic(const fs::path& path, std::string_view data, Overwrite overwrite,
                         Durability durability = Durability::durable);

// The whole content of `path`, refusing files larger than `max_bytes`.
Result<std::string> read_file(const fs::path& path, std::size_t max_bytes = std::size_t{64} << 20);

// The whole content of the open file `fd` (not closed); `display` names it
// in messages. Refuses files larger than `max_bytes`.
Result<std::string> read_fd(int fd, const fs::path& display, std::size_t max_bytes = std::size_t{64} << 20);

// fsync the directory `dir` so that a rename inside it is durable.
Status fsync_dir(const fs::path& dir);

// True when `dir` does not exist or is an empty directory.
Result<bool> is_absent_or_empty_dir(const fs::path& dir);

// Create `path` with mode 0600 (failing with Internal if it exists) and
// write `text` to it: for key and credential files in a TempDir.
Status write_private_file(const fs::path& path, std::string_view text);

// A directory created under `parent` (or $TMPDIR) with mode 0700 and removed
// recursively on destruction. It holds an flock on itself while it exists,
// so that a directory a killed process left behind (which may hold a
// credential file) is told from one in use: see sweep_abandoned_temp_dirs().
class TempDir {
  public:
    static Result<TempDir> create(std::string_view label, const fs::path& parent = {});
    TempDir(TempDir&& other) noexcept : m_path(std::move(other.m_path)), m_lock_fd(other.m_lock_fd) {
        other.m_path.clear();
        other.m_lock_fd = -1;
    }
    TempDir& operator=(TempDir&&) = delete;
    ~TempDir();
    [[nodiscard]] const fs::path& path() const { return m_path; }

  private:
    TempDir(fs::path path, int lock_fd) : m_path(std::move(path)), m_lock_fd(lock_fd) {}
    fs::path m_path;
    int m_lock_fd = -1;
};

// Remove the TempDirs in `base` (default: $TMPDIR, else /tmp) that a killed
// process left behind: this user's directories named k_temp_prefix*, not
// modified for `min_age`, whose lock no process holds (checked across
// processes and containers sharing the directory, unlike a pid). Returns
// how many it removed; what it cannot inspect or remove is left alone.
std::size_t sweep_abandoned_temp_dirs(const fs::path& base = {},
                                      std::chrono::seconds min_age = std::chrono::seconds{60});

// A short random lowercase hex string of `bytes` random bytes.
std::string random_hex(std::size_t bytes);

// strerror(errno) as a std::string.
std::string errno_text(int error);

} // namespace snapshotter

namespace snapshotter {

// An exclusive advisory lock (flock) on a lock file, held until destruction;
// keeps two processes from updating the same cache entry at once.
class FileLock {
  public:
    // Block until the lock on `path` is held; the file is created if needed.
    static Result<FileLock> acquire(const fs::path& path);
    // Block until the lock on directory `dir` itself is held (no lock file is
    // left behind); the directory is created if needed.
    static Result<FileLock> acquire_directory(const fs::path& dir);
    // Block until the lock on the open file `fd` (taken over) is held;
    // `display` names it in messages.
    static Result<FileLock> acquire_fd(UniqueFd fd, const fs::path& display);
    FileLock(FileLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    FileLock& operator=(FileLock&&) = delete;
    ~FileLock();

  private:
    explicit FileLock(int fd) : m_fd(fd) {}
    static Result<FileLock> lock(int fd, const fs::path& path);
    int m_fd = -1;
};

} // namespace snapshotter
