// file:// backend: one file per key below a root directory, published
// atomically (temp file, fsync, rename or link).
#include "snapshotter/storage/backends.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
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

class FileWriter final : public ObjectWriter {
  public:
    FileWriter(AtomicFile file, Overwrite overwrite) : m_file(std::move(file)), m_overwrite(overwrite) {}
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
        return s;
    }
    void abort() override { m_file.reset(); }

  private:
    std::optional<AtomicFile> m_file;
    Overwrite m_overwrite;
};

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
        auto path = path_of(key);
        if (!path)
            return fail(path.error());
        auto file = AtomicFile::create(*path);
        if (!file)
            return fail(file.error());
        return std::make_unique<FileWriter>(std::move(*file), overwrite);
    }

    Status read(std::string_view key, const OutputSink& sink) override {
        auto path = path_of(key);
        if (!path)
            return fail(path.error());
        int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == ENOENT)
                return fail(Error::not_found(fmt::format("{}: object {} does not exist", m_url, key)));
            return fail(Error::storage(fmt::format("{}: open {}: {}", m_url, key, errno_text(err))));
        }
        std::vector<char> buffer(std::size_t{1} << 20);
        for (;;) {
            ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int err = errno;
                ::close(fd);
                return fail(Error::storage(fmt::format("{}: read {}: {}", m_url, key, errno_text(err))));
            }
            if (n == 0)
                break;
            if (auto s =
                    sink(std::as_bytes(std::span<const char>(buffer.data(), static_cast<std::size_t>(n))));
                !s) {
                ::close(fd);
                return s;
            }
        }
        ::close(fd);
        return {};
    }

    Result<std::optional<ObjectInfo>> head(std::string_view key) override {
        auto path = path_of(key);
        if (!path)
            return fail(path.error());
        std::error_code ec;
        auto st = fs::status(*path, ec);
        if (ec || !fs::is_regular_file(st))
            return std::optional<ObjectInfo>{};
        return std::optional<ObjectInfo>(info_of(std::string(key), *path));
    }

    Result<std::vector<ObjectInfo>> list(std::string_view prefix) override {
        std::vector<ObjectInfo> out;
        auto files = walk(prefix, Temp::skip);
        if (!files)
            return fail(files.error());
        for (const auto& [key, path] : *files)
            if (key.starts_with(prefix))
                out.push_back(info_of(key, path));
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
        auto path = path_of(key);
        if (!path)
            return fail(path.error());
        // Every update() of a key in this directory holds the directory's
        // lock; readers need none, as the rename publishes atomically.
        auto lock = FileLock::acquire_directory(path->parent_path());
        if (!lock)
            return fail(lock.error());
        std::optional<std::string> current;
        if (auto text = read_file(*path); text)
            current = std::move(*text);
        else if (text.error().kind != ErrorKind::NotFound)
            return fail(text.error());
        auto wanted = next(current);
        if (!wanted)
            return false;
        if (auto s = write_file_atomic(*path, *wanted, Overwrite::yes, durability); !s)
            return fail(s.error());
        return true;
    }

    Result<std::vector<PendingUpload>> list_pending(std::string_view prefix) override {
        std::vector<PendingUpload> out;
        auto files = walk(prefix, Temp::only);
        if (!files)
            return fail(files.error());
        for (const auto& [key, path] : *files) {
            if (!key.starts_with(prefix))
                continue;
            auto info = info_of(key, path);
            out.push_back({published_key_of(key), key, info.size, info.modified});
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

    // Every regular file (key and path) below the directory part of
    // `prefix`: published objects, or only AtomicFile's temporary files.
    Result<std::vector<std::pair<std::string, fs::path>>> walk(std::string_view prefix, Temp temp) const {
        std::vector<std::pair<std::string, fs::path>> out;
        auto slash = prefix.rfind('/');
        // The directory part is joined to the root: "../" or "/abs/" would leave it.
        if (slash != std::string_view::npos && !is_valid_key(prefix.substr(0, slash)))
            return fail(Error::internal(fmt::format("invalid storage prefix \"{}\"", prefix)));
        fs::path base =
            slash == std::string_view::npos ? m_root : m_root / std::string(prefix.substr(0, slash));
        std::error_code ec;
        if (!fs::is_directory(base, ec))
            return out;
        auto it = fs::recursive_directory_iterator(base, fs::directory_options::none, ec);
        if (ec)
            return fail(Error::storage(fmt::format("{}: list {}: {}", m_url, prefix, ec.message())));
        for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) {
                // A directory removed while we walk (a writer tidying up) is not an error.
                if (ec == std::errc::no_such_file_or_directory)
                    continue;
                return fail(Error::storage(fmt::format("{}: list {}: {}", m_url, prefix, ec.message())));
            }
            if (!it->is_regular_file(ec))
                continue;
            bool is_temp = it->path().filename().string().starts_with(k_temp_prefix);
            if (is_temp != (temp == Temp::only))
                continue;
            out.emplace_back(it->path().lexically_relative(m_root).generic_string(), it->path());
        }
        return out;
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

    // Delete the file of `key` and the directories that became empty.
    Status unlink_key(std::string_view key) {
        auto path = path_of(key);
        if (!path)
            return fail(path.error());
        if (::unlink(path->c_str()) != 0 && errno != ENOENT)
            return fail(Error::storage(fmt::format("{}: delete {}: {}", m_url, key, errno_text(errno))));
        // Tidy up directories that became empty, never the root itself.
        for (fs::path dir = path->parent_path(); dir != m_root && dir.string().starts_with(m_root.string());
             dir = dir.parent_path())
            if (::rmdir(dir.c_str()) != 0)
                break;
        return {};
    }

    Result<fs::path> path_of(std::string_view key) const {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        return m_root / std::string(key);
    }

    static ObjectInfo info_of(std::string key, const fs::path& path) {
        std::error_code ec;
        ObjectInfo info{std::move(key), 0, std::nullopt, std::nullopt};
        info.size = fs::file_size(path, ec);
        auto mtime = fs::last_write_time(path, ec);
        if (!ec)
            info.modified =
                std::chrono::time_point_cast<Clock::duration>(fs::file_time_type::clock::to_sys(mtime));
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
