#include "snapshotter/util/time.hpp"

#include "snapshotter/util/fs.hpp"

#include <cctype>
#include <ctime>
#include <fmt/chrono.h>
#include <fmt/format.h>

namespace snapshotter {

namespace {

// The UTC calendar time of `tp`, whole seconds (rounded down). fmt 9 formats a
// system_clock time_point in local time, so never pass one to fmt directly.
std::tm utc_tm(Clock::time_point tp) {
    return fmt::gmtime(Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(tp)));
}

} // namespace

std::string format_rfc3339(Clock::time_point tp) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", utc_tm(tp));
}

std::optional<Clock::time_point> parse_rfc3339(std::string_view text) {
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != 'Z')
        return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len) -> int {
        int v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(text[i])))
                return -1;
            v = v * 10 + (text[i] - '0');
        }
        return v;
    };
    std::tm tm{};
    tm.tm_year = num(0, 4) - 1900;
    tm.tm_mon = num(5, 2) - 1;
    tm.tm_mday = num(8, 2);
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
    tm.tm_sec = num(17, 2);
    if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60)
        return std::nullopt;
    return Clock::from_time_t(timegm(&tm));
}

std::string new_snapshot_id(Clock::time_point now) {
    auto ms = std::chrono::floor<std::chrono::milliseconds>(now);
    auto millis = (ms - std::chrono::floor<std::chrono::seconds>(ms)).count();
    return fmt::format("{:%Y%m%dT%H%M%S}.{:03}Z-{}", utc_tm(now), millis, random_hex(3));
}

bool is_snapshot_id(std::string_view id) {
    // 20261128T073545.123Z-9f3a1c
    if (id.size() != 27)
        return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        bool ok = false;
        if (i == 8)
            ok = c == 'T';
        else if (i == 15)
            ok = c == '.';
        else if (i == 19)
            ok = c == 'Z';
        else if (i == 20)
            ok = c == '-';
        else if (i > 20)
            ok = std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
        else
            ok = std::isdigit(static_cast<unsigned char>(c));
        if (!ok)
            return false;
    }
    return true;
}

long long elapsed_ms(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
        .count();
}

} // namespace snapshotter
