#include "snapshotter/util/fs.hpp"

#include "snapshotter/util/hash.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace snapshotter {

std::string errno_text(int error) {
    return std::strerror(error);
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buffer(bytes);
    if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return to_hex(buffer);
}

namespace {

// The directory holding `path`: "." for a bare relative file name.
fs::path directory_of(const fs::path& path) {
    fs::path parent = path.parent_path();
    return parent.empty() ? fs::path(".") : parent;
}

// Rename `temp` to `path` unless `path` exists, as one step: Conflict when
// it does. renameat2(RENAME_NOREPLACE) where the file system has it, else
// link() (which fails with EEXIST atomically too) and unlink().
Status publish_new(const fs::path& temp, const fs::path& path) {
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0)
        return {};
    int err = errno;
    if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
        if (::link(temp.c_str(), path.c_str()) == 0) {
            ::unlink(temp.c_str());
            return {};
        }
        err = errno;
    }
    if (err == EEXIST)
        return fail(Error::conflict(fmt::format("{} already exists", path.string())));
    return fail(Error::storage(fmt::format("publish {}: {}", path.string(), errno_text(err))));
}

// Create the missing directories of `dir`, top down; returns the
// directories that gained an entry: the parent of each one that was missing
// (also when another thread won the race to create it, as its fsync may not
// have happened yet).
Result<std::vector<fs::path>> make_parents(const fs::path& dir) {
    std::vector<fs::path> missing;
    std::error_code ec;
    for (fs::path d = dir; !d.empty() && !fs::exists(d, ec); d = d.parent_path()) {
        missing.push_back(d);
        if (d == d.parent_path())
            break;
    }
    std::vector<fs::path> changed;
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0777) != 0 && errno != EEXIST)
            return fail(
                Error::storage(fmt::format("create directory {}: {}", it->string(), errno_text(errno))));
        changed.push_back(directory_of(*it));
    }
    return changed;
}

// publish_new() inside the directory `dir`.
Status publish_new_at(int dir, const std::string& temp, const std::string& name, const fs::path& display) {
    if (::renameat2(dir, temp.c_str(), dir, name.c_str(), RENAME_NOREPLACE) == 0)
        return {};
    int err = errno;
    if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
        if (::linkat(dir, temp.c_str(), dir, name.c_str(), 0) == 0) {
            ::unlinkat(dir, temp.c_str(), 0);
            return {};
        }
        err = errno;
    }
    if (err == EEXIST)
        return fail(Error::conflict(fmt::format("{} already exists", display.string())));
    return fail(Error::storage(fmt::format("publish {}: {}", display.string(), errno_text(err))));
}

} // namespace

