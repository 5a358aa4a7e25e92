// Reading numbers out of untrusted JSON (manifests, reports) without
// undefined behaviour: nlohmann's get<int>() of 1e300 is a float-to-int
// overflow, and get<std::uint64_t>() of -1 wraps silently.
#pragma once

#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace snapshotter {

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
