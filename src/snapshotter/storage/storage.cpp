#include "snapshotter/storage/storage.hpp"

#include "snapshotter/storage/backends.hpp"
#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>

namespace snapshotter::storage {
namespace {

struct Backend {
    std::string_view scheme;
    Result<std::unique_ptr<Storage>> (*open)(const Config&);
};

// The scheme table: adding a backend is one line here and one factory.
constexpr Backend k_backends[] = {
    {"file", open_file_backend},
    {"memory", open_memory_backend},
    {"s3", open_s3_backend},
};

} // namespace

std::vector<std::string> supported_schemes() {
    std::vector<std::string> out;
    for (const auto& b : k_backends)
        out.emplace_back(b.scheme);
    return out;
}

Result<std::unique_ptr<Storage>> open(const Config& config) {
    auto sep = config.url.find("://");
    if (sep == std::string::npos)
        return open_file_backend(config);
    std::string_view scheme = std::string_view(config.url).substr(0, sep);
    for (const auto& b : k_backends)
        if (b.scheme == scheme)
            return b.open(config);
    return fail(Error::payload(fmt::format("storage.url: scheme \"{}\" is not supported (supported: {})",
                                           scheme, fmt::join(supported_schemes(), ", "))));
}

Result<std::string> read_url(std::string_view url, std::size_t max_bytes) {
    auto slash = url.rfind('/');
    auto scheme_end = url.find("://");
    std::size_t base_min = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    if (slash == std::string_view::npos || slash < base_min || slash + 1 == url.size())
        return fail(Error::payload(fmt::format("\"{}\" does not name an object", redact_url(url))));
    auto storage = open(Config{std::string(url.substr(0, slash)), {}});
    if (!storage)
        return fail(storage.error());
    auto data = (*storage)->get(url.substr(slash + 1), max_bytes);
    // Backends name the object in their messages already; add it only when not.
    if (!data && data.error().message.find(redact_url(url)) == std::string::npos)
        return fail(data.error().with_context(redact_url(url)));
    return data;
}

bool is_valid_key(std::string_view key) {
    if (key.empty() || key.front() == '/' || key.back() == '/' || key.size() > 1024)
        return false;
    std::size_t start = 0;
    while (start <= key.size()) {
        auto slash = key.find('/', start);
        std::string_view segment =
            key.substr(start, slash == std::string_view::npos ? key.npos : slash - start);
        if (segment.empty() || segment == "." || segment == "..")
            return false;
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    for (unsigned char c : key)
        if (c < 0x20 || c == 0x7f)
            return false;
    return true;
}

Status Storage::put(std::string_view key, std::string_view data, Overwrite overwrite) {
    auto writer = create(key, overwrite);
    if (!writer)
        return fail(writer.error());
    if (auto s = (*writer)->write(std::as_bytes(std::span<const char>(data.data(), data.size()))); !s)
        return s;
    return (*writer)->commit();
}

Result<std::vector<PendingUpload>> Storage::list_pending(std::string_view) {
    return std::vector<PendingUpload>{};
}

Status Storage::abort_pending(const PendingUpload& upload) {
    return fail(Error::internal(fmt::format("{}: no pending upload {} to abort", describe(), upload.key)));
}

Result<std::string> Storage::get(std::string_view key, std::size_t max_bytes) {
    std::string out;
    auto s = read(key, [&](std::span<const std::byte> chunk) -> Status {
        if (out.size() + chunk.size() > max_bytes)
            return fail(Error::storage(fmt::format("{} is larger than {} bytes", key, max_bytes)));
        out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return {};
    });
    if (!s)
        return fail(s.error());
    return out;
}

} // namespace snapshotter::storage
