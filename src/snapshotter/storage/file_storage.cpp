// file:// backend: one file per key below a root directory, published
// atomically (temp file, fsync, rename or link).
#include "snapshotter/storage/backends.hpp"
#include "snapshotter/util/beneath.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <functional>
#include <sys/stat.h>
#include <unistd.h>

namespace snapshotter::storage {
namespace {

std::string percent_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
            out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(in[i]);
        }
    }
    return out;
}

// The directories created for an object, held open until its commit: each
// gained an entry and is fsync'd after the object's own file and directory.
// The new directories cost no journal commit of their own then (one fsync
// of the file's directory already commits them on a journaling file system,
// and fsyncing an unchanged directory again is cheap); a power failure
// before commit() returns may lose them, and nothing was promised yet.
class FileWriter final : public ObjectWriter {
  public:
    FileWriter(AtomicFile file, Overwrite overwrite, std::vector<UniqueFd> created_in, std::string display)
        : m_file(std::move(file)), m_overwrite(overwrite), m_created_in(std::move(created_in)),
          m_display(std::move(display)) {}
    Status write(std::span<const std::byte> data) override {
        if (!m_file)
            return fail(Error::internal("write after commit or abort"));
        return m_file->write(data);
    }
    Status commit() override {
        if (!m_file)
            return fail(Error::internal("commit after commit or abort"));
        auto s = m_file->commit(m_overwrite);
        m_file.reset();
        if (!s)
            return s;
        for (auto it = m_created_in.rbegin(); it != m_created_in.rend(); ++it)
            if (::fsync(it->get()) != 0 && errno != EINVAL)
                return fail(Error::storage(
                    fmt::format("fsync a directory created for {}: {}", m_display, errno_text(errno))));
        m_created_in.clear();
        return {};
    }
    void abort() override { m_file.reset(); }

  private:
    std::optional<AtomicFile> m_file;
    Overwrite m_overwrite;
    std::vector<UniqueFd> m_created_in;
    std::string m_display;
};

// Every object is reached from a descriptor of the root directory, never
// through a symbolic link inside the tree (util/beneath.hpp): a planted
// symlink is an IntegrityError naming the key, for reads, writes, renames,
// deletes and listings alike. The root itself may be a symlink: the
// operator chose it.
class FileStorage final : public Storage {
  public:
    FileStorage(std::string url, fs::path root) : m_url(std::move(url)), m_root(std::move(root)) {}

    [[nodiscard]] std::string describe() const override { return m_url; }

    Status check() override {
        std::error_code ec;
        fs::path probe = m_root;
        while (!fs::exists(probe, ec)) {
            if (!probe.has_parent_path() || probe.parent_path() == probe)
                return fail(Error::storage(fmt::format("{}: no existing parent directory", m_root.string())));
            probe = probe.parent_path();
        }
        if (!fs::is_directory(probe, ec))
            return fail(Error::storage(fmt::format("{}: {} is not a directory", m_url, probe.string())));
        if (::access(probe.c_str(), W_OK | X_OK) != 0)
            return fail(Error::storage(
                fmt::format("{}: {} is not writable: {}", m_url, probe.string(), errno_text(errno))));
        return {};
    }

    Result<std::unique_ptr<ObjectWriter>> create(std::string_view key, Overwrite overwrite) override {
        std::vector<UniqueFd> created_in;
        auto dir = directory_for_write(key, created_in);
        if (!dir)
            return fail(dir.error());
        const fs::path display = m_root / std::string(key);
        auto file = AtomicFile::create_in(std::move(*dir), std::string(name_of(key)), display);
        if (!file)
            return fail(file.error());
        return std::make_unique<FileWriter>(std::move(*file), overwrite, std::move(created_in),
                                            display.string());
    }