Result<AtomicFile> AtomicFile::create_in(UniqueFd dir, const std::string& name, const fs::path& display) {
    std::string temp_name = std::string(k_temp_prefix) + name + "." + random_hex(6);
    int fd =
        ::openat(dir.get(), temp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    fs::path temp = directory_of(display) / temp_name;
    if (fd < 0)
        return fail(Error::storage(fmt::format("create {}: {}", temp.string(), errno_text(errno))));
    AtomicFile file(display, temp, fd, {});
    file.m_dir = std::move(dir);
    file.m_name = name;
    file.m_temp_name = std::move(temp_name);
    return file;
}

Result<AtomicFile> AtomicFile::create(const fs::path& path) {
    auto changed = make_parents(directory_of(path));
    if (!changed)
        return fail(changed.error());
    fs::path temp =
        directory_of(path) / (std::string(k_temp_prefix) + path.filename().string() + "." + random_hex(6));
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(Error::storage(fmt::format("create {}: {}", temp.string(), errno_text(errno))));
    return AtomicFile(path, temp, fd, std::move(*changed));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_temp(std::move(other.m_temp)), m_fd(other.m_fd),
      m_size(other.m_size), m_dir(std::move(other.m_dir)), m_name(std::move(other.m_name)),
      m_temp_name(std::move(other.m_temp_name)), m_new_entries(std::move(other.m_new_entries)) {
    other.m_fd = -1;
    other.m_temp.clear();
}

AtomicFile::~AtomicFile() {
    discard();
}

void AtomicFile::discard() {
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
    if (!m_temp.empty()) {
        if (m_dir)
            ::unlinkat(m_dir.get(), m_temp_name.c_str(), 0);
        else
            ::unlink(m_temp.c_str());
    }
    m_temp.clear();
}

Status AtomicFile::write(std::string_view data) {
    return write(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Status AtomicFile::write(std::span<const std::byte> data) {
    if (m_fd < 0)
        return fail(Error::internal("write to a closed AtomicFile"));
    const auto* p = reinterpret_cast<const char*>(data.data());
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(m_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(Error::storage(fmt::format("write {}: {}", m_path.string(), errno_text(errno))));
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    m_size += data.size();
    return {};
}

Status AtomicFile::commit(Overwrite overwrite, Durability durability) {
    if (m_fd < 0)
        return fail(Error::internal("commit of a closed AtomicFile"));
    const bool durable = durability == Durability::durable;
    if (durable && ::fsync(m_fd) != 0)
        return fail(Error::storage(fmt::format("fsync {}: {}", m_path.string(), errno_text(errno))));
    if (::close(m_fd) != 0) {
        m_fd = -1;
        return fail(Error::storage(fmt::format("close {}: {}", m_path.string(), errno_text(errno))));
    }
    m_fd = -1;
    if (overwrite == Overwrite::yes) {
        int rc = m_dir ? ::renameat(m_dir.get(), m_temp_name.c_str(), m_dir.get(), m_name.c_str())
                       : ::rename(m_temp.c_str(), m_path.c_str());
        if (rc != 0)
            return fail(Error::storage(fmt::format("rename to {}: {}", m_path.string(), errno_text(errno))));
    } else if (auto s = m_dir ? publish_new_at(m_dir.get(), m_temp_name, m_name, m_path)
                              : publish_new(m_temp, m_path);
               !s) {
        return s;
    }
    m_temp.clear();
    if (!durable)
        return {};
    if (m_dir) {
        if (::fsync(m_dir.get()) != 0 && errno != EINVAL)
            return fail(Error::storage(
                fmt::format("fsync directory {}: {}", directory_of(m_path).string(), errno_text(errno))));
    } else if (auto s = fsync_dir(directory_of(m_path)); !s) {
        return s;
    }
    // The directories create() made must survive too, or the file goes with them.
    for (auto it = m_new_entries.rbegin(); it != m_new_entries.rend(); ++it)
        if (auto s = fsync_dir(*it); !s)
            return s;
    m_new_entries.clear();
    return {};
}

Status write_file_atomic(const fs::path& path, std::string_view data, Overwrite overwrite,
                         Durability durability) {
    auto file = AtomicFile::create(path);
    if (!file)
        return fail(file.error());
    if (auto s = file->write(data); !s)
        return s;
    return file->commit(overwrite, durability);
}

Result<std::string> read_file(const fs::path& path, std::size_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return fail(Error::not_found(fmt::format("{} does not exist", path.string())));
        return fail(Error::storage(fmt::format("open {}: {}", path.string(), errno_text(err))));
    }
    UniqueFd owned(fd);
    return read_fd(fd, path, max_bytes);
}

Result<std::string> read_fd(int fd, const fs::path& path, std::size_t max_bytes) {
    std::string out;
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(Error::storage(fmt::format("read {}: {}", path.string(), errno_text(errno))));
        if (n == 0)
            break;
        out.append(buffer, static_cast<std::size_t>(n));
        if (out.size() > max_bytes)
            return fail(Error::storage(fmt::format("{} is larger than {} bytes", path.string(), max_bytes)));
    }
    return out;
}

Status fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(Error::storage(fmt::format("open directory {}: {}", dir.string(), errno_text(errno))));
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL)
        return fail(Error::storage(fmt::format("fsync directory {}: {}", dir.string(), errno_text(err))));
    return {};
}

Result<bool> is_absent_or_empty_dir(const fs::path& dir) {
    std::error_code ec;
    auto st = fs::symlink_status(dir, ec);
    if (ec || st.type() == fs::file_type::not_found)
        return true;
    if (st.type() != fs::file_type::directory)
        return false;
    auto it = fs::directory_iterator(dir, ec);
    if (ec)
        return fail(Error::storage(fmt::format("read directory {}: {}", dir.string(), ec.message())));
    return it == fs::directory_iterator();
}

Status write_private_file(const fs::path& path, std::string_view text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(Error::internal(fmt::format("cannot create {}: {}", path.string(), errno_text(errno))));
    std::size_t offset = 0;
    while (offset < text.size()) {
        ssize_t n = ::write(fd, text.data() + offset, text.size() - offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            return fail(Error::internal(fmt::format("cannot write {}: {}", path.string(), errno_text(e))));
        }
        offset += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return {};
}

namespace {

fs::path temp_base(const fs::path& parent) {
    if (!parent.empty())
        return parent;
    const char* tmp = std::getenv("TMPDIR");
    return (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
}

} // namespace

Result<TempDir> TempDir::create(std::string_view label, const fs::path& parent) {
    fs::path base = temp_base(parent);
    std::error_code ec;
    fs::create_directories(base, ec);
    std::string pattern = (base / (std::string(k_temp_prefix) + std::string(label) + "-XXXXXX")).string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr)
        return fail(Error::storage(
            fmt::format("create temporary directory in {}: {}", base.string(), errno_text(errno))));
    fs::path path(buffer.data());
    // A sweeper leaves directories younger than its minimum age alone, so the
    // moment between mkdtemp() and the lock is safe.
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (fd >= 0)
            ::close(fd);
        fs::remove_all(path, ec);
        return fail(
            Error::storage(fmt::format("lock temporary directory {}: {}", path.string(), errno_text(err))));
    }
    return TempDir(std::move(path), fd);
}

TempDir::~TempDir() {
    if (!m_path.empty()) {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    if (m_lock_fd >= 0)
        ::close(m_lock_fd);
}

std::size_t sweep_abandoned_temp_dirs(const fs::path& base_in, std::chrono::seconds min_age) {
    const fs::path base = temp_base(base_in);
    DIR* dir = ::opendir(base.c_str());
    if (dir == nullptr)
        return 0;
    const auto now = std::chrono::system_clock::now();
    std::size_t removed = 0;
    while (const dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (!name.starts_with(k_temp_prefix))
            continue;
        const fs::path path = base / std::string(name);
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
            continue;
        const auto mtime = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
        if (now - mtime < min_age)
            continue;
        int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        // Held: a live process owns it. Free: its owner is gone (a kill
        // releases every flock), so nothing can be using it.
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            std::error_code ec;
            fs::remove_all(path, ec);
            if (!ec)
                ++removed;
        }
        ::close(fd);
    }
    ::closedir(dir);
    return removed;
}

Result<FileLock> FileLock::acquire(const fs::path& path) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(Error::storage(fmt::format("open lock {}: {}", path.string(), errno_text(errno))));
    return lock(fd, path);
}

Result<FileLock> FileLock::acquire_directory(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(Error::storage(fmt::format("open directory {}: {}", dir.string(), errno_text(errno))));
    return lock(fd, dir);
}

Result<FileLock> FileLock::acquire_fd(UniqueFd fd, const fs::path& display) {
    return lock(fd.release(), display);
}

Result<FileLock> FileLock::lock(int fd, const fs::path& path) {
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        ::close(fd);
        return fail(Error::storage(fmt::format("lock {}: {}", path.string(), errno_text(err))));
    }
    return FileLock(fd);
}

FileLock::~FileLock() {
    if (m_fd >= 0)
        ::close(m_fd);
}

} // namespace snapshotter
