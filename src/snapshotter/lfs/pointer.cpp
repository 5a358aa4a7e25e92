#include "snapshotter/lfs/pointer.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <vector>

namespace snapshotter::lfs {

namespace {

constexpr std::string_view k_version_v1 = "https://git-lfs.github.com/spec/v1";
constexpr std::string_view k_version_hawser = "https://hawser.github.com/spec/v1";

bool is_lower_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    });
}

// "ext-<digit>-<name>" with a name of [a-z0-9.-]... as the spec's extensions.
bool is_extension_key(std::string_view key) {
    return key.size() > 6 && key.starts_with("ext-") && key[4] >= '0' && key[4] <= '9' && key[5] == '-';
}

// Printable ASCII without control characters: the values a pointer holds.
bool is_printable(std::string_view value) {
    return std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

} // namespace

std::optional<Pointer> parse_pointer(std::string_view blob) {
    if (blob.size() < k_min_pointer_bytes || blob.size() > k_max_pointer_bytes || !blob.ends_with('\n'))
        return std::nullopt;
    std::vector<std::pair<std::string_view, std::string_view>> lines;
    for (std::string_view rest = blob; !rest.empty();) {
        auto end = rest.find('\n');
        std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 1);
        auto space = line.find(' ');
        if (space == std::string_view::npos)
            return std::nullopt;
        std::string_view key = line.substr(0, space), value = line.substr(space + 1);
        if (!is_key(key) || value.empty() || !is_printable(value))
            return std::nullopt;
        lines.emplace_back(key, value);
    }
    if (lines.size() < 3 || lines[0].first != "version" ||
        (lines[0].second != k_version_v1 && lines[0].second != k_version_hawser))
        return std::nullopt;
    Pointer out;
    bool have_oid = false, have_size = false;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto& [key, value] = lines[i];
        if (i > 1 && !(lines[i - 1].first < key)) // sorted, unique
            return std::nullopt;
        if (key == "oid") {
            if (!value.starts_with("sha256:") || value.size() != 7 + 64 || !is_lower_hex(value.substr(7)))
                return std::nullopt;
            out.oid = std::string(value.substr(7));
            have_oid = true;
        } else if (key == "size") {
            if (value.size() > 1 && value.front() == '0')
                return std::nullopt;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out.size);
            if (ec != std::errc{} || end != value.data() + value.size() || out.size > k_max_object_size)
                return std::nullopt;
            have_size = true;
        } else if (is_extension_key(key)) {
            if (!value.starts_with("sha256:") || !is_lower_hex(value.substr(7)))
                return std::nullopt;
        } else {
            return std::nullopt;
        }
    }
    if (!have_oid || !have_size)
        return std::nullopt;
    return out;
}

std::string format_pointer(const Pointer& pointer) {
    return fmt::format("version {}\noid sha256:{}\nsize {}\n", k_version_v1, pointer.oid, pointer.size);
}

} // namespace snapshotter::lfs