    Status read(std::string_view key, const OutputSink& sink) override {
        auto file = open_object(key);
        if (!file)
            return fail(file.error());
        std::vector<char> buffer(std::size_t{1} << 20);
        for (;;) {
            ssize_t n = ::read(file->get(), buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return fail(Error::storage(fmt::format("{}: read {}: {}", m_url, key, errno_text(errno))));
            if (n == 0)
                break;
            if (auto s =
                    sink(std::as_bytes(std::span<const char>(buffer.data(), static_cast<std::size_t>(n))));
                !s)
                return s;
        }
        return {};
    }

    Result<std::optional<ObjectInfo>> head(std::string_view key) override {
        if (!is_valid_key(key))
            return fail(invalid_key(key));
        auto root = open_root();
        if (!root)
            return fail(root.error());
        if (!*root)
            return std::optional<ObjectInfo>{};
        auto fd = open_beneath(root->get(), key, O_PATH);
        if (!fd) {
            if (fd.error() == ENOENT || fd.error() == ENOTDIR)
                return std::optional<ObjectInfo>{};
            return fail(open_error("stat", key, fd.error()));
        }
        struct stat st {};
        if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode))
            return std::optional<ObjectInfo>{};
        return std::optional<ObjectInfo>(info_of(std::string(key), st));
    }

    Result<std::vector<ObjectInfo>> list(std::string_view prefix) override {
        std::vector<ObjectInfo> out;
        auto files = walk(prefix, Temp::skip);
        if (!files)
            return fail(files.error());
        for (auto& info : *files)
            if (info.key.starts_with(prefix))
                out.push_back(std::move(info));
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        return out;
    }

    Status remove(std::span<const std::string> keys) override {
        for (const auto& key : keys)
            if (auto s = unlink_key(key); !s)
                return s;
        return {};
    }

    Result<bool> update(std::string_view key, const UpdateFn& next, Durability durability) override {
        auto dir = directory_for_write(key, durability == Durability::durable);
        if (!dir)
            return fail(dir.error());
        const fs::path display = m_root / std::string(key);
        const std::string name(name_of(key));
        // Every update() of a key in this directory holds the directory's
        // lock; readers need none, as the rename publishes atomically.
        int lock_fd = ::fcntl(dir->get(), F_DUPFD_CLOEXEC, 0);
        if (lock_fd < 0)
            return fail(Error::storage(fmt::format("{}: lock {}: {}", m_url, key, errno_text(errno))));
        auto lock = FileLock::acquire_fd(UniqueFd(lock_fd), display.parent_path());
        if (!lock)
            return fail(lock.error());
        std::optional<std::string> current;
        if (auto fd = open_beneath(dir->get(), name, O_RDONLY | O_NONBLOCK); fd) {
            if (auto s = require_regular(fd->get(), key); !s)
                return fail(s.error());
            auto text = read_fd(fd->get(), display);
            if (!text)
                return fail(text.error());
            current = std::move(*text);
        } else if (fd.error() != ENOENT) {
            return fail(open_error("open", key, fd.error()));
        }
        auto wanted = next(current);
        if (!wanted)
            return false;
        auto file = AtomicFile::create_in(std::move(*dir), name, display);
        if (!file)
            return fail(file.error());
        if (auto s = file->write(*wanted); !s)
            return fail(s.error());
        if (auto s = file->commit(Overwrite::yes, durability); !s)
            return fail(s.error());
        return true;
    }

    Result<std::vector<PendingUpload>> list_pending(std::string_view prefix) override {
        std::vector<PendingUpload> out;
        auto files = walk(prefix, Temp::only);
        if (!files)
            return fail(files.error());
        for (auto& info : *files) {
            if (!info.key.starts_with(prefix))
                continue;
            out.push_back({published_key_of(info.key), info.key, info.size, info.modified});
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        return out;
    }

    Status abort_pending(const PendingUpload& upload) override {
        auto slash = upload.handle.rfind('/');
        std::string_view name =
            std::string_view(upload.handle).substr(slash == std::string::npos ? 0 : slash + 1);
        if (!name.starts_with(k_temp_prefix))
            return fail(Error::internal(fmt::format("{} is not a temporary file", upload.handle)));
        return unlink_key(upload.handle);
    }

  private:
    enum class Temp { skip, only };

    static std::string_view dir_of(std::string_view key) {
        auto slash = key.rfind('/');
        return slash == std::string_view::npos ? std::string_view{} : key.substr(0, slash);
    }
    static std::string_view name_of(std::string_view key) {
        auto slash = key.rfind('/');
        return slash == std::string_view::npos ? key : key.substr(slash + 1);
    }

    static Error invalid_key(std::string_view key) {
        return Error::internal(fmt::format("invalid storage key \"{}\"", key));
    }

    // The error of opening `key`: a symlink on the way is an IntegrityError
    // (someone planted it; following it could leave the storage root).
    Error open_error(std::string_view what, std::string_view key, int err) const {
        if (err == ELOOP)
            return Error::integrity(
                fmt::format("{}: {} {}: a symbolic link inside the storage tree is in the way; "
                            "snapshotter never follows one (remove it)",
                            m_url, what, key));
        if (err == ENOENT)
            return Error::not_found(fmt::format("{}: object {} does not exist", m_url, key));
        return Error::storage(fmt::format("{}: {} {}: {}", m_url, what, key, errno_text(err)));
    }

    Status require_regular(int fd, std::string_view key) const {
        struct stat st {};
        if (::fstat(fd, &st) != 0)
            return fail(Error::storage(fmt::format("{}: stat {}: {}", m_url, key, errno_text(errno))));
        if (!S_ISREG(st.st_mode))
            return fail(Error::integrity(fmt::format("{}: {} is not a regular file", m_url, key)));
        return {};
    }

    // The root directory, or an empty descriptor when it does not exist yet.
    Result<UniqueFd> open_root() const {
        int fd = ::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            return UniqueFd(fd);
        if (errno == ENOENT)
            return UniqueFd();
        return fail(Error::storage(fmt::format("{}: open the storage root: {}", m_url, errno_text(errno))));
    }

    // The object `key` opened for reading: NotFound when absent.
    Result<UniqueFd> open_object(std::string_view key) const {
        if (!is_valid_key(key))
            return fail(invalid_key(key));
        auto root = open_root();
        if (!root)
            return fail(root.error());
        if (!*root)
            return fail(open_error("open", key, ENOENT));
        // O_NONBLOCK: a planted FIFO must not hang the open.
        auto fd = open_beneath(root->get(), key, O_RDONLY | O_NONBLOCK);
        if (!fd)
            return fail(open_error("open", key, fd.error() == ENOTDIR ? ENOENT : fd.error()));
        if (auto s = require_regular(fd->get(), key); !s)
            return fail(s.error());
        return std::move(*fd);
    }

    // The directory that holds `key`, created (root included) as needed;
    // the directories that gained an entry below the root go to `created_in`,
    // unsynced (FileWriter fsyncs them at commit).
    Result<UniqueFd> directory_for_write(std::string_view key, std::vector<UniqueFd>& created_in) const {
        return directory_for_write(
            key, [&](int root) { return make_dirs_unsynced(root, dir_of(key), created_in); });
    }

    // make_dirs_beneath() without its fsyncs: each directory that gained an
    // entry (the parent of each one created here, or by a concurrent writer
    // that won the race, whose fsync may not have happened yet) goes to
    // `created_in`. Every step goes through open_beneath(), so a planted
    // symlink is refused as make_dirs_beneath() refuses it.
    static FdResult make_dirs_unsynced(int root, std::string_view rel, std::vector<UniqueFd>& created_in) {
        if (rel.empty())
            return make_dirs_beneath(root, rel, false);
        auto fd = open_beneath(root, rel, O_RDONLY | O_DIRECTORY);
        if (fd || fd.error() != ENOENT)
            return fd;
        // Only the first object of a directory gets here: create the
        // missing directories top down.
        int copy = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
            return std::unexpected(errno);
        UniqueFd parent(copy);
        std::size_t start = 0;
        while (start < rel.size()) {
            auto slash = rel.find('/', start);
            if (slash == std::string_view::npos)
                slash = rel.size();
            std::string name(rel.substr(start, slash - start));
            if (name.empty() || name == "." || name == "..")
                return std::unexpected(EINVAL);
            auto next = open_beneath(parent.get(), name, O_RDONLY | O_DIRECTORY);
            if (!next && next.error() == ENOENT) {
                if (::mkdirat(parent.get(), name.c_str(), 0777) != 0 && errno != EEXIST)
                    return std::unexpected(errno);
                int dup = ::fcntl(parent.get(), F_DUPFD_CLOEXEC, 0);
                if (dup < 0)
                    return std::unexpected(errno);
                created_in.emplace_back(dup);
                next = open_beneath(parent.get(), name, O_RDONLY | O_DIRECTORY);
            }
            if (!next)
                return next;
            parent = std::move(*next);
            start = slash + 1;
        }
        return parent;
    }

    // The directory that holds `key`, created (root included) as needed.
    Result<UniqueFd> directory_for_write(std::string_view key, bool durable) const {
        return directory_for_write(key,
                                   [&](int root) { return make_dirs_beneath(root, dir_of(key), durable); });
    }

    Result<UniqueFd> directory_for_write(std::string_view key,
                                         const std::function<FdResult(int)>& make) const {
        if (!is_valid_key(key))
            return fail(invalid_key(key));
        std::error_code ec;
        fs::create_directories(m_root, ec);
        auto root = open_root();
        if (!root)
            return fail(root.error());
        if (!*root)
            return fail(Error::storage(fmt::format("{}: the storage root cannot be created", m_url)));
        auto dir = make(root->get());
        if (!dir)
            return fail(open_error("create directory for", key, dir.error()));
        return std::move(*dir);
    }

    // Every regular file below the directory part of `prefix`: published
    // objects, or only AtomicFile's temporary files. Symbolic links are not
    // objects: they are neither followed nor listed.
    Result<std::vector<ObjectInfo>> walk(std::string_view prefix, Temp temp) const {
        std::vector<ObjectInfo> out;
        std::string_view dir = dir_of(prefix);
        // The directory part is joined to the root: "../" or "/abs/" would leave it.
        if (!dir.empty() && !is_valid_key(dir))
            return fail(Error::internal(fmt::format("invalid storage prefix \"{}\"", prefix)));
        auto root = open_root();
        if (!root)
            return fail(root.error());
        if (!*root)
            return out;
        UniqueFd base;
        if (dir.empty()) {
            base = std::move(*root);
        } else {
            auto fd = open_beneath(root->get(), dir, O_RDONLY | O_DIRECTORY);
            if (!fd) {
                if (fd.error() == ENOENT || fd.error() == ENOTDIR)
                    return out;
                return fail(open_error("list", prefix, fd.error()));
            }
            base = std::move(*fd);
        }
        if (auto s =
                walk_dir(std::move(base), dir.empty() ? std::string() : std::string(dir) + "/", temp, out);
            !s)
            return fail(s.error());
        return out;
    }

    Status walk_dir(UniqueFd dir_fd, const std::string& key_prefix, Temp temp,
                    std::vector<ObjectInfo>& out) const {
        DIR* dir = ::fdopendir(dir_fd.get());
        if (dir == nullptr)
            return fail(Error::storage(fmt::format("{}: list {}: {}", m_url, key_prefix, errno_text(errno))));
        dir_fd.release(); // closedir() closes it
        std::vector<std::string> subdirs;
        errno = 0;
        while (const dirent* entry = ::readdir(dir)) {
            std::string name = entry->d_name;
            if (name == "." || name == "..")
                continue;
            struct stat st {};
            if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue; // removed while we walk (a writer tidying up)
            if (S_ISDIR(st.st_mode)) {
                subdirs.push_back(std::move(name));
            } else if (S_ISREG(st.st_mode)) {
                bool is_temp = name.starts_with(k_temp_prefix);
                if (is_temp == (temp == Temp::only))
                    out.push_back(info_of(key_prefix + name, st));
            }
        }
        for (const auto& name : subdirs) {
            int fd = ::openat(::dirfd(dir), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ENOENT)
                    continue;
                int err = errno;
                ::closedir(dir);
                return fail(open_error("list", key_prefix + name, err));
            }
            if (auto s = walk_dir(UniqueFd(fd), key_prefix + name + "/", temp, out); !s) {
                ::closedir(dir);
                return s;
            }
        }
        ::closedir(dir);
        return {};
    }

    // The key a temporary file would have published: AtomicFile names it
    // <k_temp_prefix><file name>.<12 hex digits> beside the final file.
    static std::string published_key_of(std::string_view temp_key) {
        auto slash = temp_key.rfind('/');
        std::string_view dir = slash == std::string_view::npos ? "" : temp_key.substr(0, slash + 1);
        std::string_view name = temp_key.substr(dir.size() + k_temp_prefix.size());
        auto dot = name.rfind('.');
        if (dot != std::string_view::npos && name.size() - dot == 13)
            name = name.substr(0, dot);
        return std::string(dir) + std::string(name);
    }

    // Delete the file of `key` and the directories that became empty. A
    // symlink among its directories is refused; a symlink as the object
    // itself is removed (the link, never what it points to).
    Status unlink_key(std::string_view key) {
        if (!is_valid_key(key))
            return fail(invalid_key(key));
        auto root = open_root();
        if (!root)
            return fail(root.error());
        if (!*root)
            return {};
        const std::string_view dir = dir_of(key);
        UniqueFd parent;
        if (dir.empty()) {
            parent = std::move(*root);
        } else {
            auto fd = open_beneath(root->get(), dir, O_RDONLY | O_DIRECTORY);
            if (!fd) {
                if (fd.error() == ENOENT || fd.error() == ENOTDIR)
                    return {};
                return fail(open_error("delete", key, fd.error()));
            }
            parent = std::move(*fd);
        }
        const std::string name(name_of(key));
        if (::unlinkat(parent.get(), name.c_str(), 0) != 0 && errno != ENOENT)
            return fail(Error::storage(fmt::format("{}: delete {}: {}", m_url, key, errno_text(errno))));
        // Tidy up directories that became empty, never the root itself.
        for (std::string_view d = dir; !d.empty(); d = dir_of(d)) {
            UniqueFd up;
            if (dir_of(d).empty()) {
                up = std::move(*root);
            } else {
                auto fd = open_beneath(root->get(), dir_of(d), O_RDONLY | O_DIRECTORY);
                if (!fd)
                    break;
                up = std::move(*fd);
            }
            if (::unlinkat(up.get(), std::string(name_of(d)).c_str(), AT_REMOVEDIR) != 0)
                break;
            if (!*root)
                break; // the root's descriptor went to the last step
        }
        return {};
    }

    static ObjectInfo info_of(std::string key, const struct stat& st) {
        ObjectInfo info{std::move(key), static_cast<std::uint64_t>(st.st_size), std::nullopt, std::nullopt};
        auto since_epoch =
            std::chrono::seconds{st.st_mtim.tv_sec} + std::chrono::nanoseconds{st.st_mtim.tv_nsec};
        info.modified = Clock::time_point(std::chrono::duration_cast<Clock::duration>(since_epoch));
        return info;
    }

    std::string m_url;
    fs::path m_root;
};

} // namespace

Result<std::unique_ptr<Storage>> open_file_backend(const Config& config) {
    std::string path = config.url;
    if (path.starts_with("file://")) {
        path = percent_decode(path.substr(7));
        if (!path.starts_with("/"))
            return fail(Error::payload(fmt::format(
                "storage.url: \"{}\" must be file:///absolute/path (or a plain path)", config.url)));
    }
    if (path.empty())
        return fail(Error::payload("storage.url: empty path"));
    fs::path root = fs::absolute(fs::path(path)).lexically_normal();
    std::string text = root.string();
    while (text.size() > 1 && text.back() == '/')
        text.pop_back();
    return std::make_unique<FileStorage>("file://" + text, fs::path(text));
}

} // namespace snapshotter::storage
