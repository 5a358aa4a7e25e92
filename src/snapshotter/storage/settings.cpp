#include "snapshotter/storage/settings.hpp"

#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>

namespace snapshotter::storage {

std::string_view to_string(Addressing value) {
    return value == Addressing::path ? "path" : "virtual";
}

std::string_view to_string(Sse value) {
    return value == Sse::aws_kms ? "aws:kms" : "AES256";
}

std::string_view to_string(LockMode value) {
    return value == LockMode::compliance ? "COMPLIANCE" : "GOVERNANCE";
}

std::optional<Addressing> parse_addressing(std::string_view text) {
    for (auto value : {Addressing::virtual_host, Addressing::path})
        if (to_string(value) == text)
            return value;
    return std::nullopt;
}

std::optional<Sse> parse_sse(std::string_view text) {
    for (auto value : {Sse::aes256, Sse::aws_kms})
        if (to_string(value) == text)
            return value;
    return std::nullopt;
}

std::optional<LockMode> parse_lock_mode(std::string_view text) {
    for (auto value : {LockMode::governance, LockMode::compliance})
        if (to_string(value) == text)
            return value;
    return std::nullopt;
}

std::expected<S3Endpoint, std::string> split_s3_endpoint(std::string_view e) {
    auto sep = e.find("://");
    if (sep == std::string_view::npos || (e.substr(0, sep) != "http" && e.substr(0, sep) != "https"))
        return std::unexpected("must start with http:// or https://");
    S3Endpoint out{std::string(e.substr(0, sep)), std::string(e.substr(sep + 3))};
    if (auto end = out.authority.find_first_of("/?#"); end != std::string::npos) {
        if (out.authority.substr(end).find_first_not_of('/') != std::string::npos)
            return std::unexpected(fmt::format("\"{}\" must not have a path", redact_url(e)));
        out.authority.resize(end);
    }
    if (out.authority.empty() || out.authority.find('@') != std::string::npos)
        return std::unexpected(fmt::format("\"{}\" needs a host and no user info", redact_url(e)));
    return out;
}

bool is_storage_class(std::string_view name) {
    return !name.empty() && name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string_view::npos;
}

} // namespace snapshotter::storage
