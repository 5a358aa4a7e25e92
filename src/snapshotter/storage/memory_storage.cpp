// memory:// backend for tests: objects in a process-wide map per name.
#include "snapshotter/storage/backends.hpp"

#include <fmt/format.h>
#include <mutex>

namespace snapshotter::storage {
namespace {

struct Bucket {
    std::mutex mutex;
    std::map<std::string, std::string, std::less<>> objects;
};

std::shared_ptr<Bucket> bucket_named(std::string_view name) {
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<Bucket>, std::less<>> buckets;
    std::lock_guard lock(mutex);
    auto it = buckets.find(name);
    if (it == buckets.end())
        it = buckets.emplace(std::string(name), std::make_shared<Bucket>()).first;
    return it->second;
}

class MemoryWriter final : public ObjectWriter {
  public:
    MemoryWriter(std::shared_ptr<Bucket> bucket, std::string key, Overwrite overwrite)
        : m_bucket(std::move(bucket)), m_key(std::move(key)), m_overwrite(overwrite) {}
    Status write(std::span<const std::byte> data) override {
        if (m_done)
            return fail(Error::internal("write after commit or abort"));
        m_data.append(reinterpret_cast<const char*>(data.data()), data.size());
        return {};
    }
    Status commit() override {
        if (m_done)
            return fail(Error::internal("commit after commit or abort"));
        m_done = true;
        std::lock_guard lock(m_bucket->mutex);
        if (m_overwrite == Overwrite::no && m_bucket->objects.contains(m_key))
            return fail(Error::conflict(fmt::format("{} already exists", m_key)));
        m_bucket->objects[m_key] = std::move(m_data);
        return {};
    }
    void abort() override {
        m_done = true;
        m_data.clear();
    }

  private:
    std::shared_ptr<Bucket> m_bucket;
    std::string m_key;
    Overwrite m_overwrite;
    std::string m_data;
    bool m_done = false;
};

class MemoryStorage final : public Storage {
  public:
    explicit MemoryStorage(std::string name) : m_name(std::move(name)), m_bucket(bucket_named(m_name)) {}

    [[nodiscard]] std::string describe() const override { return "memory://" + m_name; }
    Status check() override { return {}; }

    Result<std::unique_ptr<ObjectWriter>> create(std::string_view key, Overwrite overwrite) override {
        if (auto s = check_key(key); !s)
            return fail(s.error());
        return std::make_unique<MemoryWriter>(m_bucket, std::string(key), overwrite);
    }

    Status read(std::string_view key, const OutputSink& sink) override {
        if (auto s = check_key(key); !s)
            return s;
        std::string copy;
        {
            std::lock_guard lock(m_bucket->mutex);
            auto it = m_bucket->objects.find(key);
            if (it == m_bucket->objects.end())
                return fail(Error::not_found(fmt::format("{}: object {} does not exist", describe(), key)));
            copy = it->second;
        }
        return sink(std::as_bytes(std::span<const char>(copy.data(), copy.size())));
    }

    Result<std::optional<ObjectInfo>> head(std::string_view key) override {
        if (auto s = check_key(key); !s)
            return fail(s.error());
        std::lock_guard lock(m_bucket->mutex);
        auto it = m_bucket->objects.find(key);
        if (it == m_bucket->objects.end())
            return std::optional<ObjectInfo>{};
        return std::optional<ObjectInfo>(
            ObjectInfo{it->first, it->second.size(), std::nullopt, std::nullopt});
    }

    Result<std::vector<ObjectInfo>> list(std::string_view prefix) override {
        std::lock_guard lock(m_bucket->mutex);
        std::vector<ObjectInfo> out;
        for (auto it = m_bucket->objects.lower_bound(prefix);
             it != m_bucket->objects.end() && it->first.starts_with(prefix); ++it)
            out.push_back({it->first, it->second.size(), std::nullopt});
        return out;
    }

    Result<bool> update(std::string_view key, const UpdateFn& next, Durability /*durability*/) override {
        if (auto s = check_key(key); !s)
            return fail(s.error());
        std::lock_guard lock(m_bucket->mutex);
        auto it = m_bucket->objects.find(key);
        auto wanted = next(it == m_bucket->objects.end() ? std::nullopt : std::optional(it->second));
        if (!wanted)
            return false;
        m_bucket->objects[std::string(key)] = std::move(*wanted);
        return true;
    }

    Status remove(std::span<const std::string> keys) override {
        for (const auto& key : keys)
            if (auto s = check_key(key); !s)
                return s;
        std::lock_guard lock(m_bucket->mutex);
        for (const auto& key : keys)
            m_bucket->objects.erase(key);
        return {};
    }

  private:
    // The same key rules as the file backend, so tests on memory:// catch
    // keys that a real backend would refuse.
    static Status check_key(std::string_view key) {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        return {};
    }

    std::string m_name;
    std::shared_ptr<Bucket> m_bucket;
};

} // namespace

Result<std::unique_ptr<Storage>> open_memory_backend(const Config& config) {
    std::string name = config.url.substr(std::string_view("memory://").size());
    return std::make_unique<MemoryStorage>(name);
}

std::unique_ptr<Storage> open_memory(std::string_view name) {
    return std::make_unique<MemoryStorage>(std::string(name));
}

} // namespace snapshotter::storage
