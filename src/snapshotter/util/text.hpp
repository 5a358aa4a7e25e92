// Small text helpers: ASCII ones shared by the HTTP, SigV4 and credential
// code, and UTF-8 ones for text shown on a terminal.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter {

// `text` with ASCII letters lowercased (other bytes unchanged).
std::string ascii_lower(std::string_view text);

// `text` without leading and trailing spaces, tabs, CR and LF.
std::string_view trim_space(std::string_view text);

// The value of hex digit `c` (either case), or -1 when it is not one.
int hex_value(char c);

// `text` safe to show on a terminal: control characters (C0, DEL, C1, which
// could carry escape sequences) and bytes that are not valid UTF-8 each become
// U+FFFD; everything else is kept.
std::string printable(std::string_view text);

// `text` on one line with nothing a terminal would act on, escaped the way a
// JSON string is: backslash as \\, LF, CR and TAB as \n, \r, \t, every other
// control character (C0, DEL, C1) as \u00XX, and bytes that are not valid
// UTF-8 as \xNN; everything else is kept. Used by the text log format.
std::string escape_control(std::string_view text);

// The terminal columns `text` takes when shown: 0 for combining marks and
// zero-width characters, 2 for East Asian wide and fullwidth characters and
// emoji, 1 for everything else (an invalid byte counts 1).
std::size_t display_width(std::string_view text);

// The Levenshtein distance between `a` and `b` (insertions, deletions and
// substitutions of bytes).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word` by edit_distance, when it is closer than
// `max_distance` (ties go to the earlier candidate); nullopt otherwise. Used
// for "did you mean" hints on keys, flags, actions and repository names.
std::optional<std::string> nearest_name(std::string_view word, const std::vector<std::string>& candidates,
                                        std::size_t max_distance = 3);

} // namespace snapshotter
