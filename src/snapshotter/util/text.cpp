#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

namespace snapshotter {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

constexpr std::string_view k_replacement = "\xEF\xBF\xBD"; // U+FFFD

// One decoded UTF-8 sequence: its code point, or nullopt for an invalid byte,
// and how many bytes it took (at least 1).
struct Decoded {
    std::optional<char32_t> cp;
    std::size_t length = 1;
};

// Decode the UTF-8 sequence at the start of non-empty `text`, refusing
// overlong forms, surrogates and code points above U+10FFFF.
Decoded decode_utf8(std::string_view text) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char lead = byte(0);
    if (lead < 0x80)
        return {lead, 1};
    std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
    if (length == 0 || lead > 0xF4 || text.size() < length)
        return {};
    char32_t cp = lead & (0x7F >> length);
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80)
            return {};
        cp = (cp << 6) | (byte(i) & 0x3F);
    }
    constexpr char32_t k_min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_min_for_length[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return {};
    return {cp, length};
}

bool is_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp < 0xA0);
}

bool in_ranges(char32_t cp, std::initializer_list<std::pair<char32_t, char32_t>> ranges) {
    for (const auto& [first, last] : ranges)
        if (cp >= first && cp <= last)
            return true;
    return false;
}

std::size_t columns_of(char32_t cp) {
    if (in_ranges(cp, {{0x0300, 0x036F},
                       {0x0483, 0x0489},
                       {0x0591, 0x05BD},
                       {0x1AB0, 0x1AFF},
                       {0x1DC0, 0x1DFF},
                       {0x200B, 0x200F},
                       {0x20D0, 0x20FF},
                       {0xFE00, 0xFE0F},
                       {0xFE20, 0xFE2F},
                       {0xE0100, 0xE01EF}}))
        return 0;
    if (in_ranges(cp, {{0x1100, 0x115F},
                       {0x2E80, 0x303E},
                       {0x3041, 0x33FF},
                       {0x3400, 0x4DBF},
                       {0x4E00, 0x9FFF},
                       {0xA000, 0xA4CF},
                       {0xAC00, 0xD7A3},
                       {0xF900, 0xFAFF},
                       {0xFE30, 0xFE4F},
                       {0xFF00, 0xFF60},
                       {0xFFE0, 0xFFE6},
                       {0x1F300, 0x1F64F},
                       {0x1F680, 0x1F6FF},
                       {0x1F900, 0x1F9FF},
                       {0x20000, 0x2FFFD},
                       {0x30000, 0x3FFFD}}))
        return 2;
    return 1;
}

} // namespace

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        auto d = decode_utf8(text);
        if (d.cp && !is_control(*d.cp))
            out.append(text.substr(0, d.length));
        else
            out.append(k_replacement);
        text.remove_prefix(d.length);
    }
    return out;
}

std::string escape_control(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        auto d = decode_utf8(text);
        if (!d.cp) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text.front()));
        } else if (*d.cp == '\\') {
            out += "\\\\";
        } else if (*d.cp == '\n') {
            out += "\\n";
        } else if (*d.cp == '\r') {
            out += "\\r";
        } else if (*d.cp == '\t') {
            out += "\\t";
        } else if (is_control(*d.cp)) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(*d.cp));
        } else {
            out.append(text.substr(0, d.length));
        }
        text.remove_prefix(d.length);
    }
    return out;
}

std::size_t display_width(std::string_view text) {
    std::size_t width = 0;
    while (!text.empty()) {
        auto d = decode_utf8(text);
        width += d.cp ? columns_of(*d.cp) : 1;
        text.remove_prefix(d.length);
    }
    return width;
}

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim_space(std::string_view text) {
    while (!text.empty() && is_space(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_space(text.back()))
        text.remove_suffix(1);
    return text;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::optional<std::string> nearest_name(std::string_view word, const std::vector<std::string>& candidates,
                                        std::size_t max_distance) {
    std::optional<std::string> best;
    std::size_t best_distance = max_distance;
    for (const auto& candidate : candidates) {
        auto d = edit_distance(word, candidate);
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    return best;
}

} // namespace snapshotter
