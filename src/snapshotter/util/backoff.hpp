// Exponential backoff with full jitter (as the AWS SDKs do), shared by every
// retry loop that talks to a server.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace snapshotter {

// A random delay in [0, min(`cap`, `base` * 2^`attempt`)].
inline std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                               std::chrono::milliseconds cap) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    auto ceiling = std::min<long long>(cap.count(), base.count() << std::clamp(attempt, 0, 16));
    std::uniform_int_distribution<long long> dist(0, ceiling);
    return std::chrono::milliseconds{dist(rng)};
}

} // namespace snapshotter
