// Reading untrusted JSON (manifests, reports, pointers read from storage):
// parsing bounded in depth, and numbers without undefined behaviour
// (nlohmann's get<int>() of 1e300 is a float-to-int overflow, and
// get<std::uint64_t>() of -1 wraps silently).
#pragma once

#include "snapshotter/util/error.hpp"

#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

namespace snapshotter {

// Deepest nesting of arrays and objects a JSON document read from storage
// may have. nlohmann parses and destroys iteratively, but copies, compares
// and dumps recursively: a document nested 100,000 levels deep overflows
// the stack of whoever copies it. Ours are at most ~8 levels deep.
inline constexpr std::size_t k_max_json_depth = 128;

// How deeply arrays and objects nest in `text` (brackets inside strings do
// not count), stopping early once past `limit`: one linear scan, no parse.
std::size_t json_nesting_depth(std::string_view text, std::size_t limit);

// Parse `text`, refusing documents nested deeper than `max_depth`.
// IntegrityError ("not valid JSON (at byte N)", "nested deeper than N
// levels") when it is refused; the caller adds what the document is.
Result<nlohmann::json> parse_json_bounded(std::string_view text, std::size_t max_depth = k_max_json_depth);

// The value as T when it is a JSON integer within T's range; nullopt for a
// float, a string, null or an integer T cannot hold.
template <std::integral T> std::optional<T> json_integer(const nlohmann::json& value) {
    if (value.is_number_unsigned()) {
        auto u = value.get<std::uint64_t>();
        if (std::in_range<T>(u))
            return static_cast<T>(u);
    } else if (value.is_number_integer()) {
        auto s = value.get<std::int64_t>();
        if (std::in_range<T>(s))
            return static_cast<T>(s);
    }
    return std::nullopt;
}

} // namespace snapshotter
